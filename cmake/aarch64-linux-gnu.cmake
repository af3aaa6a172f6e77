# Cross-compiling for ARM64 (aarch64) Linux with Debian's g++-aarch64-linux-gnu against an arm64
# root that holds the target's libraries and headers (libtorch-dev:arm64 and the rest), prepared
# by scripts/arm64.sh. LUMINARS_ARM64_ROOT (or the environment's) names that root.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT LUMINARS_ARM64_ROOT)
  set(LUMINARS_ARM64_ROOT "$ENV{LUMINARS_ARM64_ROOT}")
endif()
if(NOT IS_DIRECTORY "${LUMINARS_ARM64_ROOT}/usr/lib/aarch64-linux-gnu")
  message(FATAL_ERROR "no arm64 root at '${LUMINARS_ARM64_ROOT}': run scripts/arm64.sh build")
endif()
# try_compile projects see the root too.
set(CMAKE_TRY_COMPILE_PLATFORM_VARIABLES LUMINARS_ARM64_ROOT)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_SYSROOT "${LUMINARS_ARM64_ROOT}")
set(CMAKE_FIND_ROOT_PATH "${LUMINARS_ARM64_ROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# LibTorch's dependencies (OpenCV, FFmpeg, protobuf, …) are found by the linker in the root.
set(_lib "${LUMINARS_ARM64_ROOT}/usr/lib/aarch64-linux-gnu")
string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -Wl,-rpath-link,${_lib} -Wl,-rpath-link,${_lib}/openblas-pthread -Wl,-rpath-link,${LUMINARS_ARM64_ROOT}/lib/aarch64-linux-gnu")
string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT " -Wl,-rpath-link,${_lib} -Wl,-rpath-link,${_lib}/openblas-pthread")
# pkg-config (utf8proc) reads the root's .pc files.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR} "${_lib}/pkgconfig:${LUMINARS_ARM64_ROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${LUMINARS_ARM64_ROOT}")
# Test discovery and ctest run the ARM64 test binary under qemu-user with the root's libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${LUMINARS_ARM64_ROOT}")
# The ABI note GCC prints for std::pair arguments on AArch64 (a change in GCC 10.1) concerns code built
# with GCC < 10.1, which nothing here links.
string(APPEND CMAKE_CXX_FLAGS_INIT " -Wno-psabi")

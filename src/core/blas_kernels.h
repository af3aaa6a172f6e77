// OpenBLAS picks its kernels once, as it loads, from the CPU's model number. Debian 12's OpenBLAS
// (0.3.21) does not know newer Xeons (Sapphire Rapids) and falls back to its generic Prescott
// (SSE3) kernels there: LibTorch's float32 products ran 5× slower on such a 2-core VM than with
// its AVX-512 (SkylakeX) kernels. OPENBLAS_CORETYPE names the kernels, but is read only at load
// time, so the `luminars` program sets it and executes itself again before doing anything else.
#pragma once

#include <string>

namespace luminars {

// The OpenBLAS kernels worth naming when OpenBLAS chose `chosen` on a CPU with these features:
// "SkylakeX" (AVX-512 F/BW/VL/DQ) or "Haswell" (AVX2 and FMA) when `chosen` is a kernel set older
// than AVX2; empty when OpenBLAS's choice stands.
std::string better_blas_kernels(const std::string& chosen, bool avx2_fma, bool avx512);

// The same for this CPU's features.
std::string better_blas_kernels_for_this_cpu(const std::string& chosen);

// The kernels OpenBLAS runs in this process ("Prescott", "SkylakeX", …), or empty when the BLAS
// behind LibTorch is not OpenBLAS.
std::string blas_kernels();

// First thing in main(): where OpenBLAS runs generic kernels on a CPU with better ones and
// OPENBLAS_CORETYPE is not set, sets it and re-executes this program (/proc/self/exe) with the
// same arguments. Returns when there is nothing to do, or when the execution fails.
void reexec_with_better_blas_kernels(char** argv);

}  // namespace luminars

#pragma once
// Whether this test binary is a sanitizer build (scripts/sanitize.sh). Under AddressSanitizer its
// quarantine and shadow memory make bounds on resident memory meaningless, so tests leave those out.

namespace luminars::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// LUMINARS_SANITIZE_UNDEFINED: set by CMake on test_sanitizers.cpp when LUMINARS_SANITIZE names
// "undefined" (GCC has no macro of its own for it).
#if defined(LUMINARS_SANITIZE_UNDEFINED)
inline constexpr bool kUndefinedBehaviorSanitizer = true;
#else
inline constexpr bool kUndefinedBehaviorSanitizer = false;
#endif

}  // namespace luminars::test

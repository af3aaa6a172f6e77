#pragma once
// Whether this test binary is an AddressSanitizer build (scripts/sanitize.sh): its quarantine and
// shadow memory make bounds on resident memory meaningless there, so tests leave those out.

namespace luminars::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace luminars::test

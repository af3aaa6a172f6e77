// The sanitizer build (scripts/sanitize.sh) really is one: a heap overflow and a signed overflow
// stop a child process with the sanitizers' reports. Skipped in other builds.
#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "sanitizer.h"

namespace luminars {
namespace {

TEST(Sanitizers, AHeapOverflowIsReportedByAddressSanitizer) {
  if (!test::kAddressSanitizer) GTEST_SKIP() << "not an AddressSanitizer build (scripts/sanitize.sh)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        char* volatile bytes = new char[8];  // read back through volatile: UBSan cannot see its size
        bytes[8] = 1;
        delete[] bytes;
      },
      "heap-buffer-overflow");
}

TEST(Sanitizers, ASignedOverflowIsReportedByUndefinedBehaviorSanitizer) {
  if (!test::kUndefinedBehaviorSanitizer) GTEST_SKIP() << "not an UndefinedBehaviorSanitizer build (scripts/sanitize.sh)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        volatile int big = INT_MAX;
        volatile int sum = big + 1;
        (void)sum;
      },
      "signed integer overflow");
}

}  // namespace
}  // namespace luminars

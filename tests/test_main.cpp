// main() of luminars_tests: as the `luminars` program, OpenBLAS's best kernels for this CPU first
// (core/blas_kernels.h), so that the tests run the products users run, at their speed.
#include <gtest/gtest.h>

#include "core/blas_kernels.h"

int main(int argc, char** argv) {
  luminars::reexec_with_better_blas_kernels(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

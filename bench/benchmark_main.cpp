// main() of the Google Benchmark programs (bench/bench_*.cpp): as the `luminars` program, OpenBLAS's
// best kernels for this CPU first (core/blas_kernels.h), so that a benchmark measures what users run.
#include <benchmark/benchmark.h>

#include "core/blas_kernels.h"

int main(int argc, char** argv) {
  luminars::reexec_with_better_blas_kernels(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

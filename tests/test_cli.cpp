// The `luminars` program and the quick-start example, run as a user would.
#include <cstdlib>
#include <fstream>

#include "core/blas_kernels.h"

#include "test_support.h"

namespace luminars {
namespace {

TEST(Cli, InfoDefaultPrintsBudgetBesideOriginal) {
  auto r = test::run_cli("info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("encoder            31747392"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bottleneck         17989632"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("decoder            35178064"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("embeds              3747840"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("total              88662928"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("~90M"), std::string::npos);
  EXPECT_NE(r.output.find("threads: 2"), std::string::npos) << r.output;
}

TEST(Cli, InfoThreadsOverride) {
  auto r = test::run("'" + std::string(LUMINARS_CLI_PATH) + "' --threads 1 info --preset tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threads: 1"), std::string::npos) << r.output;
  r = test::run("'" + std::string(LUMINARS_CLI_PATH) + "' info --preset tiny --threads 1");  // after the subcommand too
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threads: 1"), std::string::npos) << r.output;
}

TEST(BlasKernels, KernelSetsOlderThanAvx2GiveWay) {
  EXPECT_EQ(better_blas_kernels("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(better_blas_kernels("PRESCOTT", true, false), "Haswell");
  EXPECT_EQ(better_blas_kernels("Sandybridge", true, true), "SkylakeX");
  EXPECT_EQ(better_blas_kernels("Prescott", false, false), "");  // nothing better on this CPU
  for (const char* chosen : {"Haswell", "SkylakeX", "Cooperlake", "Zen", ""}) EXPECT_EQ(better_blas_kernels(chosen, true, true), "") << chosen;
}

// Debian's OpenBLAS falls back to its SSE3 kernels on CPUs it does not know (Sapphire Rapids):
// the program names better ones for itself, unless OPENBLAS_CORETYPE says otherwise.
TEST(Cli, RunsOpenBlasKernelsAsNewAsTheCpu) {
  auto r = test::run("env -u OPENBLAS_CORETYPE '" + std::string(LUMINARS_CLI_PATH) + "' info --preset tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string label = "BLAS: OpenBLAS, ";
  const auto at = r.output.find(label);
  if (at == std::string::npos) GTEST_SKIP() << "LibTorch's BLAS is not OpenBLAS here";
  const auto begin = at + label.size();
  const auto name = r.output.substr(begin, r.output.find(' ', begin) - begin);
  EXPECT_EQ(better_blas_kernels_for_this_cpu(name), "") << name;
  r = test::run("env OPENBLAS_CORETYPE=Prescott '" + std::string(LUMINARS_CLI_PATH) + "' info --preset tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("BLAS: OpenBLAS, Prescott kernels"), std::string::npos) << r.output;  // the user's choice stands
}

// The test programs re-execute themselves as `luminars` does (tests/test_main.cpp): the products
// the tests run are the ones users run, at their speed.
TEST(BlasKernels, TheTestsRunKernelsAsNewAsTheCpu) {
  const std::string name = blas_kernels();
  if (name.empty()) GTEST_SKIP() << "LibTorch's BLAS is not OpenBLAS here";
  const char* named = std::getenv("OPENBLAS_CORETYPE");
  if (named && !better_blas_kernels_for_this_cpu(named).empty()) GTEST_SKIP() << "OPENBLAS_CORETYPE=" << named << " names older kernels";
  EXPECT_EQ(better_blas_kernels_for_this_cpu(name), "") << name;
}

TEST(Cli, InfoConfigFileAndJson) {
  test::TempDir dir;
  test::write_text(dir.file("c.json"), R"({"widths":[32,64],"depths":[1,1],"head_dim":16})");
  auto r = test::run_cli("info --config " + dir.file("c.json") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"widths\": ["), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"head_dim\": 16"), std::string::npos) << r.output;
}

TEST(Cli, BadInputGivesOneLineErrorAndNonZeroExit) {
  test::TempDir dir;
  test::write_text(dir.file("bad.json"), R"({"widths":[192,384,760]})");
  auto r = test::run_cli("info --config " + dir.file("bad.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("luminars: error: " + dir.file("bad.json") + ": invalid config: widths[2] = 760"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  r = test::run_cli("info --preset nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown preset 'nope'"), std::string::npos) << r.output;

  test::write_text(dir.file("junk.safetensors"), "not a safetensors file at all");
  r = test::run_cli("info --checkpoint " + dir.file("junk.safetensors"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("junk.safetensors: header length"), std::string::npos) << r.output;

  r = test::run_cli("--threads -3 info");
  EXPECT_NE(r.exit_code, 0);
  r = test::run_cli("no-such-command");
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, InfoReadsCheckpointConfig) {
  LUMINARS_REQUIRE_FIXTURES();
  auto r = test::run_cli("info --checkpoint " + test::fixtures_dir() + "/luminars_tiny/model.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"widths\":[32,64]"), std::string::npos) << r.output;
}

TEST(Example, QuickstartSamplesFiniteLatents) {
  auto r = test::run(std::string(LUMINARS_QUICKSTART_PATH) + " tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("latents [1, 4, 32, 32]"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars

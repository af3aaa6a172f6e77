// Shared test helpers: fixture lookup, relative error, temporary folders, running the CLI.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/image.h"

namespace luminars::test {

// $LUMINARS_FIXTURES, else ../shared/fixtures beside the repository; empty when neither exists.
std::string fixtures_dir();

// Skips the current test with a message naming the path when the fixtures are missing; fails it
// instead where LUMINARS_CI=1 (CI must not pass with tests skipped).
#define LUMINARS_REQUIRE_FIXTURES()                                                               \
  do {                                                                                             \
    if (::luminars::test::fixtures_dir().empty()) {                                               \
      if (::luminars::test::in_ci())                                                              \
        FAIL() << "fixtures not found (LUMINARS_CI=1): set LUMINARS_FIXTURES or provide "         \
               << ::luminars::test::default_fixtures_path();                                      \
      GTEST_SKIP() << "fixtures not found: set LUMINARS_FIXTURES or provide "                     \
                   << ::luminars::test::default_fixtures_path();                                  \
    }                                                                                              \
  } while (0)
// Whether LUMINARS_CI=1: skips for missing inputs become failures.
bool in_ci();
std::string default_fixtures_path();
// The model the project ships (models/emoji in the source tree).
std::string shipped_model_dir();

// The message of the luminars::Error that `fn` throws; "(no error)" when it throws none.
std::string error_of(const std::function<void()>& fn);

// ‖out − ref‖ / ‖ref‖ in float64.
double rel_error(const torch::Tensor& out, const torch::Tensor& ref);

// A fresh folder under the system temp dir, removed at destruction.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing its output.
RunResult run(const std::string& command);
// Runs the `luminars` program with arguments.
RunResult run_cli(const std::string& args);
// A loopback TCP port that was free a moment ago (the kernel's pick), for a test's rendezvous.
int free_tcp_port();

void write_text(const std::string& path, const std::string& text);

// Mean absolute difference of two pictures' bytes over columns [x0, x1) (x1 −1: to the right
// edge); 255 when their sizes differ.
double mean_abs_difference(const Image& a, const Image& b, int x0 = 0, int x1 = -1);

// A w×h picture with smooth colour gradients (red across, green down, a blue ripple).
Image gradient_image(int w, int h);

// Expects the safetensors files `a` and `b` to hold the same tensors, bit for bit.
void expect_same_tensor_file(const std::string& a, const std::string& b);

// A captioned folder of `n` coloured shapes (circle, square, triangle; six colours) on plain
// light backgrounds, `size`² PNGs with .txt captions ("a red circle", "red circle on a white
// background"). Picture i has colour i % 6 and shape (i / 6) % 3; position and size vary with i.
void write_shapes_dataset(const std::string& dir, int n, int size = 32);
// The first caption of picture i of write_shapes_dataset.
std::string shape_caption(int i);

// A latent cache (train/latent_cache.h) of `n` random latents (4×8×8 by default), `per_shard` to a
// shard, with 1 or 2 captions each, 7-token 40-wide text (the tiny preset's sizes), an empty prompt
// and two sample prompts.
struct LatentCacheShape {
  int64_t per_shard = 5, channels = 4, side = 8;
};
void write_latent_cache(const std::string& dir, int64_t n = 12, LatentCacheShape shape = {});

// A BPE tokenizer (context 16, 600 entries) trained on the captions of DIR/data, written to
// DIR/tokenizer.
void write_tokenizer(const std::string& dir);

}  // namespace luminars::test

// Tests of several ranks need c10d's Gloo in this build (libgloo-dev at configure time); in CI
// its absence fails instead of skipping.
#define REQUIRE_GLOO()                                                                             \
  do {                                                                                             \
    if (!::luminars::gloo_available()) {                                                           \
      if (::luminars::test::in_ci()) FAIL() << "this build has no Gloo process group (LUMINARS_CI=1): install libgloo-dev"; \
      GTEST_SKIP() << "this build has no Gloo process group (install libgloo-dev and reconfigure)"; \
    }                                                                                              \
  } while (0)

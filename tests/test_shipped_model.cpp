// The shipped model (models/emoji): one image with a fixed prompt, seed and sampler settings must
// match the committed reference picture, so a change that breaks the model or its pipeline fails.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "core/image.h"
#include "pipeline/generate.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

TEST(ShippedModel, GeneratesTheReferencePicture) {
  const fs::path root(LUMINARS_SOURCE_DIR);
  test::TempDir dir;
  GenerateOptions o;
  o.model_dir = (root / "models" / "emoji").string();
  o.prompt = "a red heart, noto style";
  o.steps = 12;
  o.cfg_scale = 4.0;
  o.seed = 1;
  o.out = dir.file("heart.png");
  o.progress = false;
  generate(o);
  const Image got = load_image(o.out), want = load_image((root / "docs" / "emoji" / "reference-red-heart-noto-seed1.png").string());
  ASSERT_EQ(got.width, want.width);
  ASSERT_EQ(got.height, want.height);
  double sum = 0;
  for (std::size_t i = 0; i < got.rgb.size(); ++i) sum += std::abs(int(got.rgb[i]) - int(want.rgb[i]));
  // Stated tolerance: a mean absolute difference of at most 2 levels of 255 (float rounding of other
  // CPUs and BLAS builds; a broken model or pipeline differs by tens).
  EXPECT_LE(sum / static_cast<double>(got.rgb.size()), 2.0);
}

}  // namespace
}  // namespace luminars

// `luminars generate` as a user runs it with the shipped model: the PNG records its parameters,
// --from-png repeats them, --init-image/--strength/--mask draw image-to-image and inpainting, and
// misuse gets one clear line.
#include <filesystem>

#include "core/image.h"
#include "pipeline/parameters.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

std::string generate(const std::string& args) { return "generate --model " + kModel + " --quiet --no-bf16 " + args; }

// ctest-labels: slow
TEST(GenerateModes, ParametersAreWrittenAndRepeatedFromThePng) {
  test::TempDir dir;
  auto r = test::run_cli(generate("--prompt 'a purple heart, noto style' --negative 'red' --steps 6 --cfg 5 --seed 3 --out " +
                                  dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto text = read_png_text(dir.file("a.png"));
  ASSERT_TRUE(text.count("parameters"));
  const auto p = parse_parameters(text.at("parameters"));
  EXPECT_EQ(p.prompt, "a purple heart, noto style");
  EXPECT_EQ(p.negative, "red");
  EXPECT_EQ(p.steps, 6);
  EXPECT_DOUBLE_EQ(p.cfg_scale, 5);
  EXPECT_EQ(p.seed, 3u);
  EXPECT_EQ(p.width, 64);
  EXPECT_EQ(p.model, "emoji");

  // The same settings from the PNG: the same picture; a seed given on the command line wins.
  r = test::run_cli(generate("--from-png " + dir.file("a.png") + " --out " + dir.file("b.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load_image(dir.file("a.png")).rgb, load_image(dir.file("b.png")).rgb);
  r = test::run_cli(generate("--from-png " + dir.file("a.png") + " --seed 4 --out " + dir.file("c.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(load_image(dir.file("a.png")).rgb, load_image(dir.file("c.png")).rgb);
  EXPECT_EQ(parse_parameters(read_png_text(dir.file("c.png")).at("parameters")).seed, 4u);
}

// ctest-labels: slow
TEST(GenerateModes, ImageToImageAndInpaintingFromTheCommandLine) {
  test::TempDir dir;
  const Image init = test::gradient_image(64, 64);
  save_png(dir.file("init.png"), init);
  Image mask = init;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) mask.rgb[(static_cast<std::size_t>(y) * 64 + x) * 3 + c] = y < 32 ? 255 : 0;
  save_png(dir.file("mask.png"), mask);

  auto r = test::run_cli(generate("--prompt 'a cat face' --init-image " + dir.file("init.png") + " --strength 0.5 --out " +
                                  dir.file("i2i.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_png_text(dir.file("i2i.png")).at("parameters").find("Denoising strength: 0.5"), std::string::npos);
  r = test::run_cli(generate("--prompt 'a cat face' --init-image " + dir.file("init.png") + " --mask " + dir.file("mask.png") +
                             " --mask-blur 2 --out " + dir.file("inpaint.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Image out = load_image(dir.file("inpaint.png"));
  // The bottom half (black in the mask) is kept exactly beyond the 4-pixel soft edge.
  const std::size_t row = 64 * 3;
  EXPECT_TRUE(std::equal(out.rgb.begin() + 36 * row, out.rgb.end(), init.rgb.begin() + 36 * row));
  EXPECT_FALSE(std::equal(out.rgb.begin(), out.rgb.begin() + 28 * row, init.rgb.begin()));

  // Misuse: one line naming what is wrong.
  r = test::run_cli(generate("--prompt x --mask " + dir.file("mask.png") + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--mask needs --init-image"), std::string::npos) << r.output;
  r = test::run_cli(generate("--prompt x --strength 0.5 --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--strength needs --init-image"), std::string::npos) << r.output;
  r = test::run_cli(generate("--from-png " + dir.file("init.png") + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(dir.file("init.png") + " has no 'parameters' text"), std::string::npos) << r.output;
  r = test::run_cli(generate("--out " + dir.file("x.png")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--prompt is required"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars

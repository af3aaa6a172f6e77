// `generate --from-png`: what a picture's recorded settings restore, what they cannot (said on
// stderr), and pictures that cannot be drawn again without more refused with what is missing.
#include <filesystem>

#include "core/image.h"
#include "pipeline/parameters.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

std::string generate(const std::string& args) { return "generate --model " + kModel + " --quiet --no-bf16 " + args; }

// A 64×64 picture carrying `parameters` as AUTOMATIC1111 writes it.
std::string picture_with(const test::TempDir& dir, const std::string& name, const std::string& parameters) {
  save_png(dir.file(name), test::gradient_image(64, 64), {{"parameters", parameters}});
  return dir.file(name);
}

GenerationParameters recorded(const std::string& png) { return parse_parameters(read_png_text(png).at("parameters")); }

TEST(FromPng, UnavailableSamplerIsRefusedUnlessOverridden) {
  test::TempDir dir;
  const auto png = picture_with(dir, "a1111.png",
                                "a red heart\nSteps: 2, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 7, Size: 64x64, "
                                "Model hash: abc123, Model: sd15, Version: v1.9.4");
  auto r = test::run_cli(generate("--from-png " + png + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("sampler 'DPM++ 2M Karras' from " + png + " is not available (have: euler, heun); pass --sampler"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

// ctest-labels: slow
TEST(FromPng, Automatic1111SettingsAreRestoredAndTheRestNamed) {
  test::TempDir dir;
  const auto karras = picture_with(dir, "karras.png",
                                   "a red heart\nSteps: 2, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 7, Size: 64x64, "
                                   "Model hash: abc123, Model: sd15, Version: v1.9.4");
  auto r = test::run_cli(generate("--from-png " + karras + " --sampler heun --out " + dir.file("k.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("not restored (no such setting here): Model hash, Version"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("drawn with model 'sd15'; drawing with 'emoji'"), std::string::npos) << r.output;
  auto p = recorded(dir.file("k.png"));
  EXPECT_EQ(p.prompt, "a red heart");
  EXPECT_EQ(p.sampler, "heun");
  EXPECT_EQ(p.steps, 2);
  EXPECT_EQ(p.cfg_scale, 5);
  EXPECT_EQ(p.seed, 7u);

  // A1111's own names for the methods LuminaRS has are mapped; "Euler a" with a note.
  const auto heun = picture_with(dir, "heun.png", "a red heart\nSteps: 1, Sampler: Heun, CFG scale: 4, Seed: 8, Size: 64x64");
  r = test::run_cli(generate("--from-png " + heun + " --out " + dir.file("h.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(recorded(dir.file("h.png")).sampler, "heun");
  EXPECT_EQ(recorded(dir.file("h.png")).seed, 8u);
  const auto ancestral = picture_with(dir, "ea.png", "a red heart\nSteps: 1, Sampler: Euler a, Seed: 9, Size: 64x64");
  r = test::run_cli(generate("--from-png " + ancestral + " --out " + dir.file("e.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("sampler 'Euler a' is drawn with euler"), std::string::npos) << r.output;
  EXPECT_EQ(recorded(dir.file("e.png")).sampler, "euler");

  // A hires-fix picture is drawn again in two passes (its Denoising strength is the second's, no
  // init image needed); what has no setting here is named.
  const auto hires = picture_with(dir, "hires.png",
                                  "a red heart\nSteps: 1, Sampler: Euler, Seed: 3, Size: 64x64, Denoising strength: 0.7, "
                                  "Hires upscale: 2, Hires steps: 10");
  r = test::run_cli(generate("--from-png " + hires + " --out " + dir.file("hr.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("not restored (no such setting here): Hires steps"), std::string::npos) << r.output;
  const auto again = recorded(dir.file("hr.png"));
  EXPECT_EQ(again.width, 128);
  EXPECT_EQ(again.first_width, 64);
  EXPECT_EQ(again.strength, 0.7);
  EXPECT_EQ(load_image(dir.file("hr.png")).width, 128);
}

TEST(FromPng, ImageToImageAndInpaintingNeedTheirInputs) {
  test::TempDir dir;
  const auto i2i = picture_with(dir, "i2i.png", "a cat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 64x64, Denoising strength: 0.5");
  auto r = test::run_cli(generate("--from-png " + i2i + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(i2i + " was drawn image-to-image (Denoising strength 0.5): pass --init-image"), std::string::npos)
      << r.output;
  const auto inpainted = picture_with(dir, "inpaint.png",
                                      "a cat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 64x64, Denoising strength: 1, Mask blur: 4");
  r = test::run_cli(generate("--from-png " + inpainted + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(inpainted + " was inpainted (Mask blur 4): pass --init-image and --mask"), std::string::npos) << r.output;
  r = test::run_cli(generate("--from-png " + inpainted + " --init-image " + i2i + " --out " + dir.file("x.png")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("pass --init-image and --mask"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

// ctest-labels: slow
TEST(FromPng, ImageToImageIsRepeatedWithItsInitImage) {
  test::TempDir dir;
  save_png(dir.file("init.png"), test::gradient_image(64, 64));
  auto r = test::run_cli(generate("--prompt 'a cat' --steps 2 --seed 4 --init-image " + dir.file("init.png") +
                                  " --strength 0.6 --out " + dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_cli(generate("--from-png " + dir.file("a.png") + " --init-image " + dir.file("init.png") + " --out " + dir.file("b.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load_image(dir.file("a.png")).rgb, load_image(dir.file("b.png")).rgb);
  ASSERT_TRUE(recorded(dir.file("b.png")).strength.has_value());
  EXPECT_EQ(*recorded(dir.file("b.png")).strength, 0.6);
}

// ctest-labels: slow
TEST(FromPng, BatchRecordsEverySeedAndIsRepeated) {
  test::TempDir dir;
  auto r = test::run_cli(generate("--prompt 'a heart' --steps 1 --seed 5 --batch 3 --out " + dir.file("grid.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("seeds 5 to 7)"), std::string::npos) << r.output;
  const auto text = read_png_text(dir.file("grid.png")).at("parameters");
  EXPECT_NE(text.find("Seed: 5"), std::string::npos) << text;
  EXPECT_NE(text.find("Batch size: 3, Seeds: 5 6 7"), std::string::npos) << text;
  EXPECT_EQ(recorded(dir.file("grid.png")).batch_seeds, (std::vector<uint64_t>{5, 6, 7}));
  // The same grid again from it.
  r = test::run_cli(generate("--from-png " + dir.file("grid.png") + " --out " + dir.file("again.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load_image(dir.file("grid.png")).rgb, load_image(dir.file("again.png")).rgb);
}

}  // namespace
}  // namespace luminars

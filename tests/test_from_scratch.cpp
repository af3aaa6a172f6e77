// Everything from nothing, as the README's from-scratch section runs it: captioned pictures ->
// train-tokenizer -> train-vae -> train-clip -> prepare (with those three) -> train (all stages)
// -> generate, every step through the `luminars` program.
#include <torch/torch.h>

#include <filesystem>

#include "core/files.h"
#include "core/image.h"
#include "pipeline/model_folder.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

// ctest-labels: slow
TEST(FromScratch, TokenizerVaeClipPrepareTrainGenerate) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 24, 32);
  const std::string data = " --data " + dir.file("data");
  auto run = [](const std::string& args) {
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r;
  };
  run("train-tokenizer" + data + " --vocab-size 600 --context-length 16 --out " + dir.file("tokenizer"));
  auto vae = run("train-vae" + data + " --out " + dir.file("vae-run") +
                 " --resolution 16 --widths 16 32 --norm-groups 8 --latent-channels 4 --batch 8 --steps 4 --warmup 1 --val-fraction 0.2");
  EXPECT_NE(vae.output.find("held-out PSNR"), std::string::npos) << vae.output;
  auto clip = run("train-clip" + data + " --tokenizer " + dir.file("tokenizer") + " --out " + dir.file("clip-run") +
                  " --resolution 16 --patch-size 4 --text-width 32 --text-layers 1 --text-heads 2 --vision-width 32"
                  " --vision-layers 1 --vision-heads 2 --projection-dim 32 --batch 8 --steps 4 --warmup 1 --val-fraction 0.2");
  EXPECT_NE(clip.output.find("text->image top-1"), std::string::npos) << clip.output;
  run("prepare" + data + " --vae " + dir.file("vae-run/vae") + " --text-encoder " + dir.file("clip-run/text_encoder") +
      " --tokenizer " + dir.file("clip-run/tokenizer") + " --resolution 16 --out " + dir.file("cache"));
  run("train --cache " + dir.file("cache") + " --out " + dir.file("run") +
      " --preset tiny --stage all --steps 2 --batch 4 --warmup 1 --sample-every 6 --val-fraction 0.2 --device cpu");
  EXPECT_TRUE(fs::exists(dir.file("run/samples/step-0000006.png")));
  const auto model = ModelFolder::load(dir.file("run/model"));
  EXPECT_EQ(model.path_of(model.vae), dir.file("vae-run/vae"));
  run("generate --model " + dir.file("run/model") + " --prompt 'a red circle' --steps 3 --seed 2 --quiet --out " + dir.file("out.png"));
  auto img = load_image(dir.file("out.png"));
  EXPECT_EQ(img.width, 16);
  EXPECT_EQ(img.height, 16);

  // Exported self-contained in F16, it draws nearly the same picture, also as the default model.
  auto e = run("export --model " + dir.file("run/model") + " --out " + dir.file("shipped") +
               " --dtype f16 --steps 3 --hires-from 16 --hires-strength 0.5");
  EXPECT_NE(e.output.find("wrote " + dir.file("shipped")), std::string::npos) << e.output;
  const auto shipped = ModelFolder::load(dir.file("shipped"));
  EXPECT_EQ(shipped.vae, "vae");
  EXPECT_EQ(shipped.sampler.steps, 3);
  EXPECT_EQ(shipped.sampler.hires_from, 16);  // the two-pass default (generate --hires-from)
  EXPECT_EQ(shipped.sampler.hires_strength, 0.5);
  auto refused = test::run_cli("export --model " + dir.file("run/model") + " --out " + dir.file("x") + " --hires-strength 0");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("the hires fix's strength must be in (0, 1], got 0"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(dir.file("x")));
  EXPECT_TRUE(fs::exists(dir.file("shipped/tokenizer/vocab.json")));
  auto r = test::run("LUMINARS_MODEL=" + dir.file("shipped") + " " + std::string(LUMINARS_CLI_PATH) +
                     " generate --prompt 'a red circle' --seed 2 --quiet --out " + dir.file("f16.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto f16 = load_image(dir.file("f16.png"));
  double diff = 0;
  for (std::size_t i = 0; i < img.rgb.size(); ++i) diff += std::abs(int(img.rgb[i]) - int(f16.rgb[i]));
  EXPECT_LT(diff / static_cast<double>(img.rgb.size()), 4.0);  // mean absolute difference in 0..255

  // A decoder fine-tuned for the same latents (train-vae --init --decoder-only) replaces the
  // model's VAE in an export; a VAE whose latents differ is refused, naming what differs.
  auto decoder = run("train-vae" + data + " --init " + dir.file("vae-run/vae") + " --decoder-only --out " + dir.file("decoder-run") +
                     " --resolution 16 --batch 8 --steps 4 --warmup 1 --val-fraction 0.2");
  EXPECT_NE(decoder.output.find("trained the VAE's decoder 4 steps"), std::string::npos) << decoder.output;
  run("export --model " + dir.file("run/model") + " --vae " + dir.file("decoder-run/vae") + " --out " + dir.file("redecoded"));
  EXPECT_EQ(read_file(dir.file("redecoded/vae/config.json")), read_file(dir.file("decoder-run/vae/config.json")));
  EXPECT_NE(read_file(dir.file("redecoded/vae/diffusion_pytorch_model.safetensors")),
            read_file(dir.file("shipped/vae/diffusion_pytorch_model.safetensors")));
  run("generate --model " + dir.file("redecoded") + " --prompt 'a red circle' --steps 3 --seed 2 --quiet --out " + dir.file("redecoded.png"));
  fs::copy(dir.file("decoder-run/vae"), dir.file("other-vae"));
  auto config = read_file(dir.file("other-vae/config.json"));
  const auto at = config.find("\"scaling_factor\"");
  ASSERT_NE(at, std::string::npos) << config;
  config.replace(at, std::string("\"scaling_factor\"").size(), "\"scaling_factor\": 0.5, \"unused\"");
  test::write_text(dir.file("other-vae/config.json"), config);
  r = test::run_cli("export --model " + dir.file("run/model") + " --vae " + dir.file("other-vae") + " --out " + dir.file("broken"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--vae " + dir.file("other-vae") + ": its scaling_factor is 0.500000"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("broken")));

  r = test::run("LUMINARS_MODEL=" + dir.file("nope") + " " + std::string(LUMINARS_CLI_PATH) + " generate --prompt x --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("is not a model folder"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars

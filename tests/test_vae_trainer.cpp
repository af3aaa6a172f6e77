// `train-vae` from nothing on generated shapes: it learns to reconstruct held-out pictures, resumes
// bit-exactly, and writes a diffusers folder whose scaled latents have zero mean and unit variance.
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "core/tensor_io.h"
#include "flow/flow_matching.h"
#include "test_support.h"
#include "train/vae_trainer.h"
#include "vae/vae.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

VaeTrainOptions small_vae(const test::TempDir& dir, const std::string& run, int64_t steps) {
  VaeTrainOptions o;
  o.data_dir = dir.file("data");
  o.resolution = 32;
  o.vae.block_out_channels = {16, 32, 32, 32};
  o.vae.norm_num_groups = 8;
  o.batch_size = 8;
  o.val_fraction = 0.1;
  o.progress = false;
  o.loop.out_dir = dir.file(run);
  o.loop.stages = {StagePlan{1, steps, 2e-3}};
  o.loop.warmup = 10;
  o.loop.decay = LrDecay::Cosine;
  o.loop.ema_decay = 0.9;
  o.loop.validate_every = 0;
  o.loop.sample_every = 0;
  o.loop.checkpoint_every = 0;
  o.loop.quiet = true;
  o.loop.seed = 3;
  return o;
}

// ctest-labels: slow
TEST(VaeTrainer, LearnsShapesAndWritesAScaledDiffusersFolder) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 60, 32);
  auto o = small_vae(dir, "run", 400);
  o.resolution = 16;  // 4× downsampling: 4×4×16 latents for 16×16×3 pixels
  o.vae.block_out_channels = {32, 64, 64};
  o.vae.norm_num_groups = 16;
  o.batch_size = 16;
  o.loop.validate_every = 100;
  o.loop.sample_every = 400;
  auto r = train_vae(o);
  ASSERT_TRUE(r.run.finished);
  // Stated threshold: held-out PSNR above 16 dB after 400 steps of 16 pictures (an untrained VAE
  // gives about 9 dB on these pictures, 400 steps about 18.5 dB).
  EXPECT_GT(r.psnr, 16.0);
  EXPECT_TRUE(fs::exists(dir.file("run/samples/step-0000400.png")));
  EXPECT_TRUE(fs::exists(dir.file("run/loss.png")));

  // The folder loads by its _class_name and its scaled latents are standardised.
  auto vae = load_vae(r.vae_dir);
  EXPECT_EQ(vae->class_name(), "AutoencoderKL");
  EXPECT_EQ(vae->downscale_factor(), 4);
  EXPECT_EQ(vae->latent_channels(), 16);
  EXPECT_DOUBLE_EQ(vae->scaling_factor(), r.scaling_factor);
  std::vector<torch::Tensor> pictures;
  for (int i = 0; i < 60; ++i) {
    auto picture = image_to_tensor(load_image(dir.file("data/shape" + std::to_string(i) + ".png")));
    pictures.push_back(torch::avg_pool2d(picture.unsqueeze(0), 2).squeeze(0));  // 32² -> 16², as loaded for training
  }
  auto post = vae->encode(torch::stack(pictures));
  auto gen = make_generator(1);
  auto x = vae->to_denoiser(post.mean + post.std() * torch::randn(post.mean.sizes(), gen));
  EXPECT_LT(std::abs(x.mean().item<double>()), 0.05);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 0.05);
  // Decoding the posterior mean gives the picture back.
  auto back = vae->decode(post.mean);
  EXPECT_GT(mean_psnr(back, torch::stack(pictures)), 15.0);
}

TEST(VaeTrainer, ResumeIsBitExact) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 20, 32);
  auto straight = small_vae(dir, "straight", 6);
  auto r1 = train_vae(straight);
  ASSERT_TRUE(r1.run.finished);
  auto halves = small_vae(dir, "halves", 6);
  halves.loop.stop_after = 3;
  EXPECT_FALSE(train_vae(halves).run.finished);
  halves.loop.resume = true;
  halves.loop.stop_after = 0;
  auto r2 = train_vae(halves);
  ASSERT_TRUE(r2.run.finished);
  for (const char* f : {"vae.safetensors", "ema.safetensors", "optimizer.safetensors"})
    test::expect_same_tensor_file(r1.run.checkpoint + "/" + f, r2.run.checkpoint + "/" + f);
  EXPECT_DOUBLE_EQ(r1.scaling_factor, r2.scaling_factor);
  // Another KL weight on resume is refused, naming it.
  halves.kl_weight = 1e-2;
  EXPECT_NE(test::error_of([&] { train_vae(halves); }).find("--kl-weight"), std::string::npos);
}

// Decoder-only fine-tuning of a trained VAE: the encoder's weights and the latents' scaling and
// shift stay bit-identical (a denoiser trained on them keeps working) while the decoder trains on.
TEST(VaeTrainer, DecoderOnlyFineTuningKeepsTheLatents) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 40, 32);
  auto base = train_vae(small_vae(dir, "base", 120));
  ASSERT_TRUE(base.run.finished);
  auto o = small_vae(dir, "decoder", 120);
  o.init_dir = base.vae_dir;
  o.decoder_only = true;
  o.vae.block_out_channels = {8, 8};  // ignored: the init folder's config is used
  o.loop.stages.front().lr = 5e-4;
  auto tuned = train_vae(o);
  ASSERT_TRUE(tuned.run.finished);
  EXPECT_EQ(tuned.scaling_factor, base.scaling_factor);
  EXPECT_EQ(tuned.shift_factor, base.shift_factor);
  const auto file = "/diffusion_pytorch_model.safetensors";
  const auto before = load_tensors(base.vae_dir + file), after = load_tensors(tuned.vae_dir + file);
  ASSERT_EQ(before.size(), after.size());
  int encoder = 0, decoder_changed = 0;
  for (const auto& [name, t] : before) {
    ASSERT_TRUE(after.count(name)) << name;
    if (name.starts_with("encoder.") || name.starts_with("quant_conv.")) {
      EXPECT_TRUE(torch::equal(t, after.at(name))) << name;
      ++encoder;
    } else if (!torch::equal(t, after.at(name))) {
      ++decoder_changed;
    }
  }
  EXPECT_GT(encoder, 10);
  EXPECT_GT(decoder_changed, 10);
  // Stated threshold: 120 more steps of the decoder alone raise the undertrained base's held-out
  // PSNR by more than 0.25 dB (measured 12.47 -> 13.00 dB).
  EXPECT_GT(tuned.psnr, base.psnr + 0.25);
  // Without a VAE to start from there is no decoder to fine-tune.
  o = small_vae(dir, "no-init", 1);
  o.decoder_only = true;
  EXPECT_NE(test::error_of([&] { train_vae(o); }).find("--init"), std::string::npos);
}

TEST(VaeTrainer, ClearErrors) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 4, 32);
  auto o = small_vae(dir, "run", 1);
  o.resolution = 36;
  EXPECT_NE(test::error_of([&] { train_vae(o); }).find("resolution 36 is not a multiple of the VAE's downscale factor 8"),
            std::string::npos);
  fs::create_directories(dir.file("empty"));
  o = small_vae(dir, "run2", 1);
  o.data_dir = dir.file("empty");
  EXPECT_NE(test::error_of([&] { train_vae(o); }).find(dir.file("empty")), std::string::npos);
  // Pictures without any caption are enough for a VAE.
  fs::create_directories(dir.file("uncaptioned"));
  for (int i = 0; i < 3; ++i) fs::copy_file(dir.file("data/shape" + std::to_string(i) + ".png"), dir.file("uncaptioned/" + std::to_string(i) + ".png"));
  o = small_vae(dir, "run4", 1);
  o.data_dir = dir.file("uncaptioned");
  EXPECT_TRUE(train_vae(o).run.finished);
  auto r = test::run_cli("train-vae --data " + dir.file("data") + " --out " + dir.file("run3") + " --resolution 20");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("luminars: error: resolution 20 is not a multiple"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars

// `train-clip` from nothing on generated shapes: held-out retrieval clearly above chance after a
// bounded number of steps, bit-exact resume, and output folders the rest of the project reads.
#include <torch/torch.h>

#include <filesystem>

#include "core/tensor_io.h"
#include "test_support.h"
#include "text/clip_tokenizer.h"
#include "text/text_encoder.h"
#include "train/clip_trainer.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

ClipTrainOptions small_clip(const test::TempDir& dir, const std::string& run, int64_t steps) {
  ClipTrainOptions o;
  o.data_dir = dir.file("data");
  o.tokenizer_dir = dir.file("tokenizer");
  o.resolution = 32;
  o.text_width = o.vision_width = o.projection_dim = 64;
  o.text_layers = o.vision_layers = 2;
  o.text_heads = o.vision_heads = 2;
  o.batch_size = 32;
  o.val_fraction = 0.2;
  o.progress = false;
  o.loop.out_dir = dir.file(run);
  o.loop.stages = {StagePlan{1, steps, 2e-3}};
  o.loop.warmup = 10;
  o.loop.ema_decay = 0.9;
  o.loop.validate_every = 0;
  o.loop.sample_every = 0;
  o.loop.checkpoint_every = 0;
  o.loop.quiet = true;
  o.loop.seed = 4;
  return o;
}

void make_data(const test::TempDir& dir, int n) {
  test::write_shapes_dataset(dir.file("data"), n, 32);
  test::write_tokenizer(dir.path.string());
}

TEST(ClipTrainer, RetrievalClearlyAboveChanceAndReadableFolders) {
  test::TempDir dir;
  make_data(dir, 120);
  auto r = train_clip(small_clip(dir, "run", 120));
  ASSERT_TRUE(r.run.finished);
  const auto& m = r.heldout;
  EXPECT_EQ(m.images, 24);
  EXPECT_EQ(m.captions, 48);
  // Stated threshold after 120 steps of 32 images: at least three times chance in both directions
  // (chance is 4.2% top-1 for 24 images; 120 steps reach about 40–50%).
  EXPECT_GT(m.text_to_image_top1, 3 * m.chance_text_to_image_top1);
  EXPECT_GT(m.image_to_text_top1, 3 * m.chance_image_to_text_top1);
  EXPECT_GT(m.text_to_image_top5, 0.6);

  // The text_encoder/ and tokenizer/ folders load as a published pair would, and their projected
  // text embedding is the whole model's.
  auto text = TextEncoder::load(r.text_encoder_dir, r.tokenizer_dir);
  auto clip = load_clip_model(r.clip_dir);
  auto tok = ClipTokenizer::from_dir(clip_tokenizer_dir(r.clip_dir));
  torch::NoGradGuard no_grad;
  auto want = clip->encode_text(clip->tokenize(tok, {"a red circle", "a blue square"}));
  auto got = text.encode_all({"a red circle", "a blue square"}).text_embeds;
  EXPECT_LT(test::rel_error(got, want), 1e-5);
  EXPECT_TRUE(fs::exists(r.clip_dir + "/preprocessor_config.json"));
}

TEST(ClipTrainer, ResumeIsBitExact) {
  test::TempDir dir;
  make_data(dir, 24);
  auto r1 = train_clip(small_clip(dir, "straight", 6));
  ASSERT_TRUE(r1.run.finished);
  auto halves = small_clip(dir, "halves", 6);
  halves.loop.stop_after = 3;
  EXPECT_FALSE(train_clip(halves).run.finished);
  halves.loop.resume = true;
  halves.loop.stop_after = 0;
  auto r2 = train_clip(halves);
  ASSERT_TRUE(r2.run.finished);
  for (const char* f : {"clip.safetensors", "ema.safetensors", "optimizer.safetensors"})
    test::expect_same_tensor_file(r1.run.checkpoint + "/" + f, r2.run.checkpoint + "/" + f);
  EXPECT_EQ(r1.run.last_loss, r2.run.last_loss);
}

TEST(ClipTrainer, ClearErrors) {
  test::TempDir dir;
  make_data(dir, 6);
  auto o = small_clip(dir, "run", 1);
  o.resolution = 36;
  EXPECT_NE(test::error_of([&] { train_clip(o); }).find("resolution 36 is not a multiple of the patch size 8"), std::string::npos);
  // Images whose caption files are all empty.
  fs::create_directories(dir.file("blank"));
  fs::copy_file(dir.file("data/shape0.png"), dir.file("blank/a.png"));
  test::write_text(dir.file("blank/a.txt"), "\n");
  o = small_clip(dir, "run2", 1);
  o.data_dir = dir.file("blank");
  EXPECT_NE(test::error_of([&] { train_clip(o); }).find("no captions in " + dir.file("blank")), std::string::npos);
  o = small_clip(dir, "run3", 1);
  o.batch_size = 1;
  EXPECT_NE(test::error_of([&] { train_clip(o); }).find("at least 2"), std::string::npos);
}

}  // namespace
}  // namespace luminars

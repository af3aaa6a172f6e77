// The staged trainer: what each stage trains, the optimizer, schedule, batches, checkpoints and
// bit-exact resume, on a small synthetic latent cache.
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/image.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "sanitizer.h"
#include "test_support.h"
#include "train/adamw.h"
#include "train/batch_prefetch.h"
#include "train/batch_sampler.h"
#include "data/dataset.h"
#include "train/ema.h"
#include "train/latent_cache.h"
#include "train/run_checkpoint.h"
#include "train/schedule.h"
#include "train/stages.h"
#include "train/trainer.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

// A cache of `n` random 4×8×8 latents with 7-token, 40-wide text (the tiny preset's sizes).
void make_cache(const std::string& dir, int64_t n = 12) { test::write_latent_cache(dir, n); }

TrainOptions small_options(const std::string& cache, const std::string& out) {
  TrainOptions o;
  o.cache_dir = cache;
  o.loop.out_dir = out;
  o.config = Config::preset("tiny");
  o.batch_size = 4;
  o.loop.warmup = 2;
  o.loop.validate_every = 2;
  o.loop.sample_every = 0;
  o.loop.checkpoint_every = 2;
  o.val_fraction = 0.2;
  o.loop.quiet = true;
  o.loop.seed = 5;
  return o;
}

std::map<std::string, torch::Tensor> load(const std::string& path) { return load_tensors(path); }

void expect_same_tensors(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

TEST(Stages, WhatEachStageTrains) {
  EXPECT_TRUE(trains_in_stage("unet.down.0.blocks.0.dwconv.weight", 1));
  EXPECT_TRUE(trains_in_stage("unet.mid.attn.in_proj_weight", 3));
  EXPECT_TRUE(trains_in_stage("unet.down.0.blocks.0.attn.q.weight", 2));
  EXPECT_TRUE(trains_in_stage("unet.mid.blocks.1.attn.kv.weight", 2));
  EXPECT_TRUE(trains_in_stage("unet.up.2.blocks.0.attn.norm.bias", 2));
  EXPECT_TRUE(trains_in_stage("context_embed.3.weight", 2));
  EXPECT_FALSE(trains_in_stage("unet.mid.attn.in_proj_weight", 2));
  EXPECT_FALSE(trains_in_stage("unet.mid.attn.out_proj.weight", 2));
  EXPECT_FALSE(trains_in_stage("unet.down.0.blocks.0.ada.weight", 2));
  EXPECT_FALSE(trains_in_stage("time_embed.0.weight", 2));
  EXPECT_THROW(trains_in_stage("stem.weight", 4), Error);
  EXPECT_DOUBLE_EQ(default_stage_lr(1), 1e-4);
  EXPECT_DOUBLE_EQ(default_stage_lr(2), 1e-5);
  EXPECT_DOUBLE_EQ(default_stage_lr(3), 1e-6);
}

TEST(Stages, FrozenParametersAreNotInTheOptimizer) {
  LuminaRS model(Config::preset("default"));
  auto trainable = apply_stage(model, 2);
  AdamW opt(trainable, {});
  int64_t n = 0;
  for (const auto& name : opt.parameter_names()) {
    EXPECT_TRUE(trains_in_stage(name, 2)) << name;
    n += model->named_parameters()[name].numel();
  }
  // Cross-attention of 2·(2+2+3)+2 = 16 blocks plus context_embed.
  int64_t expect = 0;
  for (const auto& p : model->named_parameters()) {
    EXPECT_EQ(p.value().requires_grad(), trains_in_stage(p.key(), 2)) << p.key();
    if (trains_in_stage(p.key(), 2)) expect += p.value().numel();
  }
  EXPECT_EQ(n, expect);
  EXPECT_GT(n, 0);
  EXPECT_LT(n, count_parameters(*model) / 2);
  EXPECT_EQ(apply_stage(model, 1).size(), model->parameters().size());
}

TEST(AdamW, MatchesLibTorchAdamW) {
  // Several tensors of different shapes (the multi-tensor path) and one that gets no gradient.
  torch::manual_seed(3);
  std::vector<torch::Tensor> mine_p, ref_p;
  for (auto shape : {std::vector<int64_t>{5, 3}, std::vector<int64_t>{7}, std::vector<int64_t>{2, 2, 2}}) {
    mine_p.push_back(torch::randn(shape).requires_grad_(true));
    ref_p.push_back(mine_p.back().detach().clone().requires_grad_(true));
  }
  AdamW mine({{"a", mine_p[0]}, {"b", mine_p[1]}, {"unused", mine_p[2]}}, {1e-2, 0.9, 0.99, 1e-8, 0.05});
  torch::optim::AdamW ref(ref_p, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.05));
  const auto unused_before = mine_p[2].detach().clone();
  for (int i = 0; i < 5; ++i) {
    auto ta = torch::randn({5, 3}), tb = torch::randn({7});
    mine.zero_grad();
    ref.zero_grad();
    ((mine_p[0] - ta).pow(2).sum() + (mine_p[1] - tb).pow(2).sum()).backward();
    ((ref_p[0] - ta).pow(2).sum() + (ref_p[1] - tb).pow(2).sum()).backward();
    mine.step();
    ref.step();
  }
  EXPECT_LT(test::rel_error(mine_p[0], ref_p[0]), 1e-6);
  EXPECT_LT(test::rel_error(mine_p[1], ref_p[1]), 1e-6);
  EXPECT_TRUE(torch::equal(mine_p[2], unused_before));  // no gradient: untouched, no weight decay
  EXPECT_EQ(mine.steps_taken(), 5);
}

TEST(AdamW, AStridedParameterTakesTheMultiTensorFormWithTheSameResult) {
  // A transposed parameter is not contiguous: the step falls back from the one-pass update
  // (train/adamw_kernel.h) to the multi-tensor form for every tensor, which must agree with it.
  torch::manual_seed(4);
  const auto base = torch::randn({6, 4});
  auto one = base.clone().requires_grad_(true);                        // contiguous
  auto strided = base.t().contiguous().t().requires_grad_(true);  // the same values, column-major
  ASSERT_FALSE(strided.is_contiguous());
  AdamW a({{"w", one}}, {1e-2, 0.9, 0.99, 1e-8, 0.05}), b({{"w", strided}}, {1e-2, 0.9, 0.99, 1e-8, 0.05});
  for (int i = 0; i < 5; ++i) {
    const auto target = torch::randn({6, 4});
    a.zero_grad();
    b.zero_grad();
    (one - target).pow(2).sum().backward();
    (strided - target).pow(2).sum().backward();
    a.step();
    b.step();
  }
  EXPECT_FALSE(torch::equal(one, base));  // it moved
  EXPECT_LT(test::rel_error(strided, one), 1e-6);
}

TEST(Schedule, WarmupThenConstantOrCosine) {
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 0, 100, 10, LrDecay::Constant), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 9, 100, 10, LrDecay::Constant), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 50, 100, 10, LrDecay::Constant), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 10, 110, 10, LrDecay::Cosine, 0.0), 1.0);
  EXPECT_NEAR(scheduled_lr(1.0, 60, 110, 10, LrDecay::Cosine, 0.0), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr(1.0, 110, 110, 10, LrDecay::Cosine, 0.1), 0.1, 1e-12);
  EXPECT_THROW(lr_decay_from_name("linear"), Error);
}

TEST(TrainingTimes, ShiftMovesSigmaAsTheSamplersShift) {
  for (auto kind : {TimeSampling::LogitNormal, TimeSampling::Uniform}) {
    auto g1 = make_generator(11), g2 = make_generator(11);
    const auto t = sample_training_times(4096, kind, g1);
    const auto shifted = sample_training_times(4096, kind, g2, torch::kCPU, 3.0);
    // SD3's shift: sigma' = 3·sigma / (1 + 2·sigma), sigma = 1 − t, drawn from the same numbers.
    const auto sigma = (1 - t).to(torch::kFloat64);
    const auto expected = 1 - 3 * sigma / (1 + 2 * sigma);
    EXPECT_LE(test::rel_error(shifted.to(torch::kFloat64), expected), 1e-6);
    EXPECT_GT(shifted.min().item<double>(), 0.0);
    EXPECT_LT(shifted.max().item<double>(), 1.0);
    // More of the training near the noise: a median t of 0.5 (sigma 0.5) moves to 1 − 1.5 / 2 = 0.25.
    EXPECT_LT(shifted.median().item<double>(), t.median().item<double>() - 0.1);
  }
  auto g = make_generator(1);
  EXPECT_THROW(sample_training_times(4, TimeSampling::Uniform, g, torch::kCPU, 0.0), Error);
}

TEST(Batches, DeterministicDropoutAndSplit) {
  test::TempDir dir;
  make_cache(dir.file("cache"), 40);
  auto cache = LatentCache::load(dir.file("cache"));
  EXPECT_EQ(cache.size(), 40);
  EXPECT_EQ(cache.paths[7], "img7.png");
  EXPECT_EQ(cache.captions_of[1].size(), 2u);
  auto [train, val] = split_indices(40, 0.1, 1);
  EXPECT_EQ(val.size(), 4u);
  EXPECT_EQ(train.size(), 36u);
  EXPECT_EQ(split_indices(40, 0.1, 1).validation, val);
  EXPECT_EQ(split_indices(2, 0.01, 1).validation.size(), 1u);  // at least one held out

  BatchSampler s1(cache, train, 7, 0.1, TimeSampling::LogitNormal), s2(cache, train, 7, 0.1, TimeSampling::LogitNormal);
  auto a = s1.sample(123, 8), b = s2.sample(123, 8), c = s1.sample(124, 8);
  EXPECT_TRUE(torch::equal(a.x_clean, b.x_clean));
  EXPECT_TRUE(torch::equal(a.noise, b.noise));
  EXPECT_TRUE(torch::equal(a.t, b.t));
  EXPECT_TRUE(torch::equal(a.ctx, b.ctx));
  EXPECT_FALSE(torch::equal(a.noise, c.noise));
  EXPECT_TRUE((a.t > 0).all().item<bool>() && (a.t < 1).all().item<bool>());
  // Caption dropout: about 10% of samples carry the empty prompt.
  int64_t dropped = 0, total = 0;
  for (int64_t i = 0; i < 100; ++i) {
    auto batch = s1.sample(i, 8);
    for (int64_t j = 0; j < 8; ++j, ++total) dropped += torch::equal(batch.pooled[j], cache.empty_pooled[0]);
  }
  EXPECT_GT(dropped, total * 5 / 100);
  EXPECT_LT(dropped, total * 15 / 100);
}

namespace {

// This process's anonymous resident memory (heap and the like, not mapped files), in kB.
long anonymous_resident_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
  return -1;
}

}  // namespace

// Loading a cache maps its shards and reads no latents: 50 MB of them add far less to the
// heap, even after every row has been gathered once (the pages belong to the file).
TEST(Batches, TheCacheIsReadInPlaceNotCopied) {
  if (test::kAddressSanitizer) GTEST_SKIP() << "ASan's shadow memory counts as anonymous";
  test::TempDir dir;
  const auto cache_dir = dir.file("cache");
  const int64_t per_shard = 200;
  test::write_latent_cache(cache_dir, 2 * per_shard, {per_shard, 16, 32});  // 2 × 2 × 12.5 MB of latents
  const auto last = load_tensors(cache_dir + "/" + shard_name(1)).at("mean")[per_shard - 1].clone();

  const long before = anonymous_resident_kb();
  ASSERT_GT(before, 0) << "no RssAnon in /proc/self/status";
  const auto cache = LatentCache::load(cache_dir);
  ASSERT_EQ(cache.size(), 2 * per_shard);
  std::vector<int64_t> items(static_cast<std::size_t>(cache.size()));
  for (std::size_t i = 0; i < items.size(); ++i) items[i] = static_cast<int64_t>(i);
  BatchSampler sampler(cache, items, 1, 0.0, TimeSampling::LogitNormal);
  for (int64_t index = 0; index < 2 * per_shard / 8; ++index) sampler.sample(index, 8);
  const long grown = anonymous_resident_kb() - before;
  std::printf("[          ] heap after loading a 50 MB cache and reading all of it: %+ld kB\n", grown);
  // A copy would add the 50 MB of latents; the rest is process-wide (worker threads' first stacks
  // and arenas: +12 kB alone, +8.4 MB once under ctest -j2 on a loaded machine).
  EXPECT_LT(grown, 20 * 1024);
  EXPECT_TRUE(torch::equal(cache.mean.gather({2 * per_shard - 1}, torch::kFloat32)[0], last));
}

TEST(Batches, PrefetchGivesTheSameBatchesInAndOutOfOrder) {
  test::TempDir dir;
  make_cache(dir.file("cache"), 20);
  auto cache = LatentCache::load(dir.file("cache"));
  auto [train, val] = split_indices(20, 0.1, 1);
  BatchSampler direct(cache, train, 7, 0.1, TimeSampling::LogitNormal), ahead(cache, train, 7, 0.1, TimeSampling::LogitNormal);
  BatchPrefetch prefetch(ahead, 6);
  for (int64_t index : {0, 1, 2, 9, 10, 3}) {  // in order, a jump, then back (resume, accumulation)
    auto want = direct.sample(index, 6), got = prefetch.get(index);
    EXPECT_TRUE(torch::equal(got.x_clean, want.x_clean)) << index;
    EXPECT_TRUE(torch::equal(got.noise, want.noise)) << index;
    EXPECT_TRUE(torch::equal(got.t, want.t)) << index;
    EXPECT_TRUE(torch::equal(got.ctx, want.ctx)) << index;
    EXPECT_TRUE(torch::equal(got.pooled, want.pooled)) << index;
  }
}

TEST(Trainer, Stage2ChangesOnlyCrossAttention) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  LuminaRS init(Config::preset("tiny") /* text_dim 40 as the cache */);
  for (auto& p : init->parameters()) {
    torch::NoGradGuard g;
    p.add_(torch::randn_like(p) * 0.05);
  }
  save_denoiser(init, dir.file("init.safetensors"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.stages = {2};
  o.steps = {4};
  o.lr = {1e-3};
  o.init = dir.file("init.safetensors");
  auto r = train(o);
  EXPECT_TRUE(r.finished);
  auto before = load(dir.file("init.safetensors"));
  auto after = load(r.checkpoint + "/denoiser.safetensors");
  int changed = 0;
  for (const auto& [name, t] : before) {
    if (trains_in_stage(name, 2)) {
      changed += !torch::equal(t, after.at(name));
    } else {
      EXPECT_TRUE(torch::equal(t, after.at(name))) << name << " changed in stage 2";
    }
  }
  EXPECT_GT(changed, 10);
}

TEST(Trainer, ResumeIsBitExact) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto straight = small_options(dir.file("cache"), dir.file("straight"));
  straight.stages = {1, 2};
  straight.steps = {4, 2};
  straight.loop.grad_accum = 2;
  auto r1 = train(straight);
  ASSERT_TRUE(r1.finished);
  EXPECT_EQ(r1.global_step, 6);

  auto halves = straight;
  halves.loop.out_dir = dir.file("halves");
  halves.loop.stop_after = 3;
  auto r2 = train(halves);
  EXPECT_FALSE(r2.finished);
  EXPECT_EQ(r2.global_step, 3);
  halves.loop.resume = true;
  halves.loop.stop_after = 0;
  auto r3 = train(halves);
  EXPECT_TRUE(r3.finished);
  EXPECT_EQ(r3.global_step, 6);
  for (const char* f : {"denoiser.safetensors", "ema.safetensors", "optimizer.safetensors"})
    expect_same_tensors(load(r1.checkpoint + "/" + f), load(r3.checkpoint + "/" + f));
  EXPECT_EQ(r1.last_loss, r3.last_loss);
  // Resuming a finished run changes nothing and still names its last checkpoint.
  auto r4 = train(halves);
  EXPECT_TRUE(r4.finished);
  EXPECT_EQ(r4.global_step, 6);
  EXPECT_EQ(r4.checkpoint, r3.checkpoint);
}

TEST(Trainer, CheckpointsLogsAndPlots) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.steps = {6};
  o.loop.keep_checkpoints = 2;
  auto r = train(o);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(latest_checkpoint(dir.file("run")).value(), r.checkpoint);
  EXPECT_EQ(fs::path(r.checkpoint).filename(), "step-0000006");
  int kept = 0;
  for (const auto& e : fs::directory_iterator(dir.file("run/checkpoints"))) kept += e.is_directory();
  EXPECT_EQ(kept, 2);  // step 4 and 6; step 2 pruned
  // The JSONL log: 6 training lines and validation at steps 2, 4, 6.
  std::ifstream log(dir.file("run/log.jsonl"));
  std::string line;
  int train_lines = 0, val_lines = 0;
  while (std::getline(log, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") ++train_lines;
    if (j["type"] == "val") {
      ++val_lines;
      EXPECT_GT(j["val_loss"].get<double>(), 0);
    }
  }
  EXPECT_EQ(train_lines, 6);
  EXPECT_EQ(val_lines, 3);
  auto plot = load_image(dir.file("run/loss.png"));
  EXPECT_GT(plot.width, 100);
  // A half-written checkpoint (killed during a save) does not disturb `latest`.
  fs::create_directories(dir.file("run/checkpoints/.tmp-step-0000008"));
  test::write_text(dir.file("run/checkpoints/.tmp-step-0000008/denoiser.safetensors"), "partial");
  EXPECT_EQ(latest_checkpoint(dir.file("run")).value(), r.checkpoint);
}

// The held-out loss is logged for the trained weights and for their average (what the model folder
// holds): with a decay near 1 the average stays at the initial weights while training moves them.
TEST(Trainer, LogsTheAveragedWeightsHeldOutLossBesideTheTrainedOnes) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.steps = {6};
  o.lr = {1e-2};
  o.loop.ema_decay = 0.999999;
  ASSERT_TRUE(train(o).finished);
  std::ifstream log(dir.file("run/log.jsonl"));
  std::vector<double> trained, averaged;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] != "val") continue;
    trained.push_back(j.at("val_loss").get<double>());
    averaged.push_back(j.at("ema_val_loss").get<double>());
  }
  ASSERT_EQ(trained.size(), 3u);
  EXPECT_GT(std::abs(trained.back() - trained.front()), 1e-3 * trained.front());  // training moved the weights
  EXPECT_NEAR(averaged.back(), averaged.front(), 1e-4 * averaged.front());        // their average did not
  EXPECT_GT(std::abs(averaged.back() - trained.back()), 1e-3 * trained.back());
}

TEST(Trainer, SampleGridThroughDecodeHook) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.steps = {2};
  o.loop.sample_every = 2;
  TrainHooks hooks;
  int calls = 0;
  hooks.decode = [&](const torch::Tensor& latents) {
    ++calls;
    EXPECT_EQ(latents.sizes(), torch::IntArrayRef({2, 4, 8, 8}));
    return torch::tanh(latents.narrow(1, 0, 3));  // a stand-in decoder: [2,3,8,8]
  };
  train(o, hooks);
  EXPECT_EQ(calls, 1);
  auto grid = load_image(dir.file("run/samples/step-0000002.png"));
  EXPECT_EQ(grid.width, 8 * 2 + 2);
  EXPECT_EQ(grid.height, 8);
}

TEST(Trainer, BadOptionsAndMissingCache) {
  test::TempDir dir;
  auto o = small_options(dir.file("nope"), dir.file("run"));
  try {
    train(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no training cache at " + dir.file("nope")), std::string::npos) << e.what();
  }
  make_cache(dir.file("cache"));
  o.cache_dir = dir.file("cache");
  o.stages = {1, 2};
  o.steps = {1};
  EXPECT_THROW(train(o), Error);
  o.stages = {4};
  EXPECT_THROW(train(o), Error);
  o.stages = {1};
  o.batch_size = 0;
  EXPECT_THROW(train(o), Error);
}

}  // namespace
}  // namespace luminars

namespace luminars {
namespace {

TEST(Trainer, RefusesAnEarlierRunUnlessResumeOrOverwrite) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.steps = {6};
  ASSERT_TRUE(train(o).finished);  // checkpoints at steps 2, 4, 6
  o.steps = {2};
  const auto message = test::error_of([&] { train(o); });
  EXPECT_NE(message.find("--resume"), std::string::npos) << message;
  EXPECT_NE(message.find("--overwrite"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000006")));  // nothing touched
  o.loop.overwrite = true;
  auto r = train(o);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(latest_checkpoint(dir.file("run")).value(), r.checkpoint);
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000002/denoiser.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("run/checkpoints/step-0000006")));
}

TEST(Trainer, PruningNeverRemovesTheCheckpointJustWritten) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  Ema ema(*model, 0.9);
  AdamW opt(apply_stage(model, 1), {});
  for (const char* old : {"step-0000400", "step-0000500"}) fs::create_directories(dir.file(std::string("run/checkpoints/") + old));
  RunState state;
  state.global_step = 2;
  const CheckpointedModule m{*model, "denoiser", {}};
  auto written = save_training_checkpoint(dir.file("run"), m, ema, opt, state, 2);
  EXPECT_TRUE(fs::exists(written + "/denoiser.safetensors"));
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000500")));  // the newest other one
  EXPECT_FALSE(fs::exists(dir.file("run/checkpoints/step-0000400")));
  state.global_step = 3;
  written = save_training_checkpoint(dir.file("run"), m, ema, opt, state, 1);
  EXPECT_TRUE(fs::exists(written + "/state.json"));
  EXPECT_EQ(latest_checkpoint(dir.file("run")).value(), written);
  EXPECT_FALSE(fs::exists(dir.file("run/checkpoints/step-0000500")));
}

// Every option and config field the results depend on is compared on resume; the error names the
// field and both values. Steps and the intervals may change.
TEST(Trainer, ResumeRefusesOtherOptions) {
  test::TempDir dir;
  make_cache(dir.file("cache"));
  auto o = small_options(dir.file("cache"), dir.file("run"));
  o.stages = {1, 2};
  o.steps = {3, 2};
  o.loop.stop_after = 2;
  ASSERT_FALSE(train(o).finished);
  o.loop.resume = true;
  o.loop.stop_after = 0;
  auto changed = [&](const std::function<void(TrainOptions&)>& change) {
    auto c = o;
    change(c);
    return test::error_of([&] { train(c); });
  };
  const std::string at = "cannot resume " + dir.file("run/checkpoints/step-0000002") + ": ";
  auto expect_refused = [&](const std::function<void(TrainOptions&)>& change, const std::string& difference) {
    const auto message = changed(change);
    EXPECT_EQ(message.rfind(at + difference + " (fields that may change on resume: ", 0), 0u) << message;
  };
  expect_refused([](TrainOptions& c) { c.batch_size = 3; }, "--batch was 4, now 3");
  expect_refused([](TrainOptions& c) { c.loop.grad_accum = 2; }, "--grad-accum was 1, now 2");
  expect_refused([](TrainOptions& c) { c.lr = {1e-3, 1e-5}; }, "--lr was [0.0001,1e-05], now [0.001,1e-05]");
  // One stage fewer: its learning rate is the first field (by name) to differ.
  expect_refused([](TrainOptions& c) { c.stages = {1}; c.steps = {3}; }, "--lr was [0.0001,1e-05], now [0.0001]");
  expect_refused([](TrainOptions& c) { c.stages = {1, 3}; c.lr = {1e-4, 1e-5}; }, "--stage was [1,2], now [1,3]");
  expect_refused([](TrainOptions& c) { c.loop.decay = LrDecay::Cosine; }, "--lr-schedule was constant, now cosine");
  expect_refused([](TrainOptions& c) { c.loop.min_lr_ratio = 0.2; }, "--min-lr-ratio was 0.1, now 0.2");
  expect_refused([](TrainOptions& c) { c.loop.beta1 = 0.8; }, "--beta1 was 0.9, now 0.8");
  expect_refused([](TrainOptions& c) { c.loop.beta2 = 0.99; }, "--beta2 was 0.999, now 0.99");
  expect_refused([](TrainOptions& c) { c.loop.adam_eps = 1e-6; }, "--adam-eps was 1e-08, now 1e-06");
  expect_refused([](TrainOptions& c) { c.loop.weight_decay = 0.1; }, "--weight-decay was 0.01, now 0.1");
  expect_refused([](TrainOptions& c) { c.loop.clip_grad = 0.5; }, "--clip-grad was 1.0, now 0.5");
  expect_refused([](TrainOptions& c) { c.loop.ema_decay = 0.99; }, "--ema was 0.999, now 0.99");
  expect_refused([](TrainOptions& c) { c.loop.warmup = 3; }, "--warmup was 2, now 3");
  expect_refused([](TrainOptions& c) { c.loop.seed = 6; }, "--seed was 5, now 6");
  expect_refused([](TrainOptions& c) { c.caption_dropout = 0.2; }, "--caption-dropout was 0.1, now 0.2");
  expect_refused([](TrainOptions& c) { c.time_sampling = TimeSampling::Uniform; }, "--time-sampling was logit-normal, now uniform");
  expect_refused([](TrainOptions& c) { c.time_shift = 3; }, "--time-shift was (not recorded), now 3.0");
  expect_refused([](TrainOptions& c) { c.grad_last_recursion_only = true; }, "--grad-last-recursion was false, now true");
  // Config fields that leave every tensor's shape as it was.
  const auto tiny = Config::preset("tiny");
  expect_refused([&](TrainOptions& c) { c.config.recursions = tiny.recursions + 1; },
                 "config.recursions was " + std::to_string(tiny.recursions) + ", now " + std::to_string(tiny.recursions + 1));
  // The cache by what it holds: a copy elsewhere resumes, another cache of the same shapes does not.
  test::write_latent_cache(dir.file("other"), 12, {4, 4, 8});
  const auto other_message = changed([&](TrainOptions& c) { c.cache_dir = dir.file("other"); });
  EXPECT_EQ(other_message.rfind(at + "--cache was ", 0), 0u) << other_message;
  fs::copy(dir.file("cache"), dir.file("moved"), fs::copy_options::recursive);
  o.cache_dir = dir.file("moved");
  // Steps, checkpoints, the intervals and threads may change.
  o.steps = {4, 2};
  o.loop.checkpoint_every = 3;
  o.loop.keep_checkpoints = 5;
  o.loop.validate_every = 3;
  o.loop.sample_every = 0;
  auto r = train(o);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.global_step, 6);
}

}  // namespace
}  // namespace luminars

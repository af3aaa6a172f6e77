// Data-parallel training on c10d (train/distributed.h): the launch environment, batch parts,
// two ranks on Gloo over loopback training what one process trains at the doubled batch (the
// denoiser, the VAE and CLIP), resuming at another world size, and a rank that dies or stalls
// ending the run with a clear error instead of a hang.
#include <algorithm>
#include <chrono>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/error.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "train/batch_sampler.h"
#include "train/distributed.h"
#include "train/latent_cache.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kCli = LUMINARS_CLI_PATH;

// The CLI with one intra-op thread a process (two ranks share this machine's cores).
test::RunResult cli(const std::string& args, const std::string& env = "") {
  return test::run(env + " " + kCli + " --threads 1 " + args);
}

// The largest difference over the tensors of two safetensors files with the same names: each
// tensor's max |a − b|, absolute, or relative to the larger of its two max |·| (0 where both are
// all zeros).
double max_difference(const std::string& a, const std::string& b, bool relative) {
  auto x = load_tensors(a), y = load_tensors(b);
  EXPECT_EQ(x.size(), y.size()) << a << " vs " << b;
  double worst = 0;
  for (const auto& [name, t] : x) {
    if (!y.count(name)) {
      ADD_FAILURE() << name << " missing from " << b;
      continue;
    }
    const auto p = t.to(torch::kFloat64), q = y.at(name).to(torch::kFloat64);
    const double scale = relative ? std::max(p.abs().max().item<double>(), q.abs().max().item<double>()) : 1.0;
    if (scale > 0) worst = std::max(worst, (p - q).abs().max().item<double>() / scale);
  }
  return worst;
}

// Two runs' checkpoints agree up to the order of float sums (another split of the batch over
// ranks and threads). Weights and EMA: Adam turns a gradient's rounding into a step of up to the
// learning rate, so the bound is `fraction` of what `steps` steps at `lr` can move a weight, absolute
// (1%; 10% where some gradients are exactly zero but for rounding, as in the VAE and CLIP below).
// Optimizer moments (unless `fraction` is for gradients that are rounding noise, whose moments are
// noise too): 1e-4 relative to each tensor's largest value (their scales vary by decades).
void expect_same_checkpoint(const std::string& a, const std::string& b, const std::string& weights, double lr, int steps,
                            double fraction = 0.01) {
  for (const std::string& f : {weights, std::string("ema.safetensors")}) {
    const double d = max_difference(a + "/" + f, b + "/" + f, false);
    EXPECT_LE(d, fraction * lr * steps) << b << "/" << f;  // summation order, in units of Adam's largest steps
    std::printf("[          ] %s: max |a - b| = %.3g (bound %.3g)\n", f.c_str(), d, fraction * lr * steps);
  }
  if (fraction > 0.01) return;
  const double d = max_difference(a + "/optimizer.safetensors", b + "/optimizer.safetensors", true);
  EXPECT_LE(d, 1e-4) << b << "/optimizer.safetensors";  // summation order, relative to each moment tensor's scale
  std::printf("[          ] optimizer.safetensors: max |a - b| / max |.| = %.3g\n", d);
}

// One figure of every training step of RUN/log.jsonl ("loss", "grad_norm"), in order.
std::vector<double> logged(const std::string& run, const std::string& field) {
  std::vector<double> out;
  std::ifstream in(run + "/log.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") out.push_back(j[field].get<double>());
  }
  return out;
}

// The loss and the gradient norm (before clipping) of every step agree to `tolerance`, relative:
// Adam and clipping would hide gradients off by a constant factor from the weights alone.
void expect_same_steps(const std::string& a, const std::string& b, std::size_t steps, double tolerance = 1e-5) {
  for (const char* field : {"loss", "grad_norm"}) {
    const auto x = logged(a, field), y = logged(b, field);
    ASSERT_EQ(x.size(), steps) << a;
    ASSERT_EQ(y.size(), steps) << b;  // rank 0 alone writes the log
    for (std::size_t i = 0; i < steps; ++i)
      // Float summation order over 2 ranks; relative, with values below 1 held to `tolerance` absolute.
      EXPECT_NEAR(x[i], y[i], tolerance * std::max(1.0, std::abs(x[i]))) << field << " at step " << i + 1 << " of " << b;
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The tiny denoiser on the test cache; checkpoints at the end only.
std::string train_args(const std::string& cache, const std::string& out, int steps, const std::string& extra = "") {
  return "train --cache " + cache + " --out " + out + " --preset tiny --steps " + std::to_string(steps) +
         " --lr 1e-3 --warmup 1 --checkpoint-every 0 --validate-every 2 --sample-every 0 --val-fraction 0.2 --seed 5 --device cpu " + extra;
}

std::string step_dir(const std::string& run, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%07d", step);
  return run + "/checkpoints/" + name;
}

// ---------------------------------------------------------------------------------------------

TEST(Distributed, LaunchEnvironmentOfTorchrunAndSlurm) {
  auto from = [](std::map<std::string, std::string> vars) {
    return launch_env([vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  auto one = from({});
  EXPECT_FALSE(one.distributed());
  EXPECT_EQ(one.world_size, 1);

  auto t = from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "1234"}});
  EXPECT_TRUE(t.distributed());
  EXPECT_EQ(t.launcher, "torchrun");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 8);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.local_world_size, 2);
  EXPECT_EQ(t.master_addr, "node0");
  EXPECT_EQ(t.master_port, 1234);
  auto by_hand = from({{"RANK", "1"}, {"WORLD_SIZE", "2"}});  // everything on this machine
  EXPECT_EQ(by_hand.local_rank, 1);
  EXPECT_EQ(by_hand.local_world_size, 2);
  EXPECT_EQ(by_hand.master_addr, "127.0.0.1");
  EXPECT_EQ(by_hand.master_port, 29500);

  auto s = from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_LOCALID", "1"},
                 {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"}, {"MASTER_ADDR", "node0"}});
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.local_world_size, 4);
  EXPECT_EQ(s.master_addr, "node0");
  // torchrun's variables win over Slurm's (torchrun run inside an allocation).
  EXPECT_EQ(from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}}).launcher, "torchrun");
  EXPECT_FALSE(from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed());

  auto error = [&](std::map<std::string, std::string> vars) { return test::error_of([&] { from(vars); }); };
  EXPECT_NE(error({{"RANK", "0"}}).find("RANK and WORLD_SIZE must be set together"), std::string::npos);
  EXPECT_NE(error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2: expected a whole number from 0 to 1"), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "2x"}}).find("WORLD_SIZE=2x"), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000"), std::string::npos);
  EXPECT_NE(error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).find("set MASTER_ADDR"), std::string::npos);
}

TEST(Distributed, BatchPartsPutTogetherAreTheBatch) {
  EXPECT_TRUE(batch_part(8, 0, 1).whole());
  EXPECT_EQ(batch_part(8, 3, 4).begin, 6);
  EXPECT_EQ(batch_part(8, 3, 4).size, 2);
  EXPECT_NE(test::error_of([] { batch_part(6, 0, 4); }).find("give --batch a multiple of 4"), std::string::npos);

  test::TempDir dir;
  test::write_latent_cache(dir.file("cache"), 12);
  const auto cache = LatentCache::load(dir.file("cache"));
  std::vector<int64_t> items(12);
  for (int64_t i = 0; i < 12; ++i) items[static_cast<std::size_t>(i)] = i;
  BatchSampler sampler(cache, items, 3, 0.3, TimeSampling::LogitNormal);
  for (int64_t index : {0, 5}) {
    auto whole = sampler.sample(index, 6);
    auto a = sampler.sample(index, 6, batch_part(6, 0, 2)), b = sampler.sample(index, 6, batch_part(6, 1, 2));
    EXPECT_TRUE(torch::equal(torch::cat({a.x_clean, b.x_clean}), whole.x_clean));
    EXPECT_TRUE(torch::equal(torch::cat({a.noise, b.noise}), whole.noise));
    EXPECT_TRUE(torch::equal(torch::cat({a.t, b.t}), whole.t));
    EXPECT_TRUE(torch::equal(torch::cat({a.ctx, b.ctx}), whole.ctx));
    EXPECT_TRUE(torch::equal(torch::cat({a.pooled, b.pooled}), whole.pooled));
    auto joined = a.images;
    joined.insert(joined.end(), b.images.begin(), b.images.end());
    EXPECT_EQ(joined, whole.images);
  }
  // Over an epoch (12 images, batches of 6), the ranks read disjoint parts of the cache and
  // together all of it, as with PyTorch's DistributedSampler.
  std::vector<int64_t> read[2];
  for (int64_t index : {0, 1})
    for (int64_t rank : {0, 1}) {
      auto b = sampler.sample(index, 6, batch_part(6, rank, 2));
      read[rank].insert(read[rank].end(), b.images.begin(), b.images.end());
    }
  for (auto& r : read) std::sort(r.begin(), r.end());
  std::vector<int64_t> both;
  std::set_union(read[0].begin(), read[0].end(), read[1].begin(), read[1].end(), std::back_inserter(both));
  EXPECT_EQ(read[0].size(), 6u);
  EXPECT_EQ(read[1].size(), 6u);
  EXPECT_EQ(both, items);
}

// The acceptance test of data parallelism: 2 processes × batch 2 (with gradient accumulation and
// clipping) give the weights, EMA, optimizer state and losses of 1 process × batch 4.
TEST(Distributed, TwoRanksTrainWhatOneProcessTrainsAtTheDoubledBatch) {
  REQUIRE_GLOO();
  test::TempDir dir;
  test::write_latent_cache(dir.file("cache"));
  auto r = cli(train_args(dir.file("cache"), dir.file("one"), 4, "--batch 4 --grad-accum 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = cli(train_args(dir.file("cache"), dir.file("two"), 4, "--batch 4 --grad-accum 2 --nproc-per-node 2 --dist-timeout 60"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("data-parallel over 2 ranks (gloo)"), std::string::npos) << r.output;
  expect_same_checkpoint(step_dir(dir.file("one"), 4), step_dir(dir.file("two"), 4), "denoiser.safetensors", 1e-3, 4);
  expect_same_steps(dir.file("one"), dir.file("two"), 4);
  EXPECT_TRUE(fs::exists(dir.file("two/model/denoiser/model.safetensors")));
  // A batch that does not split over the ranks is refused.
  r = cli(train_args(dir.file("cache"), dir.file("odd"), 2, "--batch 3 --nproc-per-node 2 --dist-timeout 30"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("give --batch a multiple of 2"), std::string::npos) << r.output;
}

// Stopped after 2 of 4 steps on 2 ranks and finished by 1 process, or the other way round (rank 0
// hands the checkpoint's weights, EMA and optimizer state to rank 1): the run of 1 process throughout.
TEST(Distributed, ResumesAtAnotherWorldSize) {
  REQUIRE_GLOO();
  test::TempDir dir;
  test::write_latent_cache(dir.file("cache"));
  auto r = cli(train_args(dir.file("cache"), dir.file("one"), 4, "--batch 4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string two_ranks = " --nproc-per-node 2 --dist-timeout 60";
  for (const auto& [run, first, then] : {std::tuple{"two-then-one", two_ranks, std::string()}, std::tuple{"one-then-two", std::string(), two_ranks}}) {
    r = cli(train_args(dir.file("cache"), dir.file(run), 4, "--batch 4 --stop-after 2" + first));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(fs::exists(step_dir(dir.file(run), 2))) << run;
    r = cli(train_args(dir.file("cache"), dir.file(run), 4, "--batch 4 --resume" + then));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_same_checkpoint(step_dir(dir.file("one"), 4), step_dir(dir.file(run), 4), "denoiser.safetensors", 1e-3, 4);
  }
}

// The VAE (per-element losses) and CLIP (a loss over the whole batch's pairs: embeddings gathered
// from every rank) train the same on 2 ranks as on 1 process at the doubled batch. At a learning
// rate of 1e-5: some of their parameters have an exact gradient of zero (a key projection's bias,
// to which softmax is blind) that is rounding noise in practice, and Adam turns noise of a size
// near its epsilon into updates of up to the learning rate, different for any other order of
// summation (more threads in one process as much as two ranks).
TEST(Distributed, VaeAndClipTrainTheSameOnTwoRanks) {
  REQUIRE_GLOO();
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 12, 32);
  const std::string vae = "train-vae --data " + dir.file("data") +
                          " --resolution 32 --widths 8 16 --norm-groups 4 --latent-channels 4 --steps 3 --batch 4 --warmup 1 "
                          "--lr 1e-5 --validate-every 0 --sample-every 0 --val-fraction 0 --device cpu --out ";
  // One process on 2 threads splits the batch as the 2 ranks do: the flat backgrounds of these
  // pictures make the VAE's gradient depend on the order of its sums (one process's gradient norms
  // moved 6e-5, relative, from 1 to 2 threads on a Zen 3; 2 ranks agree with 2 threads to 1e-7).
  auto r = test::run(std::string(kCli) + " --threads 2 " + vae + dir.file("vae1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = cli(vae + dir.file("vae2") + " --nproc-per-node 2 --dist-timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_checkpoint(step_dir(dir.file("vae1"), 3), step_dir(dir.file("vae2"), 3), "vae.safetensors", 1e-5, 3, 0.1);
  expect_same_steps(dir.file("vae1"), dir.file("vae2"), 3);
  EXPECT_TRUE(fs::exists(dir.file("vae2/vae/config.json")));

  test::write_tokenizer(dir.path.string());
  const std::string clip = "train-clip --data " + dir.file("data") + " --tokenizer " + dir.file("tokenizer") +
                           " --resolution 32 --patch-size 8 --text-width 32 --vision-width 32 --projection-dim 32 --text-layers 1 "
                           "--vision-layers 1 --text-heads 2 --vision-heads 2 --steps 3 --batch 8 --warmup 1 --lr 1e-5 "
                           "--validate-every 0 --val-fraction 0 --device cpu --out ";
  r = cli(clip + dir.file("clip1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = cli(clip + dir.file("clip2") + " --nproc-per-node 2 --dist-timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_checkpoint(step_dir(dir.file("clip1"), 3), step_dir(dir.file("clip2"), 3), "clip.safetensors", 1e-5, 3, 0.1);
  expect_same_steps(dir.file("clip1"), dir.file("clip2"), 3);
}

// A rank killed mid-run: the launcher stops the other and exits non-zero naming it, promptly.
TEST(Distributed, ADeadRankEndsTheRunWithAClearError) {
  REQUIRE_GLOO();
  test::TempDir dir;
  test::write_latent_cache(dir.file("cache"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cli(train_args(dir.file("cache"), dir.file("run"), 200, "--batch 4 --nproc-per-node 2 --dist-timeout 60"),
               "LUMINARS_DIST_FAULT=1:3:kill");
  const double secs = seconds_since(t0);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 1 of 2 was killed by signal 9"), std::string::npos) << r.output;
  EXPECT_LT(secs, 60) << r.output;  // not the 60 s timeout: the dead peer's closed connection is noticed at once
}

// A rank that stalls (alive, never answering), launched torchrun-style by hand: the other fails
// with a clear error once --dist-timeout has passed.
TEST(Distributed, AStalledRankTimesOutWithAClearError) {
  REQUIRE_GLOO();
  test::TempDir dir;
  test::write_latent_cache(dir.file("cache"));
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(test::free_tcp_port()) + " LUMINARS_DIST_FAULT=1:2:hang";
  const std::string args = " --threads 1 " + train_args(dir.file("cache"), dir.file("run"), 200, "--batch 4 --dist-timeout 3");
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 1 in the background (killed at the end, by its pid), rank 0 in the foreground.
  auto r = test::run("( " + env + " RANK=1 " + kCli + args + " > " + dir.file("rank1.log") + " 2>&1 & pid=$!; " + env + " RANK=0 timeout 120 " +
                     kCli + args + "; echo \"rank0-exit=$?\"; kill -9 $pid; wait $pid 2>/dev/null )");
  const double secs = seconds_since(t0);
  EXPECT_EQ(r.output.find("rank0-exit=0"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("rank0-exit=124"), std::string::npos) << "rank 0 hung: " << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--dist-timeout"), std::string::npos) << r.output;
  EXPECT_LT(secs, 60) << r.output;
}

}  // namespace
}  // namespace luminars

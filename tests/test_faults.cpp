// Faults really sent to long jobs: kill -9 during training (also in the middle of writing a
// checkpoint), during prepare and during serve; a full disk (a file-size limit) while a checkpoint
// is saved; NaN losses; a model folder with a truncated file. Each ends with a clear message, and
// the restarted job goes on with nothing lost or corrupted.
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/files.h"
#include "test_support.h"
#include "train/run_checkpoint.h"
#include "train/train_loop.h"
#include "train/train_task.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();
const std::string kCli = LUMINARS_CLI_PATH;

// A tiny VAE trained a few steps: seconds on the CPU, checkpoints every 2 steps.
std::string train_vae(const std::string& data, const std::string& out, int steps, const std::string& extra = "") {
  return "train-vae --data " + data + " --out " + out + " --resolution 32 --widths 8 16 --norm-groups 4 --latent-channels 4 --steps " +
         std::to_string(steps) + " --batch 2 --warmup 1 --checkpoint-every 2 --validate-every 0 --sample-every 0 --val-fraction 0 --device cpu " +
         extra;
}

void expect_same_run_result(const std::string& a, const std::string& b) {
  test::expect_same_tensor_file(a + "/vae/diffusion_pytorch_model.safetensors", b + "/vae/diffusion_pytorch_model.safetensors");
}

TEST(Faults, KillDuringTrainingAndDuringACheckpointThenResumeBitExactly) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 8, 32);
  auto r = test::run_cli(train_vae(dir.file("data"), dir.file("whole"), 60));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // kill -9 halfway through writing checkpoint 4 (its weights written, the rest not).
  r = test::run("LUMINARS_KILL_IN_CHECKPOINT=4 " + kCli + " " + train_vae(dir.file("data"), dir.file("killed"), 60));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(fs::exists(dir.file("killed/checkpoints/.tmp-step-0000004")));
  EXPECT_EQ(test::run("cat " + dir.file("killed/checkpoints/latest")).output, "step-0000002\n");
  // kill -9 from outside while it trains on from there.
  r = test::run("(" + kCli + " " + train_vae(dir.file("data"), dir.file("killed"), 60, "--resume") +
                " >/dev/null 2>&1 & pid=$!; for i in $(seq 400); do [ -d " + dir.file("killed/checkpoints/step-0000004") +
                " ] && break; sleep 0.01; done; kill -9 $pid; wait $pid; echo exit=$?)");
  EXPECT_NE(r.output.find("exit=137"), std::string::npos) << r.output;
  // Resumed: the same weights as the run nobody interrupted.
  r = test::run_cli(train_vae(dir.file("data"), dir.file("killed"), 60, "--resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_run_result(dir.file("whole"), dir.file("killed"));
}

TEST(Faults, AFullDiskDuringACheckpointIsAClearErrorAndThePreviousOneStays) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 8, 32);
  auto r = test::run_cli(train_vae(dir.file("data"), dir.file("run"), 8, "--stop-after 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto weights = dir.file("run/checkpoints/step-0000002/vae.safetensors");
  ASSERT_TRUE(fs::exists(weights));
  const auto before = fs::file_size(weights);
  // Files may not grow past 16 kB (ulimit -f counts 1024-byte blocks): the next checkpoint fails.
  r = test::run("ulimit -f 16; " + kCli + " " + train_vae(dir.file("data"), dir.file("run"), 8, "--resume") + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot save checkpoint " + dir.file("run/checkpoints/step-0000004")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the previous checkpoint " + dir.file("run/checkpoints/step-0000002") + " is intact"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir.file("run/checkpoints/.tmp-step-0000004")));
  EXPECT_EQ(fs::file_size(weights), before);
  // With room again, the run resumes from step 2 and ends as an uninterrupted one.
  r = test::run_cli(train_vae(dir.file("data"), dir.file("run"), 8, "--resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_cli(train_vae(dir.file("data"), dir.file("whole"), 8));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_run_result(dir.file("whole"), dir.file("run"));
}

// A one-parameter task whose loss is NaN at the steps asked for.
struct NanTask : TrainTask {
  explicit NanTask(std::set<int64_t> nan_at) : nan_at(std::move(nan_at)) { w = net.register_parameter("w", torch::ones({1})); }
  std::string name() const override { return "toy"; }
  torch::nn::Module& module() override { return net; }
  int64_t batch_size() const override { return 1; }
  StepLoss loss(int64_t index) override {
    auto l = (w - 3).pow(2).sum();
    if (nan_at.count(index)) l = l * std::numeric_limits<float>::quiet_NaN();
    return {l, {}};
  }
  torch::nn::Module net;
  torch::Tensor w;
  std::set<int64_t> nan_at;
};

LoopOptions toy_loop(const std::string& out) {
  LoopOptions o;
  o.out_dir = out;
  o.stages = {StagePlan{1, 6, 0.1}};
  o.warmup = 0;
  o.checkpoint_every = 2;
  o.validate_every = o.sample_every = 0;
  o.quiet = true;
  o.bf16 = false;
  return o;
}

TEST(Faults, ANanLossStopsTrainingKeepingTheLastCheckpointOrIsSkipped) {
  test::TempDir dir;
  {
    NanTask task({3});  // the 4th step
    const auto message = test::error_of([&] { run_training(task, toy_loop(dir.file("stop"))); });
    EXPECT_NE(message.find("toy loss is nan at step 4: training stopped; the last checkpoint, " +
                           dir.file("stop/checkpoints/step-0000002") + ", is intact"),
              std::string::npos)
        << message;
    EXPECT_TRUE(std::isfinite(task.w.item<float>()));
    EXPECT_EQ(latest_checkpoint(dir.file("stop")).value(), dir.file("stop/checkpoints/step-0000002"));
  }
  {
    NanTask task({3});
    auto o = toy_loop(dir.file("skip"));
    o.skip_nonfinite = 1;
    const auto result = run_training(task, o);
    EXPECT_TRUE(result.finished);
    EXPECT_EQ(result.skipped_steps, 1);
    EXPECT_EQ(result.global_step, 6);
    EXPECT_TRUE(std::isfinite(task.w.item<float>()));
  }
  {
    NanTask task({2, 3});  // two in a row, one allowed
    auto o = toy_loop(dir.file("twice"));
    o.skip_nonfinite = 1;
    EXPECT_NE(test::error_of([&] { run_training(task, o); }).find("loss is nan at step 4"), std::string::npos);
  }
}

TEST(Faults, KillDuringPrepareThenRerunGivesTheSameCache) {
  test::TempDir dir;
  test::write_shapes_dataset(dir.file("data"), 200, 64);
  const std::string args = " --data " + dir.file("data") + " --vae " + kModel + "/vae --text-encoder " + kModel +
                           "/text_encoder --tokenizer " + kModel + "/tokenizer --resolution 64 --shard-size 2 --device cpu --out ";
  auto r = test::run_cli("prepare" + args + dir.file("whole"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run("(" + kCli + " prepare" + args + dir.file("killed") + " >/dev/null 2>&1 & pid=$!; for i in $(seq 1000); do [ -e " +
                dir.file("killed/shard-00003.safetensors") + " ] && break; sleep 0.01; done; kill -9 $pid; wait $pid; echo exit=$?)");
  EXPECT_NE(r.output.find("exit=137"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("killed/cache.json")));
  r = test::run_cli("prepare" + args + dir.file("killed"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reused"), std::string::npos) << r.output;
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir.file("whole")))
    if (e.path().extension() == ".safetensors") {
      ++shards;
      test::expect_same_tensor_file(e.path().string(), dir.file("killed") + "/" + e.path().filename().string());
    }
  EXPECT_GT(shards, 10);
  EXPECT_EQ(read_file(dir.file("whole/cache.json")), read_file(dir.file("killed/cache.json")));
}

TEST(Faults, KillDuringServeThenRestartServes) {
  auto start = [&](const std::string& port_arg) {
    return test::run("(" + kCli + " serve --model " + kModel + " --port " + port_arg +
                     " > /tmp/luminars-serve-fault.log 2>&1 & echo $!)");
  };
  const int port = 18000 + static_cast<int>(::getpid() % 2000);
  // Up to 2 minutes: the model loads slowly on a machine busy with other tests.
  auto wait_up = [&] {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 2400; ++i) {
      if (auto res = c.Get("/health"); res && res->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  const std::string pid1 = start(std::to_string(port)).output;
  ASSERT_TRUE(wait_up());
  // kill -9 while it generates.
  std::thread request([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30);
    c.Post("/sdapi/v1/txt2img", R"({"prompt": "red heart", "steps": 100, "batch_size": 8})", "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  test::run("kill -9 " + pid1);
  request.join();
  // The same port again at once, and it answers.
  const std::string pid2 = start(std::to_string(port)).output;
  ASSERT_TRUE(wait_up());
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  auto res = c.Post("/v1/images/generations", R"({"prompt": "red heart", "steps": 2})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  test::run("kill -TERM " + pid2);
}

TEST(Faults, ATruncatedModelFileIsAClearErrorNamingIt) {
  test::TempDir dir;
  fs::copy(kModel, dir.file("model"), fs::copy_options::recursive);
  const auto denoiser = dir.file("model/denoiser/model.safetensors");
  fs::resize_file(denoiser, fs::file_size(denoiser) / 2);
  auto r = test::run_cli("generate --model " + dir.file("model") + " --prompt x --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(denoiser), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
  // A VAE weights file that is not safetensors at all.
  fs::copy(kModel + "/denoiser/model.safetensors", denoiser, fs::copy_options::overwrite_existing);
  test::write_text(dir.file("model/vae/diffusion_pytorch_model.safetensors"), "garbage");
  r = test::run_cli("generate --model " + dir.file("model") + " --prompt x --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(dir.file("model/vae/diffusion_pytorch_model.safetensors")), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars

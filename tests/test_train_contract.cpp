// The training contract (train/run_contract.h) and what the shared loop guarantees around it:
// field-by-field comparison, a stage that always ends with a checkpoint of its last weights,
// stale temporary checkpoint folders removed, ranks that disagree refusing to start, and rank 0's
// own work (samples, checkpoints) waited for under its own timeout rather than the collectives'.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "train/distributed.h"
#include "train/run_checkpoint.h"
#include "train/run_contract.h"
#include "train/train_loop.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

// One parameter pulled towards `target`; the loss is NaN at the micro-batch indices asked for,
// and drawing samples takes `sample_seconds`.
struct LineTask : TrainTask {
  explicit LineTask(std::set<int64_t> nan_at = {}, double target = 3) : nan_at(std::move(nan_at)), target(target) {
    w = net.register_parameter("w", torch::ones({2}));
  }
  std::string name() const override { return "line"; }
  torch::nn::Module& module() override { return net; }
  int64_t batch_size() const override { return 2; }
  StepLoss loss(int64_t index) override {
    auto l = (w - target).pow(2).sum();
    if (nan_at.count(index)) l = l * std::numeric_limits<float>::quiet_NaN();
    return {l, {}};
  }
  void write_samples(const std::string&) override {
    ++samples_written;
    std::this_thread::sleep_for(std::chrono::duration<double>(sample_seconds));
  }
  nlohmann::json contract() const override { return {{"target", target}, {"model", {{"width", 2}}}}; }
  torch::nn::Module net;
  torch::Tensor w;
  std::set<int64_t> nan_at;
  double target;
  double sample_seconds = 0;
  int samples_written = 0;
};

LoopOptions line_loop(const std::string& out, int64_t steps) {
  LoopOptions o;
  o.out_dir = out;
  o.stages = {StagePlan{1, steps, 0.1}};
  o.warmup = 0;
  o.checkpoint_every = 0;
  o.validate_every = o.sample_every = 0;
  o.quiet = true;
  o.bf16 = false;
  return o;
}

torch::Tensor saved_w(const std::string& checkpoint) { return load_tensors(checkpoint + "/line.safetensors").at("w"); }

TEST(TrainContract, FlattensNestedFieldsAndNamesTheFirstDifference) {
  const auto c = flat_contract({{"lr", 0.1}, {"config", {{"recursions", 2}, {"head", {{"dim", 64}}}}}});
  EXPECT_EQ(c, nlohmann::json({{"lr", 0.1}, {"config.recursions", 2}, {"config.head.dim", 64}}));
  auto other = c;
  other["config.recursions"] = 3;
  other["lr"] = 0.2;
  auto d = contract_difference(c, other, {});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->field, "config.recursions");  // fields by name: "config.…" before "lr"
  EXPECT_EQ(d->was, "2");
  EXPECT_EQ(d->now, "3");
  d = contract_difference(c, other, {"config.recursions"});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->field, "--lr");
  EXPECT_EQ(d->was, "0.1");
  EXPECT_EQ(d->now, "0.2");
  EXPECT_FALSE(contract_difference(c, other, {"config.recursions", "lr"}).has_value());
  other.erase("lr");
  d = contract_difference(c, other, {"config.recursions"});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->now, "(not recorded)");
  const auto message = test::error_of([&] { check_resume_contract({{"lr-schedule", "cosine"}}, {{"lr-schedule", "constant"}}, "runs/x"); });
  EXPECT_EQ(message.rfind("cannot resume runs/x: --lr-schedule was cosine, now constant (fields that may change on resume: ", 0), 0u)
      << message;
  EXPECT_NE(message.find("steps"), std::string::npos) << message;
  EXPECT_EQ(test::error_of([&] { check_resume_contract({{"steps", 4}}, {{"steps", 8}}, "runs/x"); }), "(no error)");
}

// The contract the loop records holds its own options, the task's (flattened) and the threads.
TEST(TrainContract, EveryCheckpointRecordsTheContract) {
  test::TempDir dir;
  LineTask task;
  auto o = line_loop(dir.file("run"), 2);
  o.decay = LrDecay::Cosine;
  const auto r = run_training(task, o);
  const auto state = RunState::from_json(read_file(r.checkpoint + "/state.json"), "state.json");
  EXPECT_EQ(state.contract, training_contract(task, o));
  EXPECT_EQ(state.contract.at("lr-schedule"), "cosine");
  EXPECT_EQ(state.contract.at("lr"), nlohmann::json({0.1}));
  EXPECT_EQ(state.contract.at("model.width"), 2);
  EXPECT_EQ(state.contract.at("target"), 3.0);
  EXPECT_EQ(state.contract.at("threads"), at::get_num_threads());
}

// A stage whose last step is skipped for a NaN loss still ends with a checkpoint, of the weights
// the skipped step left as they were: here with --checkpoint-every 0, in both stages of a run.
TEST(TrainContract, AStageWhoseLastStepIsSkippedEndsWithACheckpointOfItsLastWeights) {
  test::TempDir dir;
  LineTask two_steps;
  const auto after_two = run_training(two_steps, line_loop(dir.file("two"), 2));
  ASSERT_TRUE(after_two.finished);

  LineTask task({2, 4});  // the last step of each stage
  auto o = line_loop(dir.file("run"), 3);
  o.stages.push_back(StagePlan{1, 2, 0.1});
  o.skip_nonfinite = 1;
  o.keep_checkpoints = 0;
  const auto r = run_training(task, o);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.skipped_steps, 2);
  EXPECT_EQ(r.global_step, 5);
  EXPECT_EQ(r.checkpoint, dir.file("run/checkpoints/step-0000005"));
  EXPECT_EQ(latest_checkpoint(dir.file("run")).value(), r.checkpoint);
  // Stage 1's checkpoint: its weights after step 2, what two steps alone train, bit for bit.
  const auto stage1 = dir.file("run/checkpoints/step-0000003");
  ASSERT_TRUE(fs::exists(stage1 + "/state.json"));
  EXPECT_TRUE(torch::equal(saved_w(stage1), saved_w(after_two.checkpoint))) << saved_w(stage1) << saved_w(after_two.checkpoint);
  EXPECT_FALSE(torch::equal(saved_w(stage1), torch::ones({2})));
  const auto state = RunState::from_json(read_file(stage1 + "/state.json"), "state.json");
  EXPECT_EQ(state.global_step, 3);
  EXPECT_EQ(state.stage_index, 0);
  EXPECT_EQ(state.stage_step, 3);
  // The run's last checkpoint holds the weights it ended with.
  EXPECT_TRUE(torch::equal(saved_w(r.checkpoint), task.w.detach()));
  EXPECT_FALSE(torch::equal(saved_w(r.checkpoint), saved_w(stage1)));
}

TEST(TrainContract, StaleTemporaryCheckpointFoldersAreRemovedOnResume) {
  test::TempDir dir;
  LineTask task;
  auto o = line_loop(dir.file("run"), 4);
  o.stop_after = 2;
  ASSERT_FALSE(run_training(task, o).finished);
  const auto stale = dir.file("run/checkpoints/.tmp-step-0000003");  // a save cut short by a crash
  fs::create_directories(stale);
  test::write_text(stale + "/line.safetensors", "partial");
  o.stop_after = 0;
  o.resume = true;
  LineTask again;
  const auto r = run_training(again, o);
  EXPECT_TRUE(r.finished);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000002")));
  EXPECT_EQ(r.checkpoint, dir.file("run/checkpoints/step-0000004"));
}

TEST(TrainContract, ResumeRefusesAChangedTaskOptionAndAllowsTheListedFields) {
  test::TempDir dir;
  LineTask task;
  auto o = line_loop(dir.file("run"), 4);
  o.stop_after = 2;
  o.sample_every = 2;
  ASSERT_FALSE(run_training(task, o).finished);
  o.resume = true;
  LineTask other({}, 4);
  EXPECT_EQ(test::error_of([&] { run_training(other, o); }).rfind("cannot resume " + dir.file("run/checkpoints/step-0000002") +
                                                               ": --target was 3.0, now 4.0 (fields that may change on resume",
                                                           0),
            0u);
  // Steps, intervals, checkpoints kept, stop-after, NaN skips and threads may change.
  o.stages[0].steps = 6;
  o.checkpoint_every = 3;
  o.validate_every = 5;
  o.sample_every = 0;
  o.keep_checkpoints = 1;
  o.stop_after = 0;
  o.skip_nonfinite = 2;
  const int threads = at::get_num_threads();
  at::set_num_threads(threads == 1 ? 2 : 1);
  LineTask same;
  TrainResult r;
  EXPECT_NO_THROW(r = run_training(same, o));
  at::set_num_threads(threads);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.global_step, 6);
}

// ---------------------------------------------------------------------------------------------
// Ranks of one run, two threads of this process on Gloo over loopback.

// Runs `body(group)` as ranks 0 and 1 of a fresh 2-rank group; each rank's error message, or "".
std::vector<std::string> on_two_ranks(const DistributedOptions& options, const std::function<void(std::shared_ptr<ProcessGroup>)>& body) {
  const int port = test::free_tcp_port();
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank)
    ranks.emplace_back([&, rank] {
      LaunchEnv env;
      env.rank = env.local_rank = rank;
      env.world_size = env.local_world_size = 2;
      env.master_port = port;
      try {
        body(std::make_shared<ProcessGroup>(env, options, false));
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(rank)] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  return errors;
}

DistributedOptions short_timeouts(double collective_s, double rank0_s) {
  DistributedOptions d;
  d.timeout = std::chrono::milliseconds(static_cast<int64_t>(collective_s * 1000));
  d.rank0_timeout = std::chrono::milliseconds(static_cast<int64_t>(rank0_s * 1000));
  return d;
}

TEST(TrainContract, RanksWithDifferentOptionsRefuseToStartNamingTheRank) {
  REQUIRE_GLOO();
  test::TempDir dir;
  auto errors = on_two_ranks(short_timeouts(30, 30), [&](std::shared_ptr<ProcessGroup> group) {
    LineTask task;
    auto o = line_loop(dir.file("lr"), 2);
    o.stages[0].lr = group->rank() == 1 ? 0.2 : 0.1;
    o.group = group;
    run_training(task, o);
  });
  for (int rank : {0, 1})
    EXPECT_NE(errors[static_cast<std::size_t>(rank)].find("rank " + std::to_string(rank) +
                                                          " of 2: the ranks disagree: rank 1 has --lr [0.2] where rank 0 has [0.1]"),
              std::string::npos)
        << errors[static_cast<std::size_t>(rank)];
  EXPECT_FALSE(fs::exists(dir.file("lr")));  // refused before rank 0 made the run folder
  // Other data (the task's content key, say) is refused alike; threads may differ.
  errors = on_two_ranks(short_timeouts(30, 30), [&](std::shared_ptr<ProcessGroup> group) {
    LineTask task({}, group->rank() == 1 ? 5.0 : 3.0);
    auto o = line_loop(dir.file("data"), 2);
    o.group = group;
    run_training(task, o);
  });
  EXPECT_NE(errors[0].find("rank 1 has --target 5.0 where rank 0 has 3.0"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("rank 1 has --target 5.0 where rank 0 has 3.0"), std::string::npos) << errors[1];
  nlohmann::json mine{{"threads", 1}, {"steps", 4}};
  errors = on_two_ranks(short_timeouts(30, 30), [&](std::shared_ptr<ProcessGroup> group) {
    auto c = mine;
    c["threads"] = group->rank() + 1;
    check_ranks_agree(*group, c);
  });
  EXPECT_EQ(errors, std::vector<std::string>(2, ""));
}

// Drawing samples takes rank 0 2.5 s while the collectives' timeout is 1 s: the other rank waits
// for it under the rank-0 timeout, and the run ends as it should on both ranks.
TEST(TrainContract, ASlowRank0SectionDoesNotTripTheCollectiveTimeout) {
  REQUIRE_GLOO();
  test::TempDir dir;
  std::vector<int> samples(2, 0);
  // Collectives time out after 3 s (ample for this toy task's steps, even on a loaded machine);
  // rank 0's samples take 5 s, inside its own section.
  auto errors = on_two_ranks(short_timeouts(3, 60), [&](std::shared_ptr<ProcessGroup> group) {
    LineTask task;
    task.sample_seconds = 5;
    auto o = line_loop(dir.file("run"), 3);
    o.sample_every = 2;
    o.group = group;
    const auto r = run_training(task, o);
    EXPECT_TRUE(r.finished);
    samples[static_cast<std::size_t>(group->rank())] = task.samples_written;
  });
  EXPECT_EQ(errors, std::vector<std::string>(2, ""));
  EXPECT_EQ(samples, std::vector<int>({2, 0}));  // at step 2 and at the end, on rank 0 alone
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000003/line.safetensors")));

  // Rank 0's failure in its section reaches the other rank as an error naming it.
  errors = on_two_ranks(short_timeouts(5, 60), [&](std::shared_ptr<ProcessGroup> group) {
    group->rank0_section("writing a checkpoint", [] { throw Error("disk full"); });
  });
  EXPECT_EQ(errors[0], "disk full");
  EXPECT_EQ(errors[1], "rank 1 of 2: rank 0 failed while writing a checkpoint: disk full");

  // Longer than the rank-0 timeout: the waiting rank gives up, naming the flag.
  errors = on_two_ranks(short_timeouts(5, 1), [&](std::shared_ptr<ProcessGroup> group) {
    group->rank0_section("drawing samples", [] { std::this_thread::sleep_for(std::chrono::milliseconds(2500)); });
  });
  EXPECT_NE(errors[1].find("rank 1 of 2: waiting for rank 0 (drawing samples) failed"), std::string::npos) << errors[1];
  EXPECT_NE(errors[1].find("--dist-rank0-timeout"), std::string::npos) << errors[1];
}

}  // namespace
}  // namespace luminars

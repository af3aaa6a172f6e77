// The serve job queue: order, capacity, cancellation, failures, progress, waiting, history,
// shutdown and concurrent submitters, synchronised through gates the work functions control.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "serve/job_queue.h"

namespace luminars::serve {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kLong{5000};  // a bound for waits that should end far sooner

// A one-shot signal between the test and a work function.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_for(milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Work that signals `started`, then runs until `release` opens or the job is cancelled, polling
// the way a sampler polls between steps.
Work blocker(Gate& started, Gate& release, std::atomic<bool>* saw_cancel = nullptr) {
  return [&started, &release, saw_cancel](JobContext& ctx) {
    started.open();
    while (!release.wait_for(milliseconds(1))) {
      if (ctx.cancelled()) {
        if (saw_cancel) *saw_cancel = true;
        break;
      }
    }
    return JobResult{};
  };
}

JobResult result_with(std::string parameters) {
  JobResult r;
  r.images = {"\x89PNG-bytes"};
  r.seeds = {42};
  r.parameters = std::move(parameters);
  r.info = "{}";
  return r;
}

JobState finished_state(const JobQueue& queue, const std::string& id) {
  const auto info = queue.wait(id, kLong);
  EXPECT_TRUE(info.has_value()) << id;
  return info ? info->state : JobState::Queued;
}

TEST(JobQueue, StateNames) {
  EXPECT_STREQ(to_string(JobState::Queued), "queued");
  EXPECT_STREQ(to_string(JobState::Generating), "generating");
  EXPECT_STREQ(to_string(JobState::Done), "done");
  EXPECT_STREQ(to_string(JobState::Failed), "failed");
  EXPECT_STREQ(to_string(JobState::Cancelled), "cancelled");
  EXPECT_FALSE(is_finished(JobState::Generating));
  EXPECT_TRUE(is_finished(JobState::Cancelled));
}

TEST(JobQueue, RejectsZeroCapacityAndEmptyWork) {
  EXPECT_THROW(JobQueue(JobQueueOptions{.capacity = 0}), Error);
  JobQueue queue;
  EXPECT_THROW(queue.submit(Work{}), Error);
}

TEST(JobQueue, IdsAreSixteenHexCharsAndDistinct) {
  JobQueue queue({.capacity = 64});
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const auto id = queue.submit([](JobContext&) { return JobResult{}; });
    ASSERT_TRUE(id);
    EXPECT_EQ(id->size(), 16u);
    EXPECT_EQ(id->find_first_not_of("0123456789abcdef"), std::string::npos) << *id;
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_FALSE(queue.info("0123456789abcdef"));
}

TEST(JobQueue, RunsJobsInSubmissionOrder) {
  Gate started, release;
  std::vector<int> order;  // written by the worker only; read after wait() synchronises
  JobQueue queue({.capacity = 16});
  ASSERT_TRUE(queue.submit(blocker(started, release)));
  ASSERT_TRUE(started.wait_for(kLong));
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    const auto id = queue.submit([&order, i](JobContext&) {
      order.push_back(i);
      return JobResult{};
    });
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  release.open();
  EXPECT_EQ(finished_state(queue, ids.back()), JobState::Done);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(JobQueue, FullQueueRefusesThenAcceptsAfterOneFinishes) {
  Gate started, release;
  JobQueue queue({.capacity = 3});
  const auto running = queue.submit(blocker(started, release));
  ASSERT_TRUE(running);
  ASSERT_TRUE(started.wait_for(kLong));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(queue.submit([](JobContext&) { return JobResult{}; }));
  EXPECT_EQ(queue.queued(), 3u);
  EXPECT_EQ(queue.capacity(), 3u);
  EXPECT_FALSE(queue.submit([](JobContext&) { return JobResult{}; }));

  release.open();
  EXPECT_EQ(finished_state(queue, *running), JobState::Done);
  // The worker took the next job in the same step that finished the first: room for one.
  EXPECT_LE(queue.queued(), 2u);
  EXPECT_TRUE(queue.submit([](JobContext&) { return JobResult{}; }));
}

TEST(JobQueue, CancelQueuedJobNeverRunsIt) {
  Gate started, release;
  std::atomic<bool> ran{false};
  JobQueue queue;
  const auto running = queue.submit(blocker(started, release));
  ASSERT_TRUE(started.wait_for(kLong));
  const auto doomed = queue.submit([&ran](JobContext&) {
    ran = true;
    return JobResult{};
  });
  ASSERT_TRUE(doomed);
  EXPECT_EQ(queue.queued(), 1u);

  EXPECT_TRUE(queue.cancel(*doomed));
  const auto info = queue.info(*doomed);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Cancelled);
  EXPECT_EQ(info->position, 0);
  EXPECT_EQ(info->run_seconds, 0.0);
  EXPECT_EQ(queue.queued(), 0u);
  EXPECT_FALSE(queue.cancel(*doomed));  // already finished
  EXPECT_FALSE(queue.cancel("no-such-job"));

  const auto after = queue.submit([](JobContext&) { return JobResult{}; });
  release.open();
  EXPECT_EQ(finished_state(queue, *after), JobState::Done);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(queue.cancel(*running));  // Done
}

TEST(JobQueue, CancelRunningJobEndsCancelled) {
  Gate started, release;
  std::atomic<bool> saw_cancel{false};
  JobQueue queue;
  const auto id = queue.submit(blocker(started, release, &saw_cancel));
  ASSERT_TRUE(started.wait_for(kLong));
  EXPECT_EQ(queue.info(*id)->state, JobState::Generating);

  EXPECT_TRUE(queue.cancel(*id));
  const auto info = queue.wait(*id, kLong);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Cancelled);
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(info->result, nullptr);  // what it returned after the flag is dropped
  EXPECT_TRUE(info->error.empty());
}

TEST(JobQueue, CancelledJobThatThrowsStillEndsCancelled) {
  Gate started;
  JobQueue queue;
  const auto id = queue.submit([&started](JobContext& ctx) -> JobResult {
    started.open();
    while (!ctx.cancelled()) std::this_thread::sleep_for(milliseconds(1));
    throw Error("interrupted");
  });
  ASSERT_TRUE(started.wait_for(kLong));
  EXPECT_TRUE(queue.cancel(*id));
  const auto info = queue.wait(*id, kLong);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Cancelled);
}

TEST(JobQueue, ThrowingJobFailsWithItsMessageAndTheNextStillRuns) {
  JobQueue queue;
  const auto failing = queue.submit([](JobContext&) -> JobResult { throw Error("model.safetensors: missing key"); });
  const auto odd = queue.submit([](JobContext&) -> JobResult { throw 7; });
  const auto fine = queue.submit([](JobContext&) { return result_with("a cat"); });
  ASSERT_TRUE(failing && odd && fine);

  const auto info = queue.wait(*failing, kLong);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Failed);
  EXPECT_EQ(info->error, "model.safetensors: missing key");
  EXPECT_EQ(info->result, nullptr);

  const auto odd_info = queue.wait(*odd, kLong);
  EXPECT_EQ(odd_info->state, JobState::Failed);
  EXPECT_EQ(odd_info->error, "unknown exception");

  const auto fine_info = queue.wait(*fine, kLong);
  EXPECT_EQ(fine_info->state, JobState::Done);
  ASSERT_NE(fine_info->result, nullptr);
  EXPECT_EQ(fine_info->result->parameters, "a cat");
}

TEST(JobQueue, ProgressIsVisibleWhileRunning) {
  Gate reported, release;
  JobQueue queue;
  const auto id = queue.submit(
      [&](JobContext& ctx) {
        ctx.progress(3, 10);
        reported.open();
        release.wait_for(kLong);
        ctx.progress(10, 10);
        return JobResult{};
      },
      /*steps_hint=*/10);
  ASSERT_TRUE(id);
  ASSERT_TRUE(reported.wait_for(kLong));

  const auto info = queue.info(*id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Generating);
  EXPECT_EQ(info->step, 3);
  EXPECT_EQ(info->steps, 10);
  EXPECT_EQ(info->position, 0);
  EXPECT_GE(info->run_seconds, 0.0);

  // A queued job shows its hint as the step count before it reports anything.
  const auto next = queue.submit([](JobContext&) { return JobResult{}; }, /*steps_hint=*/28);
  EXPECT_EQ(queue.info(*next)->steps, 28);
  EXPECT_EQ(queue.info(*next)->step, 0);

  release.open();
  const auto done = queue.wait(*id, kLong);
  EXPECT_EQ(done->state, JobState::Done);
  EXPECT_EQ(done->step, 10);
}

TEST(JobQueue, PositionsOfQueuedJobsCountFromOne) {
  Gate started, release;
  JobQueue queue;
  const auto running = queue.submit(blocker(started, release));
  ASSERT_TRUE(started.wait_for(kLong));
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(*queue.submit([](JobContext&) { return JobResult{}; }));

  EXPECT_EQ(queue.info(*running)->position, 0);
  for (int i = 0; i < 4; ++i) {
    const auto info = queue.info(ids[i]);
    EXPECT_EQ(info->state, JobState::Queued);
    EXPECT_EQ(info->position, i + 1);
    EXPECT_GE(info->queued_seconds, 0.0);
  }
  ASSERT_TRUE(queue.cancel(ids[1]));  // the ones behind it move up
  EXPECT_EQ(queue.info(ids[0])->position, 1);
  EXPECT_EQ(queue.info(ids[2])->position, 2);
  EXPECT_EQ(queue.info(ids[3])->position, 3);
  release.open();
}

TEST(JobQueue, WaitTimesOutWithALiveSnapshotThenReturnsTheResult) {
  Gate started, release;
  JobQueue queue;
  const auto id = queue.submit([&](JobContext& ctx) {
    started.open();
    release.wait_for(kLong);
    return result_with("a lighthouse, Steps: 20");
  });
  ASSERT_TRUE(started.wait_for(kLong));

  const auto early = queue.wait(*id, milliseconds(10));
  ASSERT_TRUE(early);
  EXPECT_EQ(early->state, JobState::Generating);
  EXPECT_EQ(early->result, nullptr);

  release.open();
  const auto done = queue.wait(*id, kLong);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, JobState::Done);
  ASSERT_NE(done->result, nullptr);
  EXPECT_EQ(done->result->images, std::vector<std::string>{"\x89PNG-bytes"});
  EXPECT_EQ(done->result->seeds, std::vector<uint64_t>{42});
  EXPECT_EQ(done->result->parameters, "a lighthouse, Steps: 20");
  EXPECT_EQ(done->result->info, "{}");
  EXPECT_GT(done->run_seconds, 0.0);

  EXPECT_FALSE(queue.wait("unknown", milliseconds(1)));
}

TEST(JobQueue, HistoryForgetsTheOldestFinishedJobsAndFreesTheirResults) {
  JobQueue queue({.capacity = 8, .history = 3});
  std::vector<std::string> ids;
  std::weak_ptr<const JobResult> first_result;
  for (int i = 0; i < 5; ++i) {
    const auto id = queue.submit([i](JobContext&) { return result_with(std::to_string(i)); });
    ASSERT_TRUE(id);
    ids.push_back(*id);
    const auto info = queue.wait(*id, kLong);
    ASSERT_EQ(info->state, JobState::Done);
    if (i == 0) first_result = info->result;
  }
  EXPECT_FALSE(queue.info(ids[0]));
  EXPECT_FALSE(queue.info(ids[1]));
  EXPECT_TRUE(first_result.expired());
  for (int i = 2; i < 5; ++i) {
    const auto info = queue.info(ids[i]);
    ASSERT_TRUE(info) << i;
    EXPECT_EQ(info->result->parameters, std::to_string(i));
  }
}

TEST(JobQueue, WorkCapturesAreFreedOnceTheJobFinishes) {
  auto payload = std::make_shared<int>(1);
  std::weak_ptr<int> watch = payload;
  JobQueue queue;
  const auto id = queue.submit([payload = std::move(payload)](JobContext&) { return JobResult{}; });
  EXPECT_EQ(finished_state(queue, *id), JobState::Done);
  EXPECT_TRUE(watch.expired());
}

TEST(JobQueue, ShutdownCancelsQueuedFlagsRunningAndRefusesNewJobs) {
  Gate started;
  std::atomic<bool> saw_cancel{false}, queued_ran{false};
  Gate never;  // the running job only ends by cancellation
  JobQueue queue;
  const auto running = queue.submit(blocker(started, never, &saw_cancel));
  ASSERT_TRUE(started.wait_for(kLong));
  std::vector<std::string> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(*queue.submit([&queued_ran](JobContext&) {
      queued_ran = true;
      return JobResult{};
    }));
  }

  const auto t0 = std::chrono::steady_clock::now();
  queue.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));  // one poll, not a timeout

  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(queue.info(*running)->state, JobState::Cancelled);
  for (const auto& id : queued) EXPECT_EQ(queue.info(id)->state, JobState::Cancelled);
  EXPECT_FALSE(queued_ran);
  EXPECT_EQ(queue.queued(), 0u);
  EXPECT_FALSE(queue.submit([](JobContext&) { return JobResult{}; }));
  queue.shutdown();  // idempotent
}

TEST(JobQueue, ShutdownFromSeveralThreadsAndTheDestructor) {
  Gate started, never;
  auto queue = std::make_unique<JobQueue>();
  ASSERT_TRUE(queue->submit(blocker(started, never)));
  ASSERT_TRUE(started.wait_for(kLong));
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { queue->shutdown(); });
  for (auto& t : threads) t.join();
  queue.reset();
}

TEST(JobQueue, ShutdownFromAWorkFunctionDoesNotWaitForItself) {
  JobQueue queue;
  const auto id = queue.submit([&queue](JobContext& ctx) {
    queue.shutdown();  // flags this very job; the destructor joins the worker later
    EXPECT_TRUE(ctx.cancelled());
    return JobResult{};
  });
  ASSERT_TRUE(id);
  EXPECT_EQ(finished_state(queue, *id), JobState::Cancelled);
  EXPECT_FALSE(queue.submit([](JobContext&) { return JobResult{}; }));
}

TEST(JobQueue, ManyThreadsSubmittingConcurrentlyRunEachJobOnce) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::array<std::atomic<int>, kThreads * kPerThread> runs{};
  JobQueue queue({.capacity = kThreads * kPerThread, .history = kThreads * kPerThread});
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int slot = t * kPerThread + i;
        auto id = queue.submit([&runs, slot](JobContext& ctx) {
          ctx.progress(1, 1);
          runs[slot].fetch_add(1);
          return JobResult{};
        });
        if (id) ids[t].push_back(std::move(*id));
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::string> unique;
  for (const auto& per_thread : ids) {
    ASSERT_EQ(per_thread.size(), static_cast<std::size_t>(kPerThread));
    for (const auto& id : per_thread) {
      EXPECT_EQ(finished_state(queue, id), JobState::Done);
      unique.insert(id);
    }
  }
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& r : runs) EXPECT_EQ(r.load(), 1);
}

TEST(JobQueue, RetryAfterIsAtLeastOneWholeSecond) {
  Gate started, release;
  JobQueue queue;
  EXPECT_EQ(queue.retry_after_seconds(), 1.0);  // nothing ran yet
  const auto quick = queue.submit([](JobContext&) { return JobResult{}; });
  EXPECT_EQ(finished_state(queue, *quick), JobState::Done);
  ASSERT_TRUE(queue.submit(blocker(started, release)));
  ASSERT_TRUE(started.wait_for(kLong));
  for (int i = 0; i < 5; ++i) queue.submit([](JobContext&) { return JobResult{}; });
  const double wait = queue.retry_after_seconds();
  EXPECT_GE(wait, 1.0);
  EXPECT_EQ(wait, static_cast<double>(static_cast<int64_t>(wait)));  // whole seconds
  release.open();
}

TEST(JobQueue, StandaloneContextIgnoresProgressAndIsNeverCancelled) {
  JobContext ctx;
  ctx.progress(1, 2);
  EXPECT_FALSE(ctx.cancelled());
}

}  // namespace
}  // namespace luminars::serve

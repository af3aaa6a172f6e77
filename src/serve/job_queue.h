// The job queue of `luminars serve`: a bounded queue of generation jobs run one at a time, in
// submission order, by a single worker thread, with ids, status snapshots, progress,
// cancellation and a graceful shutdown.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace luminars::serve {

// Queued → Generating → Done | Failed | Cancelled (a queued job may also go straight to Cancelled).
enum class JobState { Queued, Generating, Done, Failed, Cancelled };
const char* to_string(JobState state);  // "queued", "generating", "done", "failed", "cancelled"
bool is_finished(JobState state);       // Done, Failed or Cancelled

// What a finished job produced.
struct JobResult {
  std::vector<std::string> images;  // encoded PNG bytes, one per image
  std::vector<uint64_t> seeds;      // one per image
  std::string parameters;           // AUTOMATIC1111 "parameters" text
  std::string info;                 // JSON text
};

namespace detail {
struct Job;
struct QueueCore;
}  // namespace detail

// Handed to the work function: report progress, ask whether to stop.
class JobContext {
 public:
  JobContext();  // standalone (outside a queue): progress is ignored, never cancelled

  void progress(int64_t step, int64_t steps);  // thread-safe; visible in snapshots
  bool cancelled() const;                      // true once cancel(id) or shutdown() was called

 private:
  friend struct detail::QueueCore;
  JobContext(detail::QueueCore* core, detail::Job* job);

  detail::QueueCore* core_ = nullptr;
  detail::Job* job_ = nullptr;
};

// A consistent snapshot of one job.
struct JobInfo {
  std::string id;
  JobState state = JobState::Queued;
  int64_t step = 0, steps = 0;              // last progress(); steps starts as submit's steps_hint
  int64_t position = 0;                     // 1-based place among queued jobs (0 when not queued)
  std::string error;                        // for Failed: what() of the exception
  std::shared_ptr<const JobResult> result;  // for Done
  double queued_seconds = 0;                // submission → start (or → now / → cancellation)
  double run_seconds = 0;                   // start → end (or → now); 0 if it never ran
};

// Throws on failure; may return early (anything) when cancelled().
using Work = std::function<JobResult(JobContext&)>;

struct JobQueueOptions {
  std::size_t capacity = 16;  // queued jobs, not counting the running one; at least 1
  std::size_t history = 64;   // finished jobs kept for status queries; oldest dropped
};

class JobQueue {
 public:
  explicit JobQueue(JobQueueOptions options = {});  // starts the worker; throws Error for capacity 0
  ~JobQueue();                                      // shutdown()
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues work and returns its id (16 hex characters); nullopt when the queue is full or shut
  // down. steps_hint is the job's `steps` until it reports progress. Throws Error for empty work.
  std::optional<std::string> submit(Work work, int64_t steps_hint = 0);

  // A snapshot; nullopt for unknown or forgotten ids.
  std::optional<JobInfo> info(const std::string& id) const;

  // Queued: Cancelled at once (removed from the queue, its work never runs). Generating: the flag
  // is set; the job ends Cancelled when its work returns or throws. Finished or unknown: false.
  bool cancel(const std::string& id);

  // Blocks until the job is finished (Done, Failed, Cancelled) or the timeout passes, then returns
  // its snapshot (finished or not); nullopt for unknown or forgotten ids. Timeouts are capped at
  // a day.
  std::optional<JobInfo> wait(const std::string& id, std::chrono::milliseconds timeout) const;

  std::size_t queued() const;    // jobs waiting, not counting the running one
  std::size_t capacity() const;  // JobQueueOptions::capacity

  // Seconds for a 429 Retry-After: (queued + 1) × mean run time of the recent jobs that ran to
  // completion (Done or Failed), rounded up, at least 1.
  double retry_after_seconds() const;

  // Idempotent and safe from several threads: refuses new jobs, cancels the queued ones, flags
  // the running one and waits for its work to return (work functions poll cancelled()). Not to be
  // called from a work function.
  void shutdown();

 private:
  std::unique_ptr<detail::QueueCore> core_;
};

}  // namespace luminars::serve

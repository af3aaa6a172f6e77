// The job queue of `luminars serve`: one mutex guards every job's state, one worker thread takes
// jobs from a FIFO, and condition variables wake the worker (new job, shutdown) and waiters
// (a job finished).
#include "serve/job_queue.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace luminars::serve {

using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kRecentRuns = 16;  // run times averaged for retry_after_seconds()
constexpr auto kMaxWait = std::chrono::milliseconds(std::chrono::hours(24));

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

const char* to_string(JobState state) {
  switch (state) {
    case JobState::Queued: return "queued";
    case JobState::Generating: return "generating";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "unknown";
}

bool is_finished(JobState state) {
  return state == JobState::Done || state == JobState::Failed || state == JobState::Cancelled;
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------
namespace detail {

// One job. Every field but cancel_requested is read and written under QueueCore::mu.
struct Job {
  std::string id;
  Work work;  // emptied when the worker takes it or when the job is cancelled while queued
  JobState state = JobState::Queued;
  int64_t step = 0, steps = 0;
  std::string error;
  std::shared_ptr<const JobResult> result;
  std::atomic<bool> cancel_requested{false};  // written under mu, polled by work without it
  bool ran = false;                           // the worker started it (`started` is valid)
  Clock::time_point submitted, started, ended;
};

struct QueueCore {
  explicit QueueCore(JobQueueOptions options);

  void run_worker();
  std::optional<std::string> submit(Work work, int64_t steps_hint);
  std::optional<JobInfo> info(const std::string& id) const;
  bool cancel(const std::string& id);
  std::optional<JobInfo> wait(const std::string& id, std::chrono::milliseconds timeout) const;
  std::size_t queued() const;
  double retry_after_seconds() const;
  void shutdown();

  std::string new_id_locked();
  JobInfo snapshot_locked(const Job& job) const;
  void finish_locked(Job& job, JobState state);

  const JobQueueOptions options;
  mutable std::mutex mu;
  std::condition_variable work_cv;          // the worker: a job was queued, or shutdown began
  mutable std::condition_variable done_cv;  // wait(): a job finished
  std::deque<std::shared_ptr<Job>> queue;   // waiting jobs, in submission order
  std::shared_ptr<Job> running;             // the job the worker runs, if any
  std::unordered_map<std::string, std::shared_ptr<Job>> jobs;  // queued, running and history
  std::deque<std::string> history;          // ids of finished jobs still known, oldest first
  std::deque<double> recent_runs;           // run seconds of the last Done/Failed jobs
  bool stopping = false;
  std::random_device random;                // used under mu

  std::thread worker;
  std::thread::id worker_id;  // set once in the constructor; worker.get_id() races with join()
  std::once_flag joined;
};

QueueCore::QueueCore(JobQueueOptions options_) : options(options_) {
  if (options.capacity == 0) throw Error("serve job queue: capacity must be at least 1");
  worker = std::thread([this] { run_worker(); });
  worker_id = worker.get_id();
}

// 64 bits from std::random_device as 16 hex characters, drawn again on a clash with a known id.
std::string QueueCore::new_id_locked() {
  for (;;) {
    const uint64_t bits = (static_cast<uint64_t>(random()) << 32) ^ static_cast<uint64_t>(random());
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
    if (!jobs.count(text)) return text;
  }
}

JobInfo QueueCore::snapshot_locked(const Job& job) const {
  const Clock::time_point now = Clock::now();
  JobInfo out;
  out.id = job.id;
  out.state = job.state;
  out.step = job.step;
  out.steps = job.steps;
  out.error = job.error;
  out.result = job.result;
  if (job.state == JobState::Queued) {
    const auto it = std::find_if(queue.begin(), queue.end(), [&](const auto& q) { return q.get() == &job; });
    out.position = static_cast<int64_t>(it - queue.begin()) + 1;
    out.queued_seconds = seconds_between(job.submitted, now);
  } else if (job.ran) {
    out.queued_seconds = seconds_between(job.submitted, job.started);
    out.run_seconds = seconds_between(job.started, is_finished(job.state) ? job.ended : now);
  } else {  // cancelled while queued
    out.queued_seconds = seconds_between(job.submitted, job.ended);
  }
  return out;
}

// Marks a job finished, wakes waiters, and forgets the oldest finished jobs beyond `history`.
void QueueCore::finish_locked(Job& job, JobState state) {
  job.state = state;
  job.ended = Clock::now();
  history.push_back(job.id);
  while (history.size() > options.history) {
    jobs.erase(history.front());
    history.pop_front();
  }
  done_cv.notify_all();
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------
void QueueCore::run_worker() {
  std::unique_lock lock(mu);
  for (;;) {
    // Taking the next job happens under the same lock as finishing the previous one, so a waiter
    // that sees a job finish also sees its successor already out of the queue.
    work_cv.wait(lock, [&] { return stopping || !queue.empty(); });
    if (queue.empty()) return;  // shutdown cancelled whatever was queued
    std::shared_ptr<Job> job = std::move(queue.front());
    queue.pop_front();
    job->state = JobState::Generating;
    job->ran = true;
    job->started = Clock::now();
    running = job;
    Work work = std::move(job->work);
    job->work = nullptr;
    lock.unlock();

    JobState end = JobState::Done;
    std::string error;
    std::shared_ptr<const JobResult> result;
    {
      JobContext context(this, job.get());
      try {
        result = std::make_shared<const JobResult>(work(context));
      } catch (const std::exception& e) {
        end = JobState::Failed;
        error = e.what();
      } catch (...) {
        end = JobState::Failed;
        error = "unknown exception";
      }
      work = nullptr;  // free what it captured before the job reads as finished
    }

    lock.lock();
    running.reset();
    if (job->cancel_requested.load()) {
      end = JobState::Cancelled;
      error.clear();
      result.reset();
    } else {
      recent_runs.push_back(seconds_between(job->started, Clock::now()));
      if (recent_runs.size() > kRecentRuns) recent_runs.pop_front();
    }
    job->error = std::move(error);
    job->result = std::move(result);
    finish_locked(*job, end);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------
std::optional<std::string> QueueCore::submit(Work work, int64_t steps_hint) {
  if (!work) throw Error("serve job queue: submit() needs a work function");
  auto job = std::make_shared<Job>();  // declared before the lock: a refused job dies outside it
  job->work = std::move(work);
  job->steps = std::max<int64_t>(steps_hint, 0);

  std::lock_guard lock(mu);
  if (stopping || queue.size() >= options.capacity) return std::nullopt;
  job->id = new_id_locked();
  job->submitted = Clock::now();
  jobs.emplace(job->id, job);
  queue.push_back(job);
  work_cv.notify_one();
  return job->id;
}

std::optional<JobInfo> QueueCore::info(const std::string& id) const {
  std::lock_guard lock(mu);
  const auto it = jobs.find(id);
  if (it == jobs.end()) return std::nullopt;
  return snapshot_locked(*it->second);
}

bool QueueCore::cancel(const std::string& id) {
  Work doomed;  // declared before the lock: the work's captures are freed outside it
  std::lock_guard lock(mu);
  const auto it = jobs.find(id);
  if (it == jobs.end()) return false;
  const std::shared_ptr<Job> job = it->second;
  switch (job->state) {
    case JobState::Queued:
      queue.erase(std::find(queue.begin(), queue.end(), job));
      doomed = std::move(job->work);
      job->work = nullptr;
      job->cancel_requested.store(true);
      finish_locked(*job, JobState::Cancelled);
      return true;
    case JobState::Generating:
      job->cancel_requested.store(true);
      return true;
    default:
      return false;
  }
}

std::optional<JobInfo> QueueCore::wait(const std::string& id, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu);
  const auto it = jobs.find(id);
  if (it == jobs.end()) return std::nullopt;
  const std::shared_ptr<Job> job = it->second;  // held: the job may be forgotten while we wait
  done_cv.wait_for(lock, std::min(timeout, kMaxWait), [&] { return is_finished(job->state); });
  return snapshot_locked(*job);
}

std::size_t QueueCore::queued() const {
  std::lock_guard lock(mu);
  return queue.size();
}

double QueueCore::retry_after_seconds() const {
  std::lock_guard lock(mu);
  double mean = 0;
  for (double s : recent_runs) mean += s;
  if (!recent_runs.empty()) mean /= static_cast<double>(recent_runs.size());
  return std::max(1.0, std::ceil(static_cast<double>(queue.size() + 1) * mean));
}

void QueueCore::shutdown() {
  std::vector<Work> doomed;  // freed outside the lock
  {
    std::lock_guard lock(mu);
    if (!stopping) {
      stopping = true;
      for (const std::shared_ptr<Job>& job : queue) {
        doomed.push_back(std::move(job->work));
        job->work = nullptr;
        job->cancel_requested.store(true);
        finish_locked(*job, JobState::Cancelled);
      }
      queue.clear();
      if (running) running->cancel_requested.store(true);
      work_cv.notify_all();
    }
  }
  doomed.clear();
  // From a work function the worker cannot join itself; the destructor joins later.
  if (std::this_thread::get_id() == worker_id) return;
  std::call_once(joined, [&] { worker.join(); });
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public faces
// ---------------------------------------------------------------------------------------------
JobContext::JobContext() = default;

JobContext::JobContext(detail::QueueCore* core, detail::Job* job) : core_(core), job_(job) {}

void JobContext::progress(int64_t step, int64_t steps) {
  if (!core_) return;
  std::lock_guard lock(core_->mu);
  job_->step = step;
  job_->steps = steps;
}

bool JobContext::cancelled() const { return job_ && job_->cancel_requested.load(); }

JobQueue::JobQueue(JobQueueOptions options) : core_(std::make_unique<detail::QueueCore>(options)) {}

JobQueue::~JobQueue() { core_->shutdown(); }

std::optional<std::string> JobQueue::submit(Work work, int64_t steps_hint) {
  return core_->submit(std::move(work), steps_hint);
}

std::optional<JobInfo> JobQueue::info(const std::string& id) const { return core_->info(id); }

bool JobQueue::cancel(const std::string& id) { return core_->cancel(id); }

std::optional<JobInfo> JobQueue::wait(const std::string& id, std::chrono::milliseconds timeout) const {
  return core_->wait(id, timeout);
}

std::size_t JobQueue::queued() const { return core_->queued(); }

std::size_t JobQueue::capacity() const { return core_->options.capacity; }

double JobQueue::retry_after_seconds() const { return core_->retry_after_seconds(); }

void JobQueue::shutdown() { core_->shutdown(); }

}  // namespace luminars::serve

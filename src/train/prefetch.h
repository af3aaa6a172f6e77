// Draws the next item (a training batch) on a worker thread while the current step runs, so
// gathering data, augmenting it and drawing noise overlap the network instead of adding to each
// step. Items depend only on their index, so prefetching never changes what is trained.
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <utility>

namespace luminars {

template <class T>
class Prefetch {
 public:
  // `draw(index)` must be deterministic in the index; it is never called twice at once.
  explicit Prefetch(std::function<T(int64_t)> draw) : draw_(std::move(draw)) {}
  ~Prefetch() {
    if (next_.valid()) next_.wait();  // what `draw` reads must outlive the worker
  }
  Prefetch(const Prefetch&) = delete;
  Prefetch& operator=(const Prefetch&) = delete;

  // Item number `index` (drawn ahead when it was the one expected), then starts drawing index + 1.
  T get(int64_t index) {
    T item;
    if (next_.valid() && next_index_ == index) {
      item = next_.get();  // rethrows what the worker threw
    } else {
      if (next_.valid()) next_.wait();
      next_ = {};
      item = draw_(index);
    }
    next_index_ = index + 1;
    next_ = std::async(std::launch::async, [this, i = next_index_] { return draw_(i); });
    return item;
  }

 private:
  std::function<T(int64_t)> draw_;
  std::future<T> next_;
  int64_t next_index_ = -1;
};

}  // namespace luminars

#include "train/gradient_buckets.h"

#include <torch/torch.h>

#include "core/error.h"
#include "train/distributed.h"

namespace luminars {

struct GradientBuckets::Impl {
  struct Param {
    std::string name;
    at::Tensor tensor;
    std::size_t bucket = 0;
    int64_t offset = 0;      // into the bucket's flat buffer
    bool arrived = false;    // its gradient came in the armed backward pass
    unsigned hook = 0;
  };
  struct Bucket {
    at::Tensor flat;         // [sum of its parameters' elements], the parameters' dtype and device
    std::vector<std::size_t> members;
    std::size_t waiting = 0;  // gradients still to arrive in the armed backward pass
    std::unique_ptr<ProcessGroup::Pending> work;
  };

  ProcessGroup& group;
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  std::size_t next_start = 0;  // buckets start in index order
  bool armed = false;

  explicit Impl(ProcessGroup& g) : group(g) {}

  at::Tensor slot(const Param& p) {
    return buckets[p.bucket].flat.narrow(0, p.offset, p.tensor.numel()).view(p.tensor.sizes());
  }

  void start_ready_buckets() {
    while (next_start < buckets.size() && buckets[next_start].waiting == 0) {
      auto& b = buckets[next_start++];
      b.work = group.start_all_reduce_sum(b.flat, "averaging gradients");
    }
  }

  // The autograd hook: `grad` is what this backward pass adds to the parameter's .grad (which
  // holds the earlier micro-batches' sum, if any); the bucket gets the total.
  void on_gradient(std::size_t i, const at::Tensor& grad) {
    if (!armed) return;
    auto& p = params[i];
    if (p.arrived)
      throw Error("data-parallel training: the gradient of " + p.name +
                  " arrived twice in one backward pass; each parameter's gradient is reduced once");
    p.arrived = true;
    torch::NoGradGuard no_grad;
    auto s = slot(p);
    const auto& earlier = p.tensor.grad();
    if (earlier.defined())
      torch::add_out(s, earlier, grad);
    else
      s.copy_(grad);
    auto& b = buckets[p.bucket];
    if (--b.waiting == 0) start_ready_buckets();
  }
};

GradientBuckets::GradientBuckets(ProcessGroup& group, const std::vector<std::pair<std::string, at::Tensor>>& params,
                                 int64_t bucket_bytes, int64_t first_bucket_bytes)
    : impl_(std::make_unique<Impl>(group)) {
  auto& s = *impl_;
  // Reverse order: the backward pass reaches the last layers' parameters first.
  int64_t bytes = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const auto& t = it->second;
    const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
    const int64_t cap = s.buckets.size() <= 1 ? first_bucket_bytes : bucket_bytes;
    const bool fits = !s.buckets.empty() && bytes + size <= cap &&
                      s.params[s.buckets.back().members.front()].tensor.scalar_type() == t.scalar_type() &&
                      s.params[s.buckets.back().members.front()].tensor.device() == t.device();
    if (!fits) {
      s.buckets.emplace_back();
      bytes = 0;
    }
    Impl::Param p;
    p.name = it->first;
    p.tensor = t;
    p.bucket = s.buckets.size() - 1;
    p.offset = bytes / static_cast<int64_t>(t.element_size());
    s.buckets.back().members.push_back(s.params.size());
    s.params.push_back(std::move(p));
    bytes += size;
  }
  for (auto& b : s.buckets) {
    int64_t n = 0;
    for (auto i : b.members) n += s.params[i].tensor.numel();
    b.flat = torch::zeros({n}, s.params[b.members.front()].tensor.options().requires_grad(false));
  }
  Impl* impl = impl_.get();
  for (std::size_t i = 0; i < s.params.size(); ++i)
    s.params[i].hook = s.params[i].tensor.register_hook([impl, i](const at::Tensor& grad) { impl->on_gradient(i, grad); });
}

GradientBuckets::~GradientBuckets() {
  for (auto& p : impl_->params) p.tensor.remove_hook(p.hook);
}

int64_t GradientBuckets::bucket_count() const { return static_cast<int64_t>(impl_->buckets.size()); }

void GradientBuckets::arm() {
  auto& s = *impl_;
  for (auto& p : s.params) p.arrived = false;
  for (auto& b : s.buckets) b.waiting = b.members.size();
  s.next_start = 0;
  s.armed = true;
}

void GradientBuckets::finish() {
  auto& s = *impl_;
  if (!s.armed) throw Error("GradientBuckets::finish without arm()");
  s.armed = false;
  if (s.params.empty()) return;
  torch::NoGradGuard no_grad;
  // 1. Parameters this backward pass did not reach: what they accumulated, or nothing (zeros).
  //    `used` counts, over the ranks, those with any gradient at all.
  std::vector<float> used(s.params.size(), 0.f);
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    auto& p = s.params[i];
    const bool has = p.arrived || p.tensor.grad().defined();
    used[i] = has ? 1.f : 0.f;
    if (p.arrived) continue;
    auto slot = s.slot(p);
    if (has)
      slot.copy_(p.tensor.grad());
    else
      slot.zero_();
    --s.buckets[p.bucket].waiting;
  }
  s.start_ready_buckets();
  auto used_sum = torch::tensor(used).to(s.params.front().tensor.device());
  auto used_work = s.group.start_all_reduce_sum(used_sum, "averaging gradients (which parameters have one)");
  // 2. Wait, in the order they started; the mean into each .grad.
  for (auto& b : s.buckets) {
    b.work->wait();
    b.work.reset();
    b.flat.div_(static_cast<double>(s.group.size()));
  }
  used_work->wait();
  used_sum = used_sum.cpu();
  const auto any = used_sum.accessor<float, 1>();
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    auto& p = s.params[i];
    if (any[static_cast<int64_t>(i)] == 0.f) continue;  // no rank has a gradient for it: it keeps none
    auto mean = s.slot(p);
    if (p.tensor.grad().defined())
      p.tensor.mutable_grad().copy_(mean);
    else
      p.tensor.mutable_grad() = mean.clone();
  }
}

}  // namespace luminars

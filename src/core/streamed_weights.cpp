#include "core/streamed_weights.h"

#include <atomic>
#include <map>
#include <mutex>

namespace luminars::quant {

namespace {

thread_local int keep_packed_depth = 0;

struct Streamed {
  c10::weak_intrusive_ptr<c10::TensorImpl> param;
  Packed packed;
  Scheme scheme;
  std::vector<int64_t> shape;
  int users = 0;
};

std::mutex mutex;
std::map<const c10::TensorImpl*, Streamed> streamed;  // by the parameter's TensorImpl
std::atomic<int64_t> count{0};

// Entries whose parameter is gone (its module released); called with the mutex held.
void forget_released() {
  for (auto it = streamed.begin(); it != streamed.end();)
    it = it->second.param.expired() ? streamed.erase(it) : std::next(it);
  count = static_cast<int64_t>(streamed.size());
}

}  // namespace

KeepPacked::KeepPacked(bool on) : on_(on) { keep_packed_depth += on_; }
KeepPacked::~KeepPacked() { keep_packed_depth -= on_; }
bool KeepPacked::active() { return keep_packed_depth > 0; }

void stream_weight(torch::Tensor& param, Packed packed, Scheme scheme, std::vector<int64_t> shape) {
  torch::NoGradGuard no_grad;
  param.set_data(torch::empty({0}, param.options()));
  std::lock_guard<std::mutex> lock(mutex);
  forget_released();
  Streamed s{c10::weak_intrusive_ptr<c10::TensorImpl>(param.getIntrusivePtr()), std::move(packed), scheme, std::move(shape), 0};
  streamed.insert_or_assign(param.unsafeGetTensorImpl(), std::move(s));
  count = static_cast<int64_t>(streamed.size());
}

int64_t streamed_bytes() {
  std::lock_guard<std::mutex> lock(mutex);
  forget_released();
  int64_t n = 0;
  for (const auto& [impl, s] : streamed) n += s.packed.codes.nbytes() + s.packed.scales.nbytes();
  return n;
}

WeightScope::WeightScope(const torch::nn::Module& module) {
  if (count.load() == 0) return;
  torch::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    auto it = streamed.find(p.unsafeGetTensorImpl());
    if (it == streamed.end()) continue;
    auto& s = it->second;
    if (s.param.expired()) continue;
    if (s.users++ == 0) {
      torch::Tensor param = p;
      param.set_data(dequantize(s.packed, s.scheme, s.shape).to(p.options()));
    }
    held_.push_back(const_cast<c10::TensorImpl*>(it->first));
  }
}

WeightScope::~WeightScope() {
  if (held_.empty()) return;
  torch::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mutex);
  for (void* impl : held_) {
    auto it = streamed.find(static_cast<const c10::TensorImpl*>(impl));
    if (it == streamed.end() || --it->second.users > 0) continue;
    if (auto param = it->second.param.lock()) {
      torch::Tensor t(std::move(param));
      t.set_data(torch::empty({0}, t.options()));
    }
  }
}

}  // namespace luminars::quant

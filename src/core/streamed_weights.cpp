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

struct Dropped {
  c10::weak_intrusive_ptr<c10::TensorImpl> param;
  std::vector<int64_t> shape;
};

std::mutex mutex;
std::map<const c10::TensorImpl*, Streamed> streamed;  // by the parameter's TensorImpl
std::map<const c10::TensorImpl*, Dropped> dropped;    // parameters whose init drop_init dropped
std::atomic<int64_t> count{0};

// Entries whose parameter is gone (its module released); called with the mutex held.
void forget_released() {
  for (auto it = streamed.begin(); it != streamed.end();)
    it = it->second.param.expired() ? streamed.erase(it) : std::next(it);
  for (auto it = dropped.begin(); it != dropped.end();)
    it = it->second.param.expired() ? dropped.erase(it) : std::next(it);
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
  dropped.erase(param.unsafeGetTensorImpl());
  Streamed s{c10::weak_intrusive_ptr<c10::TensorImpl>(param.getIntrusivePtr()), std::move(packed), scheme, std::move(shape), 0};
  streamed.insert_or_assign(param.unsafeGetTensorImpl(), std::move(s));
  count = static_cast<int64_t>(streamed.size());
}

std::optional<torch::Tensor> streamed_rows(const torch::Tensor& param, const torch::Tensor& index) {
  Packed rows;
  Scheme scheme;
  std::vector<int64_t> shape;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = streamed.find(param.unsafeGetTensorImpl());
    if (it == streamed.end() || it->second.users > 0) return std::nullopt;  // not streamed, or in float32 now
    const auto flat = index.reshape({-1}).to(torch::kInt64);
    rows = {it->second.packed.codes.index_select(0, flat), it->second.packed.scales.index_select(0, flat)};
    scheme = it->second.scheme;
    shape = it->second.shape;
  }
  shape[0] = rows.codes.size(0);
  auto out_shape = index.sizes().vec();
  out_shape.insert(out_shape.end(), shape.begin() + 1, shape.end());
  return dequantize(rows, scheme, shape).reshape(out_shape).to(param.options());
}

void drop_init(const torch::nn::Module& module) {
  if (!KeepPacked::active()) return;
  torch::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mutex);
  forget_released();
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (p.numel() == 0) continue;
    dropped.insert_or_assign(p.unsafeGetTensorImpl(),
                             Dropped{c10::weak_intrusive_ptr<c10::TensorImpl>(p.getIntrusivePtr()), p.sizes().vec()});
    torch::Tensor t = p;
    t.set_data(torch::empty({0}, t.options()));
  }
}

bool init_dropped(const torch::Tensor& param) {
  std::lock_guard<std::mutex> lock(mutex);
  return dropped.count(param.unsafeGetTensorImpl()) != 0;
}

std::vector<int64_t> loaded_shape(const torch::Tensor& param) {
  std::lock_guard<std::mutex> lock(mutex);
  if (auto s = streamed.find(param.unsafeGetTensorImpl()); s != streamed.end()) return s->second.shape;
  auto it = dropped.find(param.unsafeGetTensorImpl());
  return it == dropped.end() ? param.sizes().vec() : it->second.shape;
}

void restore_storage(torch::Tensor& param) {
  std::vector<int64_t> shape;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = dropped.find(param.unsafeGetTensorImpl());
    if (it == dropped.end()) return;
    shape = std::move(it->second.shape);
    dropped.erase(it);
  }
  torch::NoGradGuard no_grad;
  param.set_data(torch::empty(shape, param.options()));
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

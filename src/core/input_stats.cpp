#include "core/input_stats.h"

#include "core/error.h"

namespace luminars {

namespace {
InputStats* active = nullptr;
}

void InputStats::add(const torch::Tensor& weight, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t in = weight.size(1);
  if (x.size(-1) != in) throw Error("input statistics: an input of " + std::to_string(x.size(-1)) + " channels for a weight of " + std::to_string(in));
  auto flat = x.detach().to(torch::kCPU, torch::kDouble).reshape({-1, in});
  auto& e = entries_[weight.unsafeGetTensorImpl()];
  auto sq = flat.square().sum(0);
  e.sum_sq = e.sum_sq.defined() ? e.sum_sq + sq : sq;
  if (in <= kMaxCovarianceChannels) {
    auto g = torch::mm(flat.t(), flat);
    e.gram = e.gram.defined() ? e.gram + g : g;
  }
  e.rows += flat.size(0);
}

std::map<std::string, InputMoments> InputStats::by_name(const torch::nn::Module& module) const {
  std::map<std::string, InputMoments> out;
  for (const auto& p : module.named_parameters()) {
    auto it = entries_.find(p.value().unsafeGetTensorImpl());
    if (it == entries_.end() || it->second.rows == 0) continue;
    const double n = static_cast<double>(it->second.rows);
    InputMoments m;
    m.mean_square = (it->second.sum_sq / n).to(torch::kFloat32);
    if (it->second.gram.defined()) m.second = it->second.gram / n;
    out[p.key()] = std::move(m);
  }
  return out;
}

RecordInputStats::RecordInputStats(InputStats& stats) : previous_(active) { active = &stats; }
RecordInputStats::~RecordInputStats() { active = previous_; }

void record_input(const torch::Tensor& weight, const torch::Tensor& x) {
  if (active) active->add(weight, x);
}

}  // namespace luminars

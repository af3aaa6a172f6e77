#include "core/module_state.h"

#include <sstream>

#include "core/error.h"

namespace luminars {

namespace {

std::string shape_str(torch::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

}  // namespace

NamedTensors module_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value());
  return out;
}

void load_module_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                       const std::string& source, bool allow_unexpected) {
  auto state = module_state(module);
  std::map<std::string, bool> seen;
  for (auto& [name, dst] : state) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(source + ": missing tensor '" + name + "' (expected shape " + shape_str(dst.sizes()) + ")");
    if (it->second.sizes() != dst.sizes())
      throw Error(source + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes()) + ", expected " +
                  shape_str(dst.sizes()));
    seen[name] = true;
  }
  if (!allow_unexpected)
    for (const auto& [name, t] : tensors)
      if (!seen.count(name)) throw Error(source + ": unexpected tensor '" + name + "' (not in the model)");
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : state) dst.copy_(tensors.at(name));
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace luminars

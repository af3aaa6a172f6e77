#include "core/module_state.h"

#include <set>
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

void load_module_state(torch::nn::Module& module, const safetensors::Reader& file, const FileLoadOptions& o) {
  const std::string& source = file.path();
  std::map<std::string, const safetensors::TensorView*> views;  // module name -> tensor in the file
  for (const auto& view : file.tensors()) {
    const std::string name = o.rename ? o.rename(view.name) : view.name;
    if (name.empty()) continue;
    if (auto [it, fresh] = views.emplace(name, &view); !fresh)
      throw Error(source + ": tensors '" + it->second->name + "' and '" + view.name + "' are both '" + name + "'");
  }
  // Missing tensors and wrong shapes are reported in the module's order, as the in-memory variant
  // does; tensors the module lacks after those. A load that throws leaves the module half-loaded.
  auto state = module_state(module);
  std::set<std::string> wanted;
  for (const auto& [name, dst] : state) wanted.insert(name);
  const safetensors::TensorView* unexpected = nullptr;
  for (const auto& [name, view] : views)
    if (!o.allow_unexpected && !wanted.count(name) && !unexpected) unexpected = view;
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : state) {
    auto it = views.find(name);
    if (it == views.end())
      throw Error(source + ": missing tensor '" + name + "' (expected shape " + shape_str(dst.sizes()) + ")");
    const auto* view = it->second;
    auto t = mapped_tensor(*view);  // read in place: no copy of the file's bytes
    if (o.adapt) t = o.adapt(name, std::move(t));
    if (t.sizes() != dst.sizes())
      throw Error(source + ": tensor '" + view->name + "' has shape " + shape_str(t.sizes()) + ", expected " +
                  shape_str(dst.sizes()));
    if (t.is_floating_point() != dst.is_floating_point())
      throw Error(source + ": tensor '" + view->name + "' has dtype " + safetensors::dtype_name(view->dtype) +
                  ", which does not fit the model's " + std::string(c10::toString(dst.scalar_type())));
    if (unexpected) continue;  // checking only: the file is refused below
    dst.copy_(t);
    file.release(*view);
  }
  if (unexpected) throw Error(source + ": unexpected tensor '" + unexpected->name + "' (not in the model)");
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace luminars

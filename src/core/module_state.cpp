#include "core/module_state.h"

#include <set>
#include <sstream>

#include "core/error.h"
#include "core/quantize.h"
#include "core/streamed_weights.h"

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
  // q8_0/q4_0 weights (core/quantize.h) are read back as float32 here, the one place every loader
  // goes through; their codes and scales tensors are not the module's.
  const quant::QuantizedWeights quantized(file);
  struct Source {
    std::string file_name;
    const safetensors::TensorView* view = nullptr;  // null: a quantized weight
  };
  std::map<std::string, Source> sources;  // module name -> tensor in the file
  auto add = [&](const std::string& file_name, const safetensors::TensorView* view) {
    const std::string name = o.rename ? o.rename(file_name) : file_name;
    if (name.empty()) return;
    if (auto [it, fresh] = sources.emplace(name, Source{file_name, view}); !fresh)
      throw Error(source + ": tensors '" + it->second.file_name + "' and '" + file_name + "' are both '" + name + "'");
  };
  for (const auto& view : file.tensors())
    if (!quantized.is_part(view.name)) add(view.name, &view);
  for (const auto& name : quantized.names()) add(name, nullptr);
  // Missing tensors and wrong shapes are reported in the module's order, as the in-memory variant
  // does; tensors the module lacks after those. A load that throws leaves the module half-loaded.
  auto state = module_state(module);
  std::set<std::string> wanted;
  for (const auto& [name, dst] : state) wanted.insert(name);
  const Source* unexpected = nullptr;
  for (const auto& [name, src] : sources)
    if (!o.allow_unexpected && !wanted.count(name) && !unexpected) unexpected = &src;
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : state) {
    auto it = sources.find(name);
    if (it == sources.end())
      throw Error(source + ": missing tensor '" + name + "' (expected shape " + shape_str(dst.sizes()) + ")");
    const Source& src = it->second;
    if (!src.view && !dst.is_floating_point())
      throw Error(source + ": tensor '" + src.file_name + "' is quantized, which does not fit the model's " +
                  std::string(c10::toString(dst.scalar_type())));
    if (!src.view && !unexpected && quant::KeepPacked::active() && o.streamed && o.streamed(name)) {
      // Kept packed: only its shape is checked now (on a meta tensor, after adapt).
      auto meta = torch::empty(quantized.shape(src.file_name), torch::TensorOptions().device(torch::kMeta));
      if (o.adapt) meta = o.adapt(name, std::move(meta));
      if (meta.sizes() != dst.sizes())
        throw Error(source + ": tensor '" + src.file_name + "' has shape " + shape_str(meta.sizes()) + ", expected " +
                    shape_str(dst.sizes()));
      quant::stream_weight(dst, quantized.packed(src.file_name), quantized.scheme(src.file_name), dst.sizes().vec());
      quantized.release(src.file_name);
      continue;
    }
    // Read in place (no copy of the file's bytes), or dequantized.
    auto t = src.view ? mapped_tensor(*src.view) : quantized.dequantize(src.file_name);
    if (o.adapt) t = o.adapt(name, std::move(t));
    if (t.sizes() != dst.sizes())
      throw Error(source + ": tensor '" + src.file_name + "' has shape " + shape_str(t.sizes()) + ", expected " +
                  shape_str(dst.sizes()));
    if (t.is_floating_point() != dst.is_floating_point())
      throw Error(source + ": tensor '" + src.file_name + "' has dtype " + safetensors::dtype_name(src.view->dtype) +
                  ", which does not fit the model's " + std::string(c10::toString(dst.scalar_type())));
    if (unexpected) continue;  // checking only: the file is refused below
    dst.copy_(t);
    if (src.view)
      file.release(*src.view);
    else
      quantized.release(src.file_name);
  }
  if (unexpected) throw Error(source + ": unexpected tensor '" + unexpected->file_name + "' (not in the model)");
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace luminars

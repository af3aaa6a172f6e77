#include "core/weight_loader.h"

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

// One tensor a source offers, read only when it is copied.
struct Item {
  std::string file_name;
  std::vector<int64_t> shape;  // as stored, before `adapt`
  std::string dtype;           // as stored, for messages
  bool floating = true;
  std::function<torch::Tensor()> read;  // in place from the map, dequantized, or in memory
  std::function<void()> release;        // drops the mapped pages once copied
  // Set for a quantized weight: its blocks can stay packed (core/streamed_weights.h).
  const quant::QuantizedWeights* quantized = nullptr;
};

// "'a' [2, 3], 'b' [4]" for at most kListed names, then how many more.
std::string listed(const std::vector<std::string>& names, const std::function<std::string(const std::string&)>& detail) {
  constexpr std::size_t kListed = 8;
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kListed; ++i) out += (i ? ", '" : "'") + names[i] + "'" + detail(names[i]);
  if (names.size() > kListed) out += " and " + std::to_string(names.size() - kListed) + " more";
  return out;
}

std::string counted(std::size_t n, const std::string& adjective, const std::string& what) {
  return n == 1 ? adjective + " " + what : adjective + " " + std::to_string(n) + " " + what + "s";
}

WeightLoadReport load_items(const NamedTensors& targets, const std::vector<Item>& items, const std::string& source,
                            const WeightLoadOptions& o) {
  std::map<std::string, const Item*> by_name;  // target name -> item
  for (const auto& item : items) {
    const std::string name = o.rename ? o.rename(item.file_name) : item.file_name;
    if (name.empty()) continue;
    if (auto [it, fresh] = by_name.emplace(name, &item); !fresh)
      throw Error(source + ": " + o.what + "s '" + it->second->file_name + "' and '" + item.file_name + "' are both '" +
                  name + "'");
  }

  // Every check before the first copy: names, then shapes (after adapt, on meta tensors) and dtypes.
  WeightLoadReport report;
  std::set<std::string> wanted;
  std::map<std::string, std::vector<int64_t>> target_shape;  // as loaded (quant::loaded_shape)
  std::vector<std::string> dropped_missing;  // a parameter whose init was dropped needs its values
  std::string first_mismatch;
  for (const auto& [name, dst] : targets) {
    wanted.insert(name);
    const auto shape = quant::loaded_shape(dst);
    target_shape.emplace(name, shape);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      if (quant::init_dropped(dst)) dropped_missing.push_back(name);
      continue;
    }
    const Item& item = *it->second;
    if (!first_mismatch.empty()) continue;
    if (item.floating != dst.is_floating_point()) {
      first_mismatch = o.what + " '" + item.file_name + "' has dtype " + item.dtype + ", which does not fit the model's " +
                       std::string(c10::toString(dst.scalar_type()));
      continue;
    }
    auto meta = torch::empty(item.shape, torch::TensorOptions().device(torch::kMeta));
    if (o.adapt) meta = o.adapt(name, std::move(meta));
    if (meta.sizes() != torch::IntArrayRef(shape))
      first_mismatch = o.what + " '" + item.file_name + "' has shape " + shape_str(meta.sizes()) + ", expected " +
                       shape_str(shape);
  }
  for (const auto& [name, item] : by_name)
    if (!wanted.count(name)) report.unexpected.push_back(item->file_name);

  std::vector<std::string> problems;
  if (!report.missing.empty() && (!o.allow_missing || !dropped_missing.empty()))
    problems.push_back(counted(report.missing.size(), "missing", o.what) + " " +
                       listed(report.missing, [&](const std::string& n) {
                         return " (expected shape " + shape_str(target_shape.at(n)) + ")";
                       }));
  if (!first_mismatch.empty()) problems.push_back(first_mismatch);
  if (!report.unexpected.empty() && !o.allow_unexpected)
    problems.push_back(counted(report.unexpected.size(), "unexpected", o.what) + " " +
                       listed(report.unexpected, [](const std::string&) { return std::string(); }) + " (not in the model)");
  if (!problems.empty()) {
    std::string message = source + ": " + problems[0];
    for (std::size_t i = 1; i < problems.size(); ++i) message += "; " + problems[i];
    throw Error(message);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) {
    auto it = by_name.find(name);
    if (it == by_name.end()) continue;
    torch::Tensor dst = target;  // the same storage; a handle stream_weight may rebind
    const Item& item = *it->second;
    if (item.quantized && quant::KeepPacked::active() && o.streamed && o.streamed(name)) {
      // Kept packed: dequantized block by block inside the module's WeightScope.
      quant::stream_weight(dst, item.quantized->packed(item.file_name), item.quantized->scheme(item.file_name),
                           target_shape.at(name));
    } else {
      quant::restore_storage(dst);  // float storage again for a parameter whose init was dropped
      auto t = item.read();
      if (o.adapt) t = o.adapt(name, std::move(t));
      dst.copy_(t);
    }
    if (item.release) item.release();
    report.loaded.push_back(name);
  }
  return report;
}

}  // namespace

WeightLoadReport load_weights(const NamedTensors& targets, const safetensors::Reader& file, const WeightLoadOptions& o) {
  // q8_0/q4_0 weights (core/quantize.h) are offered as float32 weights; their codes and scales
  // tensors are not targets' own.
  const quant::QuantizedWeights quantized(file);
  std::vector<Item> items;
  for (const auto& view : file.tensors()) {
    if (quantized.is_part(view.name)) continue;
    const auto dtype = to_torch_dtype(view.dtype);
    items.push_back({view.name, view.shape, safetensors::dtype_name(view.dtype), torch::isFloatingType(dtype),
                     [&view] { return mapped_tensor(view); }, [&file, &view] { file.release(view); }, nullptr});
  }
  for (const auto& name : quantized.names())
    items.push_back({name, quantized.shape(name), "quantized", true, [&quantized, name] { return quantized.dequantize(name); },
                     [&quantized, name] { quantized.release(name); }, &quantized});
  return load_items(targets, items, file.path(), o);
}

WeightLoadReport load_weights(const NamedTensors& targets, const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& source, const WeightLoadOptions& o) {
  std::vector<Item> items;
  for (const auto& [name, t] : tensors)
    items.push_back({name, t.sizes().vec(), std::string(c10::toString(t.scalar_type())), t.is_floating_point(),
                     [&t] { return t; }, nullptr, nullptr});
  return load_items(targets, items, source, o);
}

WeightLoadReport load_module_state(torch::nn::Module& module, const safetensors::Reader& file, const WeightLoadOptions& o) {
  return load_weights(module_state(module), file, o);
}

WeightLoadReport load_module_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& source, const WeightLoadOptions& o) {
  return load_weights(module_state(module), tensors, source, o);
}

}  // namespace luminars

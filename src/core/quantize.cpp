#include "core/quantize.h"

#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace luminars::quant {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (std::size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

int64_t row_length(at::IntArrayRef shape) {
  int64_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

int64_t blocks_of(int64_t cols) { return (cols + kBlock - 1) / kBlock; }

std::string codes_name(const std::string& name, Scheme s) { return name + "." + scheme_name(s); }
std::string scales_name(const std::string& name, Scheme s) { return name + "." + scheme_name(s) + "_scale"; }

}  // namespace

const char* scheme_name(Scheme s) { return s == Scheme::q8_0 ? "q8_0" : "q4_0"; }

std::optional<Scheme> scheme_from_name(const std::string& name) {
  if (name == "q8_0") return Scheme::q8_0;
  if (name == "q4_0") return Scheme::q4_0;
  return std::nullopt;
}

int64_t block_bytes(Scheme s) { return s == Scheme::q8_0 ? kBlock : kBlock / 2; }

Packed quantize(const torch::Tensor& weight, Scheme s) {
  if (!weight.is_floating_point() || weight.dim() < 2) throw Error("quantize: a floating-point tensor of 2 or more dimensions");
  torch::NoGradGuard no_grad;
  const int64_t rows = weight.size(0), cols = row_length(weight.sizes()), nb = blocks_of(cols);
  auto w = weight.detach().to(torch::kCPU, torch::kFloat32).reshape({rows, cols});
  if (nb * kBlock != cols) w = torch::constant_pad_nd(w, {0, nb * kBlock - cols});
  w = w.reshape({rows, nb, kBlock});
  Packed p;
  if (s == Scheme::q8_0) {
    auto d = (w.abs().amax(-1, /*keepdim=*/true) / 127).to(torch::kFloat16).to(torch::kFloat32);
    auto inv = torch::where(d > 0, 1 / d, torch::zeros_like(d));
    auto q = (w * inv).round().clamp(-127, 127).to(torch::kInt8);
    p.codes = q.view(torch::kUInt8).reshape({rows, nb * kBlock}).contiguous();
    p.scales = d.squeeze(-1).to(torch::kFloat16).contiguous();
  } else {
    // The value of largest magnitude m, sign kept, maps to q = 8 − k, d = −m / k: of the scales
    // k in [7, 10] (8 is ggml's), each block keeps the one with the least squared error. k > 8
    // clips m to a level just inside it for finer steps elsewhere.
    auto idx = w.abs().argmax(-1, /*keepdim=*/true);
    auto m = w.gather(-1, idx);
    torch::Tensor d, q, best_err;
    const double scales[] = {8, 7, 7.25, 7.5, 7.75, 8.25, 8.5, 8.75, 9, 9.25, 9.5, 9.75, 10};  // 8 first: ties keep it
    for (std::size_t i = 0; i < std::size(scales); ++i) {
      const double k = scales[i];
      auto dk = (m / -k).to(torch::kFloat16).to(torch::kFloat32);
      auto inv = torch::where(dk != 0, 1 / dk, torch::zeros_like(dk));
      auto qk = (w * inv + 8.5).floor().clamp(0, 15);
      auto err = (w - (qk - 8) * dk).square().sum(-1, /*keepdim=*/true);
      if (i == 0) {
        d = dk, q = qk, best_err = err;
        continue;
      }
      auto better = err < best_err;
      d = torch::where(better, dk, d);
      q = torch::where(better, qk, q);
      best_err = torch::where(better, err, best_err);
    }
    q = q.to(torch::kUInt8);
    auto lo = q.slice(-1, 0, kBlock / 2), hi = q.slice(-1, kBlock / 2, kBlock);
    p.codes = lo.bitwise_or(hi.bitwise_left_shift(4)).reshape({rows, nb * kBlock / 2}).contiguous();
    p.scales = d.squeeze(-1).to(torch::kFloat16).contiguous();
  }
  return p;
}

torch::Tensor dequantize(const Packed& p, Scheme s, at::IntArrayRef shape) {
  const int64_t rows = shape[0], cols = row_length(shape), nb = blocks_of(cols);
  auto d = p.scales.to(torch::kFloat32).reshape({rows, nb, 1});
  torch::Tensor q;
  if (s == Scheme::q8_0) {
    q = p.codes.reshape({rows, nb, kBlock}).view(torch::kInt8).to(torch::kFloat32);
  } else {
    auto b = p.codes.reshape({rows, nb, kBlock / 2});
    auto lo = b.bitwise_and(15), hi = b.bitwise_right_shift(4);
    q = torch::cat({lo, hi}, -1).to(torch::kFloat32).sub_(8);
  }
  auto w = q.mul_(d).reshape({rows, nb * kBlock});  // in place: one float32 copy of the weight at a time
  if (nb * kBlock != cols) w = w.slice(1, 0, cols);
  return w.reshape(shape).contiguous();
}

bool quantizable(const std::string& name, const torch::Tensor& t) {
  const std::string suffix = ".weight";
  return t.is_floating_point() && t.dim() >= 2 && t.numel() >= 256 && name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

NamedTensors quantize_tensors(const NamedTensors& tensors, Scheme s, torch::Dtype float_dtype,
                              std::map<std::string, std::string>& metadata, const KeepEightBits& keep_q8) {
  NamedTensors out;
  nlohmann::json shapes = nlohmann::json::object(), schemes = nlohmann::json::object();
  for (const auto& [name, t] : tensors) {
    if (!quantizable(name, t)) {
      out.emplace_back(name, t.is_floating_point() ? t.to(float_dtype) : t);
      continue;
    }
    const Scheme ws = s == Scheme::q4_0 && keep_q8 && keep_q8(name, t) ? Scheme::q8_0 : s;
    auto p = quantize(t, ws);
    out.emplace_back(codes_name(name, ws), p.codes);
    out.emplace_back(scales_name(name, ws), p.scales);
    shapes[name] = t.sizes().vec();
    if (ws != s) schemes[name] = scheme_name(ws);
  }
  if (!shapes.empty()) {
    nlohmann::json entry{{"scheme", scheme_name(s)}, {"block", kBlock}, {"shapes", shapes}};
    if (!schemes.empty()) entry["schemes"] = schemes;
    metadata[kMetadataKey] = entry.dump();
  } else {
    metadata.erase(kMetadataKey);
  }
  return out;
}

QuantizedWeights::QuantizedWeights(const safetensors::Reader& file) : file_(file) {
  auto it = file.metadata().find(kMetadataKey);
  if (it == file.metadata().end()) return;
  const std::string where = file.path() + ": metadata '" + kMetadataKey + "'";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception&) {
    throw Error(where + " is not JSON");
  }
  if (!j.is_object() || !j.contains("scheme") || !j["scheme"].is_string() || !j.contains("shapes") ||
      !j["shapes"].is_object())
    throw Error(where + " needs a \"scheme\" and a \"shapes\" object");
  const auto scheme = scheme_from_name(j["scheme"].get<std::string>());
  if (!scheme) throw Error(where + ": unknown scheme '" + j["scheme"].get<std::string>() + "' (q8_0 or q4_0)");
  if (j.value("block", kBlock) != kBlock) throw Error(where + ": blocks of " + j["block"].dump() + " values, expected 32");
  for (const auto& [name, js] : j["shapes"].items()) {
    Scheme weight_scheme = *scheme;
    if (j.contains("schemes") && j["schemes"].is_object() && j["schemes"].contains(name)) {
      const auto& js_scheme = j["schemes"][name];
      const auto named = js_scheme.is_string() ? scheme_from_name(js_scheme.get<std::string>()) : std::nullopt;
      if (!named) throw Error(where + ": tensor '" + name + "' has an unknown scheme " + js_scheme.dump() + " (q8_0 or q4_0)");
      weight_scheme = *named;
    }
    Entry e{weight_scheme, {}, nullptr, nullptr};
    bool ok = js.is_array() && js.size() >= 2;
    if (ok)
      for (const auto& v : js) ok = ok && v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() < (int64_t{1} << 32);
    if (!ok) throw Error(where + ": tensor '" + name + "' has no valid shape");
    e.shape = js.get<std::vector<int64_t>>();
    const int64_t rows = e.shape[0], nb = blocks_of(row_length(e.shape));
    const std::string cn = codes_name(name, weight_scheme), sn = scales_name(name, weight_scheme);
    e.codes = file.find(cn);
    e.scales = file.find(sn);
    if (!e.codes || !e.scales)
      throw Error(file.path() + ": quantized tensor '" + name + "' lacks '" + (e.codes ? sn : cn) + "'");
    const std::vector<int64_t> want_codes{rows, nb * block_bytes(weight_scheme)}, want_scales{rows, nb};
    if (e.codes->dtype != safetensors::DType::U8 || e.codes->shape != want_codes)
      throw Error(file.path() + ": tensor '" + cn + "' is " + safetensors::dtype_name(e.codes->dtype) + " " +
                  shape_str(e.codes->shape) + ", expected U8 " + shape_str(want_codes) + " for a " + scheme_name(weight_scheme) +
                  " weight of shape " + shape_str(e.shape));
    if (e.scales->dtype != safetensors::DType::F16 || e.scales->shape != want_scales)
      throw Error(file.path() + ": tensor '" + sn + "' is " + safetensors::dtype_name(e.scales->dtype) + " " +
                  shape_str(e.scales->shape) + ", expected F16 " + shape_str(want_scales));
    if (file.contains(name)) throw Error(file.path() + ": tensor '" + name + "' is stored both quantized and not");
    parts_[cn] = name;
    parts_[sn] = name;
    weights_.emplace(name, std::move(e));
  }
}

std::vector<std::string> QuantizedWeights::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : weights_) out.push_back(name);
  return out;
}

torch::Tensor QuantizedWeights::dequantize(const std::string& name) const {
  const auto& e = weights_.at(name);
  return quant::dequantize({mapped_tensor(*e.codes), mapped_tensor(*e.scales)}, e.scheme, e.shape);
}

Packed QuantizedWeights::packed(const std::string& name) const {
  const auto& e = weights_.at(name);
  return {to_tensor(*e.codes), to_tensor(*e.scales)};
}

void QuantizedWeights::release(const std::string& name) const {
  const auto& e = weights_.at(name);
  file_.release(*e.codes);
  file_.release(*e.scales);
}

}  // namespace luminars::quant

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

// A weight's rows (its first dimension; the rest flattened, zero-padded) cut into blocks:
// float32 [rows, blocks, 32] on the weight's device.
torch::Tensor to_blocks(const torch::Tensor& weight) {
  const int64_t rows = weight.size(0), cols = row_length(weight.sizes()), nb = blocks_of(cols);
  auto w = weight.detach().to(torch::kFloat32).reshape({rows, cols});
  if (nb * kBlock != cols) w = torch::constant_pad_nd(w, {0, nb * kBlock - cols});
  return w.reshape({rows, nb, kBlock});
}

// The weight of `shape` back from its blocks [rows, blocks, 32] (the padding dropped).
torch::Tensor from_blocks(const torch::Tensor& blocks, at::IntArrayRef shape) {
  const int64_t rows = shape[0], cols = row_length(shape), nb = blocks_of(cols);
  auto w = blocks.reshape({rows, nb * kBlock});
  if (nb * kBlock != cols) w = w.slice(1, 0, cols);
  return w.reshape(shape).contiguous();
}

std::string codes_name(const std::string& name, Scheme s) { return name + "." + scheme_name(s); }
std::string scales_name(const std::string& name, Scheme s) { return name + "." + scheme_name(s) + "_scale"; }

// Per block [rows, nb, 1]: the codes [rows, nb, 32] of w at scale d, and their weighted squared error.
std::pair<torch::Tensor, torch::Tensor> q4_codes(const torch::Tensor& w, const torch::Tensor& imp, const torch::Tensor& d) {
  auto inv = torch::where(d != 0, 1 / d, torch::zeros_like(d));
  auto q = (w * inv + 8.5).floor().clamp(0, 15);
  auto err = (imp * (w - (q - 8) * d).square()).sum(-1, /*keepdim=*/true);
  return {q, err};
}

// The scale d [rows, nb, 1] (F16 values) and codes q [rows, nb, 32] (0…15, float) of blocks w
// [rows, nb, 32] with the least error weighted by imp (broadcast to w). The value of largest
// magnitude m, sign kept, maps to q = 8 − k, d = −m / k: of k in [7, 10] (8 is ggml's), each block
// keeps the one with the least error (k > 8 clips m to a level just inside it for finer steps
// elsewhere); then the scale that best fits the chosen codes (weighted least squares), twice.
std::pair<torch::Tensor, torch::Tensor> q4_search(const torch::Tensor& w, const torch::Tensor& imp) {
  auto idx = w.abs().argmax(-1, /*keepdim=*/true);
  auto m = w.gather(-1, idx);
  torch::Tensor d, q, best_err;
  auto consider = [&](const torch::Tensor& dk) {
    auto [qk, err] = q4_codes(w, imp, dk);
    if (!d.defined()) {
      d = dk, q = qk, best_err = err;
      return;
    }
    auto better = err < best_err;
    d = torch::where(better, dk, d);
    q = torch::where(better, qk, q);
    best_err = torch::where(better, err, best_err);
  };
  const double scales[] = {8, 7, 7.25, 7.5, 7.75, 8.25, 8.5, 8.75, 9, 9.25, 9.5, 9.75, 10};  // 8 first: ties keep it
  for (double k : scales) consider((m / -k).to(torch::kFloat16).to(w.scalar_type()));
  for (int refit = 0; refit < 2; ++refit) {
    auto c = q - 8;
    auto den = (imp * c * c).sum(-1, /*keepdim=*/true);
    auto fit = torch::where(den > 0, (imp * w * c).sum(-1, /*keepdim=*/true) / den.clamp_min(1e-30), d);
    consider(fit.to(torch::kFloat16).to(w.scalar_type()));
  }
  return {d, q};
}

// Codes q [rows, nb, 32] (0…15) two a byte: value j in the low nibble of byte j, j + 16 in the high.
torch::Tensor pack_q4(const torch::Tensor& q) {
  auto b = q.to(torch::kUInt8);
  const int64_t rows = b.size(0), n = b.size(1) * b.size(2);
  auto lo = b.slice(-1, 0, kBlock / 2), hi = b.slice(-1, kBlock / 2, kBlock);
  return lo.bitwise_or(hi.bitwise_left_shift(4)).reshape({rows, n / 2}).contiguous();
}

// Columns' importance [n] padded to nb blocks: channels the calibration never lit still count a little.
torch::Tensor importance_of(torch::Tensor col, int64_t nb) {
  col = col.clamp_min(0);
  col = col + 1e-3 * col.mean() + 1e-30;
  const int64_t n = col.size(0);
  return n == nb * kBlock ? col : torch::constant_pad_nd(col, {0, nb * kBlock - n});
}

void check_inputs(const InputMoments& m, const torch::Tensor& weight) {
  const int64_t in = weight.size(1);
  auto bad = [&](const torch::Tensor& t, int64_t dims) {
    return t.defined() && (t.dim() != dims || t.size(0) != in || (dims == 2 && t.size(1) != in));
  };
  if (bad(m.mean_square, 1) || bad(m.second, 2))
    throw Error("quantize: input statistics of shape " + shape_str((bad(m.second, 2) ? m.second : m.mean_square).sizes().vec()) +
                " for a weight with " + std::to_string(in) + " input channels");
}

// GPTQ (Frantar et al., 2022) in q4_0 blocks: the columns of w [rows, n] (float64, n = in) are
// rounded in order, each column's error spread over the columns not yet rounded so as to cancel
// its effect on the outputs for inputs whose second moment is h [in, in]; each block's scales are
// searched (q4_search, weighted by the inputs' mean squares) on its columns as they stand when it
// is reached. Columns past `in` (padding to whole blocks) are zero and stay so.
std::pair<torch::Tensor, torch::Tensor> q4_gptq(torch::Tensor w, torch::Tensor h, int64_t n) {
  const int64_t rows = w.size(0), in = h.size(0), nb = n / kBlock;
  h = h.to(torch::kFloat64).clone();
  if (n > in) h = torch::constant_pad_nd(h, {0, n - in, 0, n - in});
  auto diag = h.diagonal();
  const double damp = 0.01 * diag.slice(0, 0, in).mean().item<double>() + 1e-12;
  diag.add_(damp);  // also gives the padding and channels never lit a positive pivot
  auto hinv = torch::cholesky_inverse(torch::linalg_cholesky(h));
  auto u = torch::linalg_cholesky(hinv).t().contiguous();  // upper: hinv = uᵀ·u
  const auto imp = importance_of(diag.slice(0, 0, in).to(torch::kFloat32), nb).to(torch::kFloat64);
  std::vector<torch::Tensor> ds, qs;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t j0 = b * kBlock, j1 = j0 + kBlock;
    const auto d = q4_search(w.slice(1, j0, j1).reshape({rows, 1, kBlock}), imp.slice(0, j0, j1).reshape({1, 1, kBlock})).first;
    auto dr = d.reshape({rows});
    auto inv = torch::where(dr != 0, 1 / dr, torch::zeros_like(dr));
    auto errs = torch::empty({rows, kBlock}, w.options());
    auto q = torch::empty({rows, kBlock}, w.options());
    for (int64_t j = j0; j < j1; ++j) {
      auto wj = w.select(1, j);
      auto qj = (wj * inv + 8.5).floor().clamp(0, 15);
      auto e = (wj - (qj - 8) * dr) / u[j][j];
      q.select(1, j - j0).copy_(qj);
      errs.select(1, j - j0).copy_(e);
      if (j + 1 < j1) w.slice(1, j + 1, j1).sub_(torch::outer(e, u[j].slice(0, j + 1, j1)));
    }
    if (j1 < n) w.slice(1, j1, n).sub_(torch::mm(errs, u.slice(0, j0, j1).slice(1, j1, n)));
    ds.push_back(d.to(torch::kFloat32));
    qs.push_back(q.reshape({rows, 1, kBlock}));
  }
  return {torch::cat(ds, 1), torch::cat(qs, 1)};
}

}  // namespace

const char* scheme_name(Scheme s) { return s == Scheme::q8_0 ? "q8_0" : "q4_0"; }

std::optional<Scheme> scheme_from_name(const std::string& name) {
  if (name == "q8_0") return Scheme::q8_0;
  if (name == "q4_0") return Scheme::q4_0;
  return std::nullopt;
}

int64_t block_bytes(Scheme s) { return s == Scheme::q8_0 ? kBlock : kBlock / 2; }

Packed quantize(const torch::Tensor& weight, Scheme s, const InputMoments& inputs) {
  if (!weight.is_floating_point() || weight.dim() < 2) throw Error("quantize: a floating-point tensor of 2 or more dimensions");
  torch::NoGradGuard no_grad;
  const int64_t rows = weight.size(0), cols = row_length(weight.sizes()), nb = blocks_of(cols);
  const auto w = to_blocks(weight.to(torch::kCPU));
  Packed p;
  if (s == Scheme::q8_0) {
    auto d = (w.abs().amax(-1, /*keepdim=*/true) / 127).to(torch::kFloat16).to(torch::kFloat32);
    auto inv = torch::where(d > 0, 1 / d, torch::zeros_like(d));
    auto q = (w * inv).round().clamp(-127, 127).to(torch::kInt8);
    p.codes = q.view(torch::kUInt8).reshape({rows, nb * kBlock}).contiguous();
    p.scales = d.squeeze(-1).to(torch::kFloat16).contiguous();
  } else {
    check_inputs(inputs, weight);
    std::pair<torch::Tensor, torch::Tensor> dq;  // scales [rows, nb, 1], codes [rows, nb, 32]
    if (inputs.second.defined() && cols == weight.size(1)) {
      dq = q4_gptq(w.reshape({rows, nb * kBlock}).to(torch::kFloat64), inputs.second, nb * kBlock);
    } else {
      torch::Tensor imp = torch::ones({1, nb, kBlock});
      if (inputs.mean_square.defined()) {  // the taps of a kernel share their input channel's importance
        auto col = inputs.mean_square.detach().to(torch::kCPU, torch::kFloat32).repeat_interleave(cols / weight.size(1));
        imp = importance_of(col, nb).reshape({1, nb, kBlock});
      }
      dq = q4_search(w, imp);
    }
    p.codes = pack_q4(dq.second);
    p.scales = dq.first.squeeze(-1).to(torch::kFloat16).contiguous();
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
  return from_blocks(q.mul_(d), shape);  // in place: one float32 copy of the weight at a time
}

torch::Tensor round_at_scales(const torch::Tensor& weight, Scheme s, const torch::Tensor& scales) {
  torch::NoGradGuard no_grad;
  const auto w = to_blocks(weight);
  auto d = scales.to(w.device(), torch::kFloat32).reshape({w.size(0), w.size(1), 1});
  auto inv = torch::where(d != 0, 1 / d, torch::zeros_like(d));
  auto q = s == Scheme::q8_0 ? (w * inv).round().clamp(-127, 127) : (w * inv + 8.5).floor().clamp(0, 15) - 8;
  return from_blocks(q.mul_(d), weight.sizes());
}

bool quantizable(const std::string& name, const torch::Tensor& t) {
  // ".weight" and torch's packed attention projection ".in_proj_weight": both end in "weight"
  return t.is_floating_point() && t.dim() >= 2 && t.numel() >= 256 && name.ends_with("weight");
}

WeightScheme eight_bits_where(Scheme file, KeepEightBits keep) {
  return [file, keep = std::move(keep)](const std::string& name, const torch::Tensor& weight) -> std::optional<Scheme> {
    if (file == Scheme::q4_0 && keep && keep(name, weight)) return Scheme::q8_0;
    return std::nullopt;
  };
}

NamedTensors quantize_tensors(const NamedTensors& tensors, Scheme s, torch::Dtype float_dtype,
                              std::map<std::string, std::string>& metadata, const WeightScheme& scheme_of,
                              const std::map<std::string, InputMoments>& calibration) {
  NamedTensors out;
  nlohmann::json shapes = nlohmann::json::object(), schemes = nlohmann::json::object();
  for (const auto& [name, t] : tensors) {
    if (!quantizable(name, t)) {
      out.emplace_back(name, t.is_floating_point() ? t.to(float_dtype) : t);
      continue;
    }
    const Scheme ws = scheme_of ? scheme_of(name, t).value_or(s) : s;
    auto c = calibration.find(name);
    auto p = quantize(t, ws, c == calibration.end() ? InputMoments() : c->second);
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

// 8-bit and 4-bit weights in safetensors files (ggml's q8_0 and q4_0 layouts): each row of a
// weight (its first dimension; the rest flattened, zero-padded to a multiple of 32) is cut into
// blocks of 32 values that share one F16 scale d.
//   q8_0: value = d · q, q an int8 in [-127, 127], d = max|x| / 127.
//   q4_0: value = d · (q − 8), q in [0, 15], d = −m / k with m the block's value of largest
//         magnitude (sign kept) and k the one of 7, 7.25, …, 10 that leaves the block the least
//         squared error (ggml's q4_0 always takes 8), then d refitted by least squares to the
//         codes it chose (kept where it lowers the error); two values a byte, value j in the low
//         nibble of byte j and value j + 16 in the high one.
//         Calibrated (core/input_stats.h): with the inputs' second moment E[x·xᵀ] (Linear and
//         1×1 weights) the columns are rounded in order by GPTQ, each one's error compensated in
//         the columns after it so that the layer's outputs move least; with their mean squares
//         only, each value's squared error is weighted by its input channel's.
// A quantized weight NAME of shape S is stored as two tensors, NAME.q8_0 (or NAME.q4_0; U8,
// [rows, blocks · bytes a block]) and NAME.q8_0_scale (F16, [rows, blocks]); the file's metadata
// key "luminars.quantization" holds {"scheme", "block", "shapes": {NAME: S}} and, for weights
// stored in another scheme than the file's, "schemes": {NAME: "q8_0"}. Loaders turn them
// back into float32 (dequantize_weight below), so a quantized folder needs nothing else to load.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/input_stats.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"

namespace luminars::quant {

enum class Scheme { q8_0, q4_0 };
constexpr int64_t kBlock = 32;
inline constexpr const char* kMetadataKey = "luminars.quantization";

const char* scheme_name(Scheme s);
std::optional<Scheme> scheme_from_name(const std::string& name);  // nullopt for others
// Bytes of codes a block of 32 values takes (32 or 16).
int64_t block_bytes(Scheme s);

struct Packed {
  torch::Tensor codes;   // uint8 [rows, blocks · block_bytes]
  torch::Tensor scales;  // float16 [rows, blocks]
};

// `weight`: floating point, at least 2 dimensions. `inputs` (q4_0; optional): what a calibration
// measured of the layer's inputs, per input channel (weight.size(1)); a kernel's taps share their
// channel's mean square, and the second moment is used where a row is one value per channel.
Packed quantize(const torch::Tensor& weight, Scheme s, const InputMoments& inputs = {});
// The float32 weight of shape `shape` back from its blocks.
torch::Tensor dequantize(const Packed& p, Scheme s, at::IntArrayRef shape);

// `weight` rounded to blocks at the given scales ([rows, blocks], as Packed::scales) and turned
// back into float32: dequantize(quantize(weight)) when quantize chose these scales, computed
// without the scale search (quantization-aware tuning rounds at each step with scales it searches
// only now and then).
torch::Tensor round_at_scales(const torch::Tensor& weight, Scheme s, const torch::Tensor& scales);

// Whether export quantizes this tensor: a ".weight" (or attention's packed ".in_proj_weight") of 2
// or more dimensions (linear and convolution kernels, embedding tables) with at least 256 values;
// norms and biases stay float.
bool quantizable(const std::string& name, const torch::Tensor& t);

// Under q4_0, the weights (by name) to store in q8_0 instead: the ones 4 bits hurt most.
using KeepEightBits = std::function<bool(const std::string& name, const torch::Tensor& weight)>;
// The scheme a weight (by name) is stored in where it is not its file's; nullopt: the file's.
using WeightScheme = std::function<std::optional<Scheme>(const std::string& name, const torch::Tensor& weight)>;
// In a file of scheme `file`: q8_0 for the weights `keep` names when the file is q4_0.
WeightScheme eight_bits_where(Scheme file, KeepEightBits keep);

// The tensors of a file with quantizable weights replaced by their packed pair (others unchanged,
// `float_dtype` applied), and the metadata entry that describes them. Weights that `scheme_of`
// stores in another scheme than `s` are listed in the entry's "schemes" ({NAME: "q8_0"}).
// `calibration`: per weight name, its inputs' moments (see quantize); weights not in it weigh every
// value alike.
NamedTensors quantize_tensors(const NamedTensors& tensors, Scheme s, torch::Dtype float_dtype,
                              std::map<std::string, std::string>& metadata, const WeightScheme& scheme_of = {},
                              const std::map<std::string, InputMoments>& calibration = {});

// The quantized weights of a safetensors file, checked when constructed: every weight in the
// metadata must have its two tensors with the dtypes and sizes its shape implies; a file that
// breaks that is refused with one line naming the file and the tensor.
class QuantizedWeights {
 public:
  explicit QuantizedWeights(const safetensors::Reader& file);
  bool empty() const { return weights_.empty(); }
  // Whether `file_name` is a codes or scales tensor (not a weight of its own).
  bool is_part(const std::string& file_name) const { return parts_.count(file_name) != 0; }
  // The quantized weights' names (as the model calls them).
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return weights_.count(name) != 0; }
  // The float32 weight, read from the mapped file; release() drops its mapped pages after.
  torch::Tensor dequantize(const std::string& name) const;
  void release(const std::string& name) const;
  // The weight's blocks, copied out of the file, and its scheme (for weights kept packed).
  Packed packed(const std::string& name) const;
  Scheme scheme(const std::string& name) const { return weights_.at(name).scheme; }
  const std::vector<int64_t>& shape(const std::string& name) const { return weights_.at(name).shape; }

 private:
  struct Entry {
    Scheme scheme;
    std::vector<int64_t> shape;
    const safetensors::TensorView* codes;
    const safetensors::TensorView* scales;
  };
  const safetensors::Reader& file_;
  std::map<std::string, Entry> weights_;
  std::map<std::string, std::string> parts_;  // tensor name in the file -> weight name
};

}  // namespace luminars::quant

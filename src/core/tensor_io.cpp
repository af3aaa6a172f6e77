#include "core/tensor_io.h"

#include <cstring>

#include "core/error.h"

namespace luminars {

torch::Dtype to_torch_dtype(safetensors::DType d) {
  using safetensors::DType;
  switch (d) {
    case DType::BOOL: return torch::kBool;
    case DType::U8: return torch::kUInt8;
    case DType::I8: return torch::kInt8;
    case DType::I16: return torch::kInt16;
    case DType::I32: return torch::kInt32;
    case DType::I64: return torch::kInt64;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
  }
  throw Error("unsupported safetensors dtype");
}

safetensors::DType from_torch_dtype(torch::Dtype d) {
  using safetensors::DType;
  switch (d) {
    case torch::kBool: return DType::BOOL;
    case torch::kUInt8: return DType::U8;
    case torch::kInt8: return DType::I8;
    case torch::kInt16: return DType::I16;
    case torch::kInt32: return DType::I32;
    case torch::kInt64: return DType::I64;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat64: return DType::F64;
    default: throw Error(std::string("cannot store tensors of dtype ") + c10::toString(d) + " in safetensors");
  }
}

torch::Tensor to_tensor(const safetensors::TensorView& view) {
  auto t = torch::empty(view.shape, torch::TensorOptions().dtype(to_torch_dtype(view.dtype)));
  if (view.nbytes) std::memcpy(t.data_ptr(), view.data, view.nbytes);
  return t;
}

namespace {

// Whether the mapped bytes can be a tensor of their dtype in place.
bool mappable(const safetensors::TensorView& view) {
  const auto align = static_cast<uintptr_t>(safetensors::dtype_size(view.dtype));
  return view.nbytes != 0 && reinterpret_cast<uintptr_t>(view.data) % align == 0;
}

}  // namespace

torch::Tensor mapped_tensor(const safetensors::TensorView& view) {
  if (!mappable(view)) return to_tensor(view);
  return torch::from_blob(const_cast<uint8_t*>(view.data), view.shape, torch::TensorOptions().dtype(to_torch_dtype(view.dtype)));
}

torch::Tensor mapped_tensor(const safetensors::TensorView& view, std::shared_ptr<const safetensors::Reader> file) {
  if (!mappable(view)) return to_tensor(view);
  return torch::from_blob(
      const_cast<uint8_t*>(view.data), view.shape, [file = std::move(file)](void*) mutable { file.reset(); },
      torch::TensorOptions().dtype(to_torch_dtype(view.dtype)));
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path, std::optional<torch::Dtype> float_dtype) {
  safetensors::Reader reader(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& v : reader.tensors()) {
    auto t = to_tensor(v);
    if (float_dtype && t.is_floating_point()) t = t.to(*float_dtype);
    out.emplace(v.name, std::move(t));
  }
  return out;
}

void save_tensors(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                  std::optional<torch::Dtype> float_dtype) {
  std::vector<torch::Tensor> keep;
  std::vector<safetensors::TensorBlob> blobs;
  keep.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU);
    if (float_dtype && t.is_floating_point()) t = t.to(*float_dtype);
    t = t.contiguous();
    keep.push_back(t);
    blobs.push_back({name, from_torch_dtype(t.scalar_type()), t.sizes().vec(), t.data_ptr(),
                     static_cast<std::size_t>(t.numel()) * t.element_size()});
  }
  safetensors::write(path, blobs, metadata);
}

}  // namespace luminars

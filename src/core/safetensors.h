// safetensors files without LibTorch: a validating reader over a memory map, and an atomic writer.
// Layout: u64 little-endian header length N, N bytes of JSON header, then the data area.
// The header maps tensor names to {dtype, shape, data_offsets:[begin,end)} relative to the data
// area, plus an optional "__metadata__" object of string -> string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace luminars::safetensors {

enum class DType { BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
DType dtype_from_name(const std::string& name);  // throws on unknown names

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapped file
  std::size_t nbytes = 0;
  int64_t numel() const;
};

// Parsed and validated header over a byte buffer the caller keeps alive.
struct Header {
  std::vector<TensorView> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;
};
// `source` names the buffer in error messages (normally the path).
Header parse(const uint8_t* bytes, std::size_t size, const std::string& source);

class Reader {
 public:
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorView* find(const std::string& name) const;
  const TensorView& at(const std::string& name) const;  // throws naming the file and tensor
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  // Drops the mapped pages that hold only this tensor's bytes (they read back from the file if
  // touched again), so loading tensor by tensor keeps one tensor of the file resident, not all.
  void release(const TensorView& view) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  Header header_;
  std::map<std::string, std::size_t> index_;
};

struct TensorBlob {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // little-endian, contiguous
  std::size_t nbytes;
};

// Writes `path` through a temporary file and a rename, so a crash never leaves a broken file.
void write(const std::string& path, const std::vector<TensorBlob>& tensors,
           const std::map<std::string, std::string>& metadata = {});

}  // namespace luminars::safetensors

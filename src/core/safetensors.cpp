#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_fields.h"

namespace luminars::safetensors {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::I32, "I32", 4},   {DType::I64, "I64", 8},
    {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2}, {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
};

const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  throw Error("safetensors: invalid dtype value");
}

// Headers larger than this are refused (the format's own reference limit is 100 MB).
constexpr uint64_t kMaxHeader = 100u << 20;

}  // namespace

std::size_t dtype_size(DType d) { return info(d).size; }
const char* dtype_name(DType d) { return info(d).name; }

DType dtype_from_name(const std::string& name) {
  for (const auto& i : kDTypes)
    if (name == i.name) return i.dtype;
  throw Error("unknown dtype '" + name + "'");
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Header parse(const uint8_t* bytes, std::size_t size, const std::string& source) {
  auto fail = [&](const std::string& what) { return Error(source + ": " + what); };
  if (size < 8) throw fail("truncated safetensors file (" + std::to_string(size) + " bytes, no header length)");
  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);  // little-endian hosts only
  if (n > size - 8)
    throw fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
               " bytes)");
  if (n > kMaxHeader) throw fail("header length " + std::to_string(n) + " is too large");
  const std::size_t data_size = size - 8 - n;
  const uint8_t* data = bytes + 8 + n;

  nlohmann::json j;
  try {
    j = json_fields::parse(std::string_view(reinterpret_cast<const char*>(bytes) + 8, n), "header");
  } catch (const Error& e) {
    throw fail(std::string("invalid JSON in header: ") + e.what());
  }
  if (!j.is_object()) throw fail("header is not a JSON object");

  Header h;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__ value '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!v.is_object()) throw bad("entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw bad("missing dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) throw bad("missing shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw bad("missing data_offsets");
    TensorView t;
    t.name = name;
    try {
      t.dtype = dtype_from_name(v["dtype"].get<std::string>());
    } catch (const Error& e) {
      throw bad(e.what());
    }
    // Every dimension, and the product of the non-zero ones, stays below 2^48: a zero dimension
    // elsewhere must not let [0, 2^64−1] through to code that multiplies sizes.
    constexpr uint64_t kMaxElements = uint64_t{1} << 48;
    uint64_t numel = 1, extent = 1;
    if (v["shape"].size() > 16) throw bad("shape has " + std::to_string(v["shape"].size()) + " dimensions (at most 16)");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > kMaxElements || (dim != 0 && extent > kMaxElements / dim)) throw bad("shape too large");
      if (dim != 0) extent *= dim;
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) throw bad("data_offsets are not integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e) throw bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") are reversed");
    if (e > data_size)
      throw bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") run past the data area (" +
                std::to_string(data_size) + " bytes)");
    uint64_t expect = numel * dtype_size(t.dtype);
    if (e - b != expect)
      throw bad("shape and dtype need " + std::to_string(expect) + " bytes but data_offsets hold " +
                std::to_string(e - b));
    t.data = data + b;
    t.nbytes = e - b;
    h.tensors.push_back(std::move(t));
  }
  // By [begin, end): an empty tensor at the offset where the next one starts sorts first, not into it.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorView& a, const TensorView& b) {
    return a.data != b.data ? a.data < b.data : a.nbytes < b.nbytes;
  });
  for (std::size_t i = 1; i < h.tensors.size(); ++i) {
    const auto& p = h.tensors[i - 1];
    if (h.tensors[i].data < p.data + p.nbytes)
      throw fail("tensors '" + p.name + "' and '" + h.tensors[i].name + "' overlap in the data area");
  }
  return h;
}

Reader::Reader(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      ::close(fd);
      throw Error("cannot map " + path + ": " + std::strerror(errno));
    }
  }
  ::close(fd);
  try {
    header_ = parse(static_cast<const uint8_t*>(map_), size_, path);
  } catch (...) {
    if (map_) ::munmap(map_, size_);
    throw;
  }
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

Reader::~Reader() {
  if (map_) ::munmap(map_, size_);
}

void Reader::release(const TensorView& view) const {
  if (!map_ || view.nbytes == 0) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(view.data), end = begin + view.nbytes;
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;  // whole pages inside
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);  // advice: failure is harmless
}

const TensorView* Reader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorView& Reader::at(const std::string& name) const {
  if (auto* t = find(name)) return *t;
  throw Error(path_ + ": missing tensor '" + name + "'");
}

void write(const std::string& path, const std::vector<TensorBlob>& tensors,
           const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<uint64_t>(d);
    if (numel * dtype_size(t.dtype) != t.nbytes)
      throw Error(path + ": tensor '" + t.name + "' has " + std::to_string(t.nbytes) + " bytes for its shape");
    if (h.contains(t.name)) throw Error(path + ": duplicate tensor name '" + t.name + "'");
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  write_file_atomic(path, [&](std::ostream& out) {
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
  });
}

}  // namespace luminars::safetensors

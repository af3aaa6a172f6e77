// safetensors: round trips of every dtype and metadata, and clear errors on corrupt files.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/weight_loader.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "test_support.h"

namespace luminars {
namespace {

// A raw file: u64 header length, header text (padded to 8), then `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, std::size_t data_bytes, int64_t length_override = -1) {
  std::string h = header;
  uint64_t n = length_override >= 0 ? static_cast<uint64_t>(length_override) : h.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << std::string(data_bytes, '\0');
}

std::string error_of(const std::string& path) {
  try {
    safetensors::Reader r(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripEveryDtypeAndMetadata) {
  test::TempDir dir;
  auto f32 = torch::randn({3, 4});
  auto i64 = torch::arange(10, torch::kInt64).reshape({2, 5});
  NamedTensors in{{"a.f32", f32}, {"b.f16", f32.to(torch::kFloat16)}, {"c.bf16", f32.to(torch::kBFloat16)},
                  {"d.i64", i64}, {"e.scalar", torch::tensor(2.5f).reshape({})}, {"f.empty", torch::zeros({0, 3})}};
  save_tensors(dir.file("x.safetensors"), in, {{"k", "v"}, {"json", "{\"a\": 1}"}});

  safetensors::Reader r(dir.file("x.safetensors"));
  EXPECT_EQ(r.metadata().at("k"), "v");
  EXPECT_EQ(r.metadata().at("json"), "{\"a\": 1}");
  EXPECT_EQ(r.tensors().size(), 6u);
  EXPECT_EQ(r.at("b.f16").dtype, safetensors::DType::F16);
  EXPECT_EQ(r.at("c.bf16").dtype, safetensors::DType::BF16);
  auto all = load_tensors(dir.file("x.safetensors"));
  EXPECT_TRUE(torch::equal(all.at("a.f32"), f32));
  EXPECT_TRUE(torch::equal(all.at("d.i64"), i64));
  EXPECT_EQ(all.at("b.f16").scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(all.at("c.bf16"), f32.to(torch::kBFloat16)));
  EXPECT_EQ(all.at("e.scalar").dim(), 0);
  EXPECT_FLOAT_EQ(all.at("e.scalar").item<float>(), 2.5f);
  EXPECT_EQ(all.at("f.empty").sizes(), torch::IntArrayRef({0, 3}));
  // Conversion on load: half-precision files become float32.
  auto as_f32 = load_tensors(dir.file("x.safetensors"), torch::kFloat32);
  EXPECT_EQ(as_f32.at("c.bf16").scalar_type(), torch::kFloat32);
  EXPECT_EQ(as_f32.at("d.i64").scalar_type(), torch::kInt64);
  EXPECT_LT(test::rel_error(as_f32.at("c.bf16"), f32), 1e-2);
}

TEST(Safetensors, HeaderIsPaddedAndLittleEndian) {
  test::TempDir dir;
  save_tensors(dir.file("x.safetensors"), {{"w", torch::ones({3})}});
  auto bytes = read_file(dir.file("x.safetensors"));
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12);
  auto h = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(h["w"]["dtype"], "F32");
  EXPECT_EQ(h["w"]["data_offsets"][1], 12);
}

TEST(Safetensors, MissingFile) {
  EXPECT_NE(error_of("/nonexistent/x.safetensors").find("/nonexistent/x.safetensors"), std::string::npos);
}

TEST(Safetensors, TruncatedFile) {
  test::TempDir dir;
  test::write_text(dir.file("t.safetensors"), "abc");
  EXPECT_NE(error_of(dir.file("t.safetensors")).find("truncated"), std::string::npos);
  // A valid file cut in the middle of its data.
  save_tensors(dir.file("full.safetensors"), {{"w", torch::ones({64})}});
  auto bytes = read_file(dir.file("full.safetensors"));
  test::write_text(dir.file("cut.safetensors"), bytes.substr(0, bytes.size() - 10));
  auto e = error_of(dir.file("cut.safetensors"));
  EXPECT_NE(e.find("'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("past the data area"), std::string::npos) << e;
}

TEST(Safetensors, HeaderLengthBeyondFile) {
  test::TempDir dir;
  write_raw(dir.file("h.safetensors"), "{}", 0, 4096);
  auto e = error_of(dir.file("h.safetensors"));
  EXPECT_NE(e.find("header length 4096 runs past the end"), std::string::npos) << e;
}

TEST(Safetensors, InvalidJsonHeader) {
  test::TempDir dir;
  write_raw(dir.file("j.safetensors"), "{\"w\": {\"dtype\": ", 0);
  EXPECT_NE(error_of(dir.file("j.safetensors")).find("invalid JSON in header"), std::string::npos);
  write_raw(dir.file("a.safetensors"), "[1, 2]  ", 0);
  EXPECT_NE(error_of(dir.file("a.safetensors")).find("not a JSON object"), std::string::npos);
}

TEST(Safetensors, UnknownDtype) {
  test::TempDir dir;
  write_raw(dir.file("d.safetensors"), R"({"w":{"dtype":"F8_E9","shape":[2],"data_offsets":[0,2]}})", 2);
  auto e = error_of(dir.file("d.safetensors"));
  EXPECT_NE(e.find("'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown dtype 'F8_E9'"), std::string::npos) << e;
}

TEST(Safetensors, ShapeDisagreesWithOffsets) {
  test::TempDir dir;
  write_raw(dir.file("s.safetensors"), R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24);
  auto e = error_of(dir.file("s.safetensors"));
  EXPECT_NE(e.find("need 24 bytes but data_offsets hold 20"), std::string::npos) << e;
}

TEST(Safetensors, OverflowingShapesAndDeepHeadersAreRefused) {
  test::TempDir dir;
  // A zero dimension must not let a huge one through (its product is 0, yet [0, 2^64−1] reaches
  // code that multiplies sizes).
  for (const char* shape : {"[0,18446744073709551615]", "[18446744073709551615,0]", "[65536,65536,65536,65536]",
                            "[0,281474976710657]", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"}) {
    write_raw(dir.file("s.safetensors"), std::string(R"({"w":{"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,0]}})", 0);
    const auto e = error_of(dir.file("s.safetensors"));
    EXPECT_TRUE(e.find("shape too large") != std::string::npos || e.find("at most 16") != std::string::npos) << shape << ": " << e;
  }
  write_raw(dir.file("z.safetensors"), R"({"w":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(error_of(dir.file("z.safetensors")), "");  // an empty tensor is fine
  write_raw(dir.file("d.safetensors"), "{\"__metadata__\": " + std::string(100000, '[') + std::string(100000, ']') + "}", 0);
  EXPECT_NE(error_of(dir.file("d.safetensors")).find("nested deeper than 64 levels"), std::string::npos);
}

TEST(Safetensors, OverlappingOffsets) {
  test::TempDir dir;
  write_raw(dir.file("o.safetensors"),
            R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24);
  auto e = error_of(dir.file("o.safetensors"));
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
  EXPECT_NE(e.find("'a'"), std::string::npos) << e;
}

TEST(Safetensors, OutOfRangeAndReversedOffsets) {
  test::TempDir dir;
  write_raw(dir.file("r.safetensors"), R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}})", 8);
  EXPECT_NE(error_of(dir.file("r.safetensors")).find("run past the data area (8 bytes)"), std::string::npos);
  write_raw(dir.file("v.safetensors"), R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8);
  EXPECT_NE(error_of(dir.file("v.safetensors")).find("reversed"), std::string::npos);
  write_raw(dir.file("n.safetensors"), R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 8);
  EXPECT_NE(error_of(dir.file("n.safetensors")).find("negative"), std::string::npos);
}

TEST(Safetensors, BadMetadata) {
  test::TempDir dir;
  write_raw(dir.file("m.safetensors"), R"({"__metadata__":{"a":1}})", 0);
  EXPECT_NE(error_of(dir.file("m.safetensors")).find("__metadata__ value 'a' is not a string"), std::string::npos);
}

TEST(Safetensors, ReaderNamesMissingTensor) {
  test::TempDir dir;
  save_tensors(dir.file("x.safetensors"), {{"w", torch::ones({1})}});
  safetensors::Reader r(dir.file("x.safetensors"));
  EXPECT_TRUE(r.contains("w"));
  try {
    r.at("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'nope'"), std::string::npos);
  }
}

TEST(Safetensors, WriteIsAtomic) {
  test::TempDir dir;
  const auto path = dir.file("x.safetensors");
  save_tensors(path, {{"w", torch::ones({4})}});
  // A write that fails half-way (as a crash or a full disk would) leaves the old file intact.
  EXPECT_THROW(write_file_atomic(path,
                                 [](std::ostream& out) {
                                   out << "partial";
                                   throw Error("disk full");
                                 }),
               Error);
  EXPECT_THROW(save_tensors(path, {{"w", torch::ones({4}, torch::kComplexFloat)}}), Error);
  EXPECT_TRUE(torch::equal(load_tensors(path).at("w"), torch::ones({4})));
  std::size_t files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
  EXPECT_EQ(files, 1u);  // no temporary left behind
}

TEST(Safetensors, ReleasedTensorsReadBackFromTheFile) {
  test::TempDir dir;
  auto big = torch::randn({4096, 64});  // 1 MiB: spans whole pages
  save_tensors(dir.file("a.safetensors"), {{"big", big}, {"small", torch::ones({3})}});
  safetensors::Reader r(dir.file("a.safetensors"));
  const auto& v = r.at("big");
  auto before = to_tensor(v);
  r.release(v);
  EXPECT_TRUE(torch::equal(to_tensor(v), before));  // dropped pages fault back in from the file
  EXPECT_TRUE(torch::equal(before, big));
}

TEST(Safetensors, ModuleLoadsTensorByTensorFromTheFile) {
  test::TempDir dir;
  torch::nn::Linear src(4, 3), dst(4, 3);
  const auto path = dir.file("lin.safetensors");
  save_tensors(path, module_state(*src), {}, torch::kBFloat16);  // stored bf16, loaded into float32
  load_module_state(*dst, safetensors::Reader(path));
  EXPECT_TRUE(torch::equal(dst->weight, src->weight.to(torch::kBFloat16).to(torch::kFloat32)));

  save_tensors(path, {{"weight", torch::zeros({3, 4})}}, {});
  EXPECT_NE(test::error_of([&] { load_module_state(*dst, safetensors::Reader(path)); }).find("missing tensor 'bias'"),
            std::string::npos);
  save_tensors(path, {{"weight", torch::zeros({3, 5})}, {"bias", torch::zeros({3})}}, {});
  EXPECT_NE(test::error_of([&] { load_module_state(*dst, safetensors::Reader(path)); }).find("'weight' has shape [3, 5]"),
            std::string::npos);
  save_tensors(path, {{"weight", torch::zeros({3, 4}, torch::kInt64)}, {"bias", torch::zeros({3})}}, {});
  EXPECT_NE(test::error_of([&] { load_module_state(*dst, safetensors::Reader(path)); }).find("'weight' has dtype I64"),
            std::string::npos);
  save_tensors(path, {{"weight", torch::zeros({3, 4})}, {"bias", torch::zeros({3})}, {"extra", torch::zeros({1})}}, {});
  EXPECT_NE(test::error_of([&] { load_module_state(*dst, safetensors::Reader(path)); }).find("unexpected tensor 'extra'"),
            std::string::npos);
  WeightLoadOptions skip_extra;
  skip_extra.rename = [](const std::string& n) { return n == "extra" ? std::string() : n; };
  load_module_state(*dst, safetensors::Reader(path), skip_extra);
  EXPECT_EQ(dst->weight.abs().sum().item<float>(), 0.f);
}

}  // namespace
}  // namespace luminars

// The one weight loader (core/weight_loader.h): file and memory sources alike, strict and partial
// loads, every missing and unexpected name listed, and the EMA and optimizer state read through it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/quantize.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "core/weight_loader.h"
#include "test_support.h"
#include "train/adamw.h"
#include "train/ema.h"

namespace luminars {
namespace {

struct TwoLayers : torch::nn::Module {
  TwoLayers() {
    a = register_module("a", torch::nn::Linear(4, 3));
    b = register_module("b", torch::nn::Linear(3, 2));
  }
  torch::nn::Linear a{nullptr}, b{nullptr};
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(WeightLoader, FileAndMemoryFillTheSameValues) {
  test::TempDir dir;
  TwoLayers src, from_file, from_memory;
  const auto path = dir.file("w.safetensors");
  save_tensors(path, module_state(src), {}, torch::kFloat16);  // the dtype policy: F16 into float32
  const auto report = load_module_state(from_file, safetensors::Reader(path));
  load_module_state(from_memory, load_tensors(path), path);
  EXPECT_EQ(report.loaded.size(), 4u);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  EXPECT_TRUE(torch::equal(from_file.a->weight, src.a->weight.to(torch::kFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(from_file.b->bias, src.b->bias.to(torch::kFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(from_memory.a->weight, from_file.a->weight));
  EXPECT_TRUE(torch::equal(from_memory.b->bias, from_file.b->bias));
}

TEST(WeightLoader, StrictLoadsListEveryMissingAndUnexpectedNameAndChangeNothing) {
  test::TempDir dir;
  TwoLayers dst;
  const auto before = dst.a->weight.clone();
  const auto path = dir.file("w.safetensors");
  save_tensors(path, {{"a.weight", torch::zeros({3, 4})}, {"x", torch::zeros({1})}, {"y", torch::zeros({2})}});
  const auto msg = test::error_of([&] { load_module_state(dst, safetensors::Reader(path)); });
  EXPECT_TRUE(contains(msg, path + ": missing 3 tensors 'a.bias' (expected shape [3]), 'b.weight' (expected shape [2, 3]), "
                            "'b.bias' (expected shape [2])")) << msg;
  EXPECT_TRUE(contains(msg, "; unexpected 2 tensors 'x', 'y' (not in the model)")) << msg;
  EXPECT_TRUE(torch::equal(dst.a->weight, before)) << "the checks run before the first copy";
}

TEST(WeightLoader, PartialLoadsFillWhatMatchesAndReportTheRest) {
  test::TempDir dir;
  TwoLayers dst;
  const auto b_before = dst.b->weight.clone();
  const auto path = dir.file("w.safetensors");
  save_tensors(path, {{"a.weight", torch::full({3, 4}, 2.f)}, {"a.bias", torch::ones({3})}, {"extra", torch::zeros({1})}});
  WeightLoadOptions partial;
  partial.allow_missing = true;
  partial.allow_unexpected = true;
  const auto report = load_module_state(dst, safetensors::Reader(path), partial);
  EXPECT_EQ(report.loaded, (std::vector<std::string>{"a.weight", "a.bias"}));
  EXPECT_EQ(report.missing, (std::vector<std::string>{"b.weight", "b.bias"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"extra"}));
  EXPECT_TRUE(torch::equal(dst.a->weight, torch::full({3, 4}, 2.f)));
  EXPECT_TRUE(torch::equal(dst.b->weight, b_before));

  // Allowing missing names does not allow wrong shapes.
  save_tensors(path, {{"a.weight", torch::zeros({4, 4})}});
  EXPECT_TRUE(contains(test::error_of([&] { load_module_state(dst, safetensors::Reader(path), partial); }),
                       "tensor 'a.weight' has shape [4, 4], expected [3, 4]"));
}

TEST(WeightLoader, NamesAreMappedAndTwoFileNamesForOneTargetAreRefused) {
  test::TempDir dir;
  TwoLayers dst;
  const auto path = dir.file("w.safetensors");
  NamedTensors prefixed;
  TwoLayers src;
  for (const auto& [name, t] : module_state(src)) prefixed.emplace_back("model." + name, t);
  save_tensors(path, prefixed);
  WeightLoadOptions strip;
  strip.rename = [](const std::string& n) { return n.substr(6); };
  load_module_state(dst, safetensors::Reader(path), strip);
  EXPECT_TRUE(torch::equal(dst.b->weight, src.b->weight));
  WeightLoadOptions collide;
  collide.rename = [](const std::string& n) { return n.find("weight") != std::string::npos ? "a.weight" : n.substr(6); };
  EXPECT_TRUE(contains(test::error_of([&] { load_module_state(dst, safetensors::Reader(path), collide); }),
                       "are both 'a.weight'"));
}

TEST(WeightLoader, QuantizedWeightsAreDequantizedIntoTheTargets) {
  test::TempDir dir;
  torch::nn::Sequential src(torch::nn::Linear(64, 16)), dst(torch::nn::Linear(64, 16));  // "0.weight": 1024 values
  const auto path = dir.file("q.safetensors");
  std::map<std::string, std::string> metadata;
  save_tensors(path, quant::quantize_tensors(module_state(*src), quant::Scheme::q8_0, torch::kFloat32, metadata), metadata);
  EXPECT_NE(safetensors::Reader(path).find("0.weight.q8_0"), nullptr);
  const auto report = load_module_state(*dst, safetensors::Reader(path));
  EXPECT_EQ(report.loaded, (std::vector<std::string>{"0.weight", "0.bias"}));
  const auto w = src->named_parameters()["0.weight"], w2 = dst->named_parameters()["0.weight"];
  const double rel = (w2 - w).norm().item<double>() / w.norm().item<double>();
  EXPECT_LT(rel, 0.02);
  EXPECT_GT(rel, 0.0) << "q8_0 is lossy: an exact match would mean the float weights were read";
  EXPECT_TRUE(torch::equal(dst->named_parameters()["0.bias"], src->named_parameters()["0.bias"]));
}

TEST(WeightLoader, EmaAndOptimizerStateReadBackThroughIt) {
  test::TempDir dir;
  TwoLayers model;
  Ema ema(model, 0.9);
  AdamW opt(module_state(model), AdamWOptions{});
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.parameters()) p.add_(1.0);
  }
  ema.update(model);
  for (auto& p : model.parameters()) p.mutable_grad() = torch::ones_like(p);
  opt.step();
  opt.step();
  save_tensors(dir.file("ema.safetensors"), ema.weights());
  save_tensors(dir.file("opt.safetensors"), opt.state());

  TwoLayers other;
  Ema ema2(other, 0.9);
  AdamW opt2(module_state(other), AdamWOptions{});
  ema2.load(safetensors::Reader(dir.file("ema.safetensors")));
  opt2.load_state(safetensors::Reader(dir.file("opt.safetensors")));
  for (std::size_t i = 0; i < ema.weights().size(); ++i)
    EXPECT_TRUE(torch::equal(ema.weights()[i].second, ema2.weights()[i].second)) << ema.weights()[i].first;
  EXPECT_EQ(opt2.steps_taken(), 2);
  const auto s1 = opt.state(), s2 = opt2.state();
  for (std::size_t i = 0; i < s1.size(); ++i) EXPECT_TRUE(torch::equal(s1[i].second, s2[i].second)) << s1[i].first;

  save_tensors(dir.file("bad.safetensors"), {{"a.weight", torch::zeros({3, 4})}});
  const auto msg = test::error_of([&] { ema2.load(safetensors::Reader(dir.file("bad.safetensors"))); });
  EXPECT_TRUE(contains(msg, "bad.safetensors: missing 3 EMA tensors 'a.bias'")) << msg;
  const auto opt_msg = test::error_of([&] { opt2.load_state(safetensors::Reader(dir.file("bad.safetensors"))); });
  EXPECT_TRUE(contains(opt_msg, "missing 9 optimizer tensors")) << opt_msg;
  EXPECT_TRUE(contains(opt_msg, "unexpected optimizer tensor 'a.weight'")) << opt_msg;
}

}  // namespace
}  // namespace luminars

// Calibration for 4-bit export (core/input_stats.h, pipeline/calibration.h): the recorder holds each
// channel-mixing layer's input moments (per-channel mean squares, E[x·xᵀ]), only while it is alive;
// a run of the shipped model measures every denoiser weight stored in 4 bits; and the export
// records the calibration in the denoiser file.
#include <torch/torch.h>

#include <filesystem>

#include "core/input_stats.h"
#include "core/lora_slot.h"
#include "core/quantize.h"
#include "core/safetensors.h"
#include "model/checkpoint.h"
#include "pipeline/calibration.h"
#include "pipeline/export_model.h"
#include "pipeline/model_folder.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

struct TwoLayers : torch::nn::Module {
  torch::nn::Linear a{nullptr};
  torch::nn::Conv2d b{nullptr};
  TwoLayers() {
    a = register_module("a", torch::nn::Linear(6, 4));
    b = register_module("b", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 3, 1)));
  }
};

TEST(Calibration, RecordsEachInputChannelsMeanSquareWhileARecorderLives) {
  torch::manual_seed(2);
  TwoLayers m;
  LoraSlot slot_a, slot_b;
  auto x1 = torch::randn({5, 6}) * torch::arange(1, 7), x2 = torch::randn({2, 3, 6});
  auto img = torch::randn({2, 4, 5, 5});
  slot_a.linear(x1, m.a->weight, m.a->bias);  // before any recorder: not recorded
  InputStats stats;
  {
    RecordInputStats record(stats);
    slot_a.linear(x1, m.a->weight, m.a->bias);
    slot_a.pointwise(x2, m.a->weight, m.a->bias);
    slot_b.conv1x1(img, m.b);
  }
  slot_a.linear(x2, m.a->weight, m.a->bias);  // after: not recorded
  const auto by_name = stats.by_name(m);
  ASSERT_EQ(by_name.size(), 2u);
  auto all = torch::cat({x1, x2.reshape({-1, 6})}).to(torch::kFloat64);
  EXPECT_LT(test::rel_error(by_name.at("a.weight").mean_square, all.square().mean(0)), 1e-6);
  EXPECT_LT(test::rel_error(by_name.at("a.weight").second, torch::mm(all.t(), all) / all.size(0)), 1e-12);
  auto pixels = img.permute({0, 2, 3, 1}).reshape({-1, 4}).to(torch::kFloat64);
  EXPECT_LT(test::rel_error(by_name.at("b.weight").mean_square, pixels.square().mean(0)), 1e-6);
  EXPECT_LT(test::rel_error(by_name.at("b.weight").second, torch::mm(pixels.t(), pixels) / pixels.size(0)), 1e-12);
}

TEST(Calibration, EveryFourBitProductOfTheShippedDenoiserIsMeasured) {
  const auto folder = ModelFolder::load(kModel);
  auto denoiser = load_denoiser(folder.path_of(folder.denoiser));
  const auto moments = denoiser_input_moments(folder, denoiser, {"a dog face", "a green tree, noto style"});
  int64_t four_bit = 0;
  for (const auto& p : denoiser->named_parameters()) {
    if (!quant::quantizable(p.key(), p.value()) || denoiser_keeps_eight_bits(p.key(), p.value())) continue;
    auto it = moments.find(p.key());
    if (p.key() == "recursion_embed.weight") {  // a table looked up, not multiplied: nothing to record
      EXPECT_EQ(it, moments.end());
      continue;
    }
    ++four_bit;
    ASSERT_NE(it, moments.end()) << p.key();
    const int64_t in = p.value().size(1);
    EXPECT_EQ(it->second.mean_square.sizes(), (std::vector<int64_t>{in})) << p.key();
    EXPECT_TRUE(it->second.mean_square.isfinite().all().item<bool>()) << p.key();
    EXPECT_GT(it->second.mean_square.max().item<double>(), 0) << p.key();
    ASSERT_TRUE(it->second.second.defined()) << p.key();  // every layer here is narrow enough
    EXPECT_LT(test::rel_error(it->second.second.diagonal(), it->second.mean_square.to(torch::kFloat64)), 1e-5) << p.key();
  }
  EXPECT_GT(four_bit, 20);
}

TEST(Calibration, TheExportRecordsItAndTheWeightsDifferFromAnUncalibratedExport) {
  test::TempDir dir;
  auto run = [&](const std::string& name, std::vector<std::string> prompts) {
    ExportOptions o;
    o.model_dir = kModel;
    o.out_dir = dir.file(name);
    o.quantize = quant::Scheme::q4_0;
    o.calibration_prompts = std::move(prompts);
    export_model(o);
    return o.out_dir + "/denoiser/model.safetensors";
  };
  const safetensors::Reader plain(run("plain", {})), calibrated(run("calibrated", {"a dog face"}));
  EXPECT_EQ(plain.metadata().count("luminars.calibration"), 0u);
  EXPECT_EQ(calibrated.metadata().at("luminars.calibration"), "1 prompt");
  const auto a = quant::QuantizedWeights(plain).dequantize("unet.down.0.blocks.0.mlp_in.weight");
  const auto b = quant::QuantizedWeights(calibrated).dequantize("unet.down.0.blocks.0.mlp_in.weight");
  EXPECT_FALSE(torch::equal(a, b));
  EXPECT_LT(test::rel_error(b, a), 0.2);  // the same weight, rounded otherwise
}

// `export --dtype q4_0 --denoiser-dtype q8_0`: the denoiser in 8 bits (so not calibrated), the text
// encoder and the VAE in 4; the folder says so and loads.
TEST(Calibration, ADenoiserOfItsOwnSchemeIsNotCalibrated) {
  test::TempDir dir;
  ExportOptions o;
  o.model_dir = kModel;
  o.out_dir = dir.file("mixed");
  o.quantize = quant::Scheme::q4_0;
  o.denoiser_quantize = quant::Scheme::q8_0;
  o.calibration_prompts = {"a dog face"};
  export_model(o);
  auto has = [](const std::string& file, const std::string& name) { return safetensors::Reader(file).contains(name); };
  const std::string den = o.out_dir + "/denoiser/model.safetensors";
  EXPECT_TRUE(has(den, "unet.down.0.blocks.0.mlp_in.weight.q8_0"));
  EXPECT_FALSE(has(den, "unet.down.0.blocks.0.mlp_in.weight.q4_0"));
  EXPECT_EQ(safetensors::Reader(den).metadata().count("luminars.calibration"), 0u);
  EXPECT_TRUE(has(o.out_dir + "/text_encoder/model.safetensors", "text_model.encoder.layers.0.mlp.fc1.weight.q4_0"));
  EXPECT_EQ(ModelFolder::load(o.out_dir).weights, "q4_0, denoiser q8_0");
  o.quantize.reset();
  o.out_dir = dir.file("refused");
  EXPECT_NE(test::error_of([&] { export_model(o); }).find("--denoiser-dtype) needs a quantized --dtype"), std::string::npos);
}

}  // namespace
}  // namespace luminars

// Quantization-aware tuning (pipeline/quantization_tuning.h): on the shipped model, tuning lowers
// the rounded denoiser's error against its float self on the states it tuned on and on prompts it
// never saw, moves the float weights only a little, and export records it.
#include <torch/torch.h>

#include "core/error.h"
#include "core/quantize.h"
#include "core/safetensors.h"
#include "model/checkpoint.h"
#include "pipeline/calibration.h"
#include "pipeline/export_model.h"
#include "pipeline/model_folder.h"
#include "pipeline/quantization_tuning.h"
#include "test_support.h"

namespace luminars {
namespace {

const std::string kModel = test::shipped_model_dir();

// ctest-labels: slow
TEST(QuantizationTuning, LowersTheRoundedDenoisersErrorAndMovesTheWeightsLittle) {
  const auto folder = ModelFolder::load(kModel);
  auto denoiser = load_denoiser(folder.path_of(folder.denoiser));
  const auto before = denoiser->named_parameters().find("unet.down.0.blocks.0.mlp_in.weight")->clone();
  QuantizationTuning t;
  t.steps = 40;
  t.batch = 4;
  t.lr = 3e-5;
  t.seeds = 1;
  t.prompts = {"a dog face", "a green tree, noto style", "a red car, twemoji style"};
  t.held_out = {"a yellow banana"};
  t.scheme_of = quant::eight_bits_where(quant::Scheme::q4_0, denoiser_keeps_eight_bits);
  torch::manual_seed(0);
  const auto r = tune_for_quantization(folder, denoiser, t);
  EXPECT_EQ(r.states, 3 * folder.sampler.steps);
  // plain 4-bit rounding moves the guided velocity by tens of percent on this model
  EXPECT_GT(r.error_before, 0.1);
  EXPECT_GT(r.held_out_before, 0.1);
  EXPECT_LT(r.error_after, 0.9 * r.error_before);
  EXPECT_LT(r.held_out_after, r.held_out_before);
  const auto after = *denoiser->named_parameters().find("unet.down.0.blocks.0.mlp_in.weight");
  EXPECT_FALSE(torch::equal(before, after));       // the model holds the tuned float weights …
  EXPECT_LT(test::rel_error(after, before), 0.05);  // … near the ones it was trained to
}

TEST(QuantizationTuning, RefusesWhatItCannotDo) {
  const auto folder = ModelFolder::load(kModel);
  auto denoiser = load_denoiser(folder.path_of(folder.denoiser));
  QuantizationTuning t;
  t.steps = 1;
  EXPECT_THROW(tune_for_quantization(folder, denoiser, t), Error);  // no prompts
  t.prompts = {"a dog face"};
  t.lr = 0;
  EXPECT_THROW(tune_for_quantization(folder, denoiser, t), Error);
  t.lr = 1e-5;
  t.start["stem.weight"] = torch::zeros({3});
  EXPECT_THROW(tune_for_quantization(folder, denoiser, t), Error);  // a start of another shape
  ExportOptions o;
  o.model_dir = kModel;
  test::TempDir dir;
  o.out_dir = dir.file("f16");
  o.tune_steps = 2;
  EXPECT_THROW(export_model(o), Error);  // nothing to round: f16
}

TEST(QuantizationTuning, TheExportRecordsItAndStartsFromTheCalibratedRounding) {
  test::TempDir dir;
  ExportOptions o;
  o.model_dir = kModel;
  o.out_dir = dir.file("tuned");
  o.quantize = quant::Scheme::q4_0;
  o.calibration_prompts = {"a dog face"};
  o.tuning_prompts = {"a cat face, noto style", "a rocket", "a green apple", "a yellow star, twemoji style",
                      "a fox", "a blue whale", "a cup of tea", "a red kite"};  // the 8th held out
  o.tune_seeds = 1;
  o.tune_steps = 3;
  export_model(o);
  const safetensors::Reader file(o.out_dir + "/denoiser/model.safetensors");
  EXPECT_EQ(file.metadata().at("luminars.calibration"), "1 prompt");
  const std::string note = file.metadata().at("luminars.quantization_tuning");
  EXPECT_EQ(note.rfind("3 steps on 84 states of 7 prompts;", 0), 0u) << note;
  EXPECT_NE(note.find("on 1 held-out prompt "), std::string::npos) << note;
  EXPECT_TRUE(file.contains("unet.down.0.blocks.0.mlp_in.weight.q4_0"));
  const auto folder = ModelFolder::load(o.out_dir);
  EXPECT_EQ(folder.weights, "q4_0");
}

}  // namespace
}  // namespace luminars

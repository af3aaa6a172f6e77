// `export --tensor-dtype PATTERN=SCHEME` (ExportOptions::tensor_schemes, pipeline/export_model.h):
// the first pattern that matches a quantizable weight's name decides its scheme, in every part and
// over the part's own 8-bit exceptions; the files list those weights, the folder names the patterns
// and loads; a pattern that matches nothing, a bad expression or an unquantized dtype is refused
// with the old folder left as it was.
#include <torch/torch.h>

#include <filesystem>

#include "core/quantize.h"
#include "core/safetensors.h"
#include "model/checkpoint.h"
#include "pipeline/export_model.h"
#include "pipeline/model_folder.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using quant::Scheme;

const std::string kModel = test::shipped_model_dir();

ExportOptions export_options(const std::string& out, Scheme scheme) {
  ExportOptions o;
  o.model_dir = kModel;
  o.out_dir = out;
  o.quantize = scheme;
  return o;
}

Scheme scheme_of(const std::string& file, const std::string& name) {
  const safetensors::Reader reader(file);
  const quant::QuantizedWeights weights(reader);
  EXPECT_TRUE(weights.contains(name)) << file << ": " << name;
  return weights.contains(name) ? weights.scheme(name) : Scheme::q8_0;
}

TEST(TensorDtype, ThePatternsChooseEachWeightsSchemeInEveryPart) {
  test::TempDir dir;
  auto o = export_options(dir.file("mixed"), Scheme::q4_0);
  o.tensor_schemes = {{R"(unet\.up\.0\..*mlp_in)", Scheme::q4_0},  // first match decides: before the next
                      {"mlp_in", Scheme::q8_0},
                      {R"(^context_embed\.)", Scheme::q4_0},  // one of the denoiser's 8-bit exceptions
                      {"^text_projection", Scheme::q8_0}};    // the text encoder's
  export_model(o);
  const std::string den = o.out_dir + "/denoiser/model.safetensors", text = o.out_dir + "/text_encoder/model.safetensors";
  EXPECT_EQ(scheme_of(den, "unet.up.0.blocks.0.mlp_in.weight"), Scheme::q4_0);
  EXPECT_EQ(scheme_of(den, "unet.up.1.blocks.0.mlp_in.weight"), Scheme::q8_0);
  EXPECT_EQ(scheme_of(den, "unet.down.0.blocks.0.mlp_in.weight"), Scheme::q8_0);
  EXPECT_EQ(scheme_of(den, "unet.down.0.blocks.0.mlp_out.weight"), Scheme::q4_0);  // no pattern: the file's
  EXPECT_EQ(scheme_of(den, "context_embed.1.weight"), Scheme::q4_0);
  EXPECT_EQ(scheme_of(den, "time_embed.0.weight"), Scheme::q8_0);  // no pattern: the denoiser's exception
  EXPECT_EQ(scheme_of(text, "text_projection.weight"), Scheme::q8_0);
  EXPECT_EQ(scheme_of(text, "text_model.encoder.layers.0.mlp.fc1.weight"), Scheme::q4_0);
  EXPECT_EQ(ModelFolder::load(o.out_dir).weights,
            R"(q4_0, unet\.up\.0\..*mlp_in=q4_0, mlp_in=q8_0, ^context_embed\.=q4_0, ^text_projection=q8_0)");

  // The folder loads, each weight rounded as its scheme rounds: 8 bits far closer to the float weight.
  const auto original = load_denoiser(kModel + "/denoiser/model.safetensors"), loaded = load_denoiser(den);
  const auto a = original->named_parameters(), b = loaded->named_parameters();
  const double q8 = test::rel_error(b["unet.down.0.blocks.0.mlp_in.weight"], a["unet.down.0.blocks.0.mlp_in.weight"]);
  const double q4 = test::rel_error(b["unet.up.0.blocks.0.mlp_in.weight"], a["unet.up.0.blocks.0.mlp_in.weight"]);
  EXPECT_LT(q8, 0.01);
  EXPECT_GT(q4, 0.05);
  EXPECT_LT(q4, 0.12);
}

// In a q8_0 folder a pattern may store weights in 4 bits; the denoiser is then calibrated for them.
TEST(TensorDtype, FourBitWeightsInAnEightBitFolderAreCalibrated) {
  test::TempDir dir;
  auto o = export_options(dir.file("q8"), Scheme::q8_0);
  o.tensor_schemes = {{R"(^unet\.mid\.blocks\.0\.mlp_out\.)", Scheme::q4_0}};
  o.calibration_prompts = {"a dog face"};
  export_model(o);
  const std::string den = o.out_dir + "/denoiser/model.safetensors";
  EXPECT_EQ(scheme_of(den, "unet.mid.blocks.0.mlp_out.weight"), Scheme::q4_0);
  EXPECT_EQ(scheme_of(den, "unet.mid.blocks.0.mlp_in.weight"), Scheme::q8_0);
  const safetensors::Reader reader(den);
  EXPECT_EQ(reader.metadata().at("luminars.calibration"), "1 prompt");
  EXPECT_NE(reader.metadata().at(quant::kMetadataKey).find(R"("schemes":{"unet.mid.blocks.0.mlp_out.weight":"q4_0"})"),
            std::string::npos);
}

TEST(TensorDtype, RefusedWithTheOldFolderLeftAsItWas) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(out);
  test::write_text(out + "/keep.txt", "old");
  auto refused = [&](bool quantized, const std::string& pattern) {
    auto o = export_options(out, Scheme::q4_0);
    if (!quantized) o.quantize.reset();
    o.tensor_schemes = {{pattern, Scheme::q8_0}};
    const auto message = test::error_of([&] { export_model(o); });
    EXPECT_TRUE(fs::exists(out + "/keep.txt")) << pattern;
    EXPECT_FALSE(fs::exists(out + ".tmp-export")) << pattern;
    return message;
  };
  EXPECT_NE(refused(true, "mlp_in(").find("--tensor-dtype 'mlp_in(': not a regular expression"),
            std::string::npos);
  EXPECT_NE(refused(true, "mlp_inn").find("--tensor-dtype 'mlp_inn=q8_0': the pattern matches no quantizable weight"),
            std::string::npos);
  // Norms and biases are never quantized: a pattern that only names them matches nothing.
  EXPECT_NE(refused(true, R"(\.bias$)").find("matches no quantizable weight"), std::string::npos);
  EXPECT_NE(refused(false, "mlp_in").find("(--tensor-dtype) need a quantized --dtype"), std::string::npos);
}

TEST(TensorDtype, TheCommandLineNamesWhatItCannotRead) {
  test::TempDir dir;
  for (const char* arg : {"mlp_in=q5_0", "mlp_in", "=q8_0"}) {
    const auto r = test::run_cli("export --model " + kModel + " --out " + dir.file("x") + " --dtype q4_0 --tensor-dtype " + arg);
    EXPECT_NE(r.exit_code, 0) << arg;
    EXPECT_NE(r.output.find("--tensor-dtype '" + std::string(arg) + "': expected PATTERN=q8_0 or PATTERN=q4_0"), std::string::npos)
        << r.output;
  }
  EXPECT_FALSE(fs::exists(dir.file("x")));
}

}  // namespace
}  // namespace luminars

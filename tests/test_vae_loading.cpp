// The VAE loader on rewritten copies of a fixture: legacy attention names, F16/BF16 files,
// files and configs that disagree with the model, and the config's validation.
#include <functional>

#include "core/error.h"
#include "core/files.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "flow/flow_matching.h"
#include "test_support.h"
#include "vae/autoencoder_kl.h"

namespace luminars {
namespace {

using Tensors = std::map<std::string, torch::Tensor>;

using test::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct VaeLoading : ::testing::Test {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    src = test::fixtures_dir() + "/vae_tiny_4ch";
    weights = load_tensors(src + "/diffusion_pytorch_model.safetensors");
    config = read_file(src + "/config.json");
    ex = load_tensors(src + "/expected.safetensors");
  }
  // Writes a VAE folder of `tensors` (cast to `dtype` when given) and `config_text` into tmp.
  std::string write(const Tensors& tensors, std::optional<torch::Dtype> dtype = std::nullopt,
                    const std::string& config_text = "") {
    NamedTensors named(tensors.begin(), tensors.end());
    save_tensors(tmp.file("diffusion_pytorch_model.safetensors"), named, {{"format", "pt"}}, dtype);
    test::write_text(tmp.file("config.json"), config_text.empty() ? config : config_text);
    return tmp.path.string();
  }
  std::string src, config;
  Tensors weights, ex;
  test::TempDir tmp;
};

TEST_F(VaeLoading, LegacyAttentionNamesAsConvKernels) {
  Tensors legacy;
  const std::pair<std::string, std::string> renames[] = {
      {"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}};
  int renamed = 0;
  for (const auto& [name, t] : weights) {
    std::string n = name;
    torch::Tensor v = t;
    for (const auto& [now, old] : renames) {
      const auto pos = n.find(".attentions.0." + now + ".");
      if (pos == std::string::npos) continue;
      n.replace(pos + 14, now.size(), old);
      if (v.dim() == 2) v = v.reshape({v.size(0), v.size(1), 1, 1});  // as a 1×1 conv kernel
      ++renamed;
    }
    legacy.emplace(n, v);
  }
  ASSERT_EQ(renamed, 16);  // 4 projections × (weight, bias) × (encoder, decoder)
  ASSERT_TRUE(legacy.count("decoder.mid_block.attentions.0.proj_attn.weight"));
  ASSERT_EQ(legacy.at("encoder.mid_block.attentions.0.query.weight").dim(), 4);

  auto vae = AutoencoderKL::from_dir(write(legacy));
  auto state = module_state(*vae);
  for (const auto& [name, t] : state) EXPECT_TRUE(torch::equal(t, weights.at(name))) << name;
  auto posterior = vae->encode(ex.at("image"));
  EXPECT_LE(test::rel_error(posterior.mean, ex.at("latent_mean")), 1e-5);
  EXPECT_LE(test::rel_error(vae->decode(ex.at("latent_mean")), ex.at("decoded")), 1e-5);
}

TEST_F(VaeLoading, LegacyAndCurrentNameForOneTensorIsAnError) {
  auto both = weights;
  both.emplace("decoder.mid_block.attentions.0.query.weight", weights.at("decoder.mid_block.attentions.0.to_q.weight"));
  auto msg = error_of([&] { AutoencoderKL::from_dir(write(both)); });
  EXPECT_TRUE(contains(msg, "decoder.mid_block.attentions.0.query.weight")) << msg;
}

// F16 and BF16 files load into float32 compute: parameters equal the file's values exactly, and
// the outputs stay within the rounding of the weights' dtype (measured: F16 ≈ 2e-3, BF16 ≈ 1.4e-2).
void check_low_precision(VaeLoading& t, torch::Dtype dtype, double tol) {
  auto vae = AutoencoderKL::from_dir(t.write(t.weights, dtype));
  for (const auto& [name, p] : module_state(*vae)) {
    EXPECT_EQ(p.scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::equal(p, t.weights.at(name).to(dtype).to(torch::kFloat32))) << name;
  }
  auto posterior = vae->encode(t.ex.at("image"));
  EXPECT_EQ(posterior.mean.scalar_type(), torch::kFloat32);
  const double mean_err = test::rel_error(posterior.mean, t.ex.at("latent_mean"));
  const double dec_err = test::rel_error(vae->decode(t.ex.at("latent_mean")), t.ex.at("decoded"));
  EXPECT_LE(mean_err, tol);
  EXPECT_LE(dec_err, tol);
  EXPECT_GT(mean_err, 0.0);  // the weights really were rounded
}

TEST_F(VaeLoading, Float16Weights) { check_low_precision(*this, torch::kFloat16, 5e-3); }
TEST_F(VaeLoading, BFloat16Weights) { check_low_precision(*this, torch::kBFloat16, 4e-2); }

TEST_F(VaeLoading, Fp16VariantFileName) {
  NamedTensors named(weights.begin(), weights.end());
  save_tensors(tmp.file("diffusion_pytorch_model.fp16.safetensors"), named, {}, torch::kFloat16);
  test::write_text(tmp.file("config.json"), config);
  auto vae = AutoencoderKL::from_dir(tmp.path.string(), {.part = VaePart::Decoder});
  EXPECT_LE(test::rel_error(vae->decode(ex.at("latent_mean")), ex.at("decoded")), 5e-3);
}

TEST_F(VaeLoading, MissingTensorIsNamed) {
  auto w = weights;
  w.erase("decoder.up_blocks.1.resnets.2.conv2.bias");
  auto msg = error_of([&] { AutoencoderKL::from_dir(write(w)); });
  EXPECT_TRUE(contains(msg, "missing tensor 'decoder.up_blocks.1.resnets.2.conv2.bias'")) << msg;
  EXPECT_TRUE(contains(msg, "diffusion_pytorch_model.safetensors")) << msg;
}

TEST_F(VaeLoading, WrongShapeIsNamed) {
  auto w = weights;
  w["post_quant_conv.weight"] = torch::zeros({4, 4});
  auto msg = error_of([&] { AutoencoderKL::from_dir(write(w)); });
  EXPECT_TRUE(contains(msg, "'post_quant_conv.weight' has shape [4, 4], expected [4, 4, 1, 1]")) << msg;
}

TEST_F(VaeLoading, TensorTheConfigLacksIsNamed) {
  // The config says no quant convs; the file has them.
  auto cfg = VaeConfig::from_json(config);
  cfg.use_quant_conv = false;
  auto msg = error_of([&] { AutoencoderKL::from_dir(write(weights, std::nullopt, cfg.to_json())); });
  EXPECT_TRUE(contains(msg, "unexpected 2 tensors 'quant_conv.")) << msg;
}

TEST_F(VaeLoading, DecoderOnlyDoesNotReadTheEncoder) {
  auto w = weights;
  w["encoder.conv_in.weight"] = torch::zeros({1});  // broken encoder, intact decoder
  w.erase("quant_conv.bias");
  const auto dir = write(w);
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Decoder});
  EXPECT_LE(test::rel_error(vae->decode(ex.at("latent_mean")), ex.at("decoded")), 1e-5);
  auto msg = error_of([&] { AutoencoderKL::from_dir(dir); });
  EXPECT_TRUE(contains(msg, "encoder.conv_in.weight")) << msg;
}

TEST_F(VaeLoading, EncoderOnlyDoesNotReadTheDecoder) {
  auto w = weights;
  w["decoder.conv_in.weight"] = torch::zeros({1});  // broken decoder, intact encoder
  w.erase("post_quant_conv.bias");
  const auto dir = write(w);
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Encoder});
  EXPECT_LE(test::rel_error(vae->encode(ex.at("image")).mean, ex.at("latent_mean")), 1e-5);
  auto msg = error_of([&] { AutoencoderKL::from_dir(dir); });
  EXPECT_TRUE(contains(msg, "decoder.conv_in.weight")) << msg;
}

TEST_F(VaeLoading, MissingOrCorruptConfigIsNamed) {
  const auto dir = write(weights);
  test::write_text(tmp.file("config.json"), "{\"block_out_channels\": [32, 32,");
  auto msg = error_of([&] { AutoencoderKL::from_dir(dir); });
  EXPECT_TRUE(contains(msg, tmp.file("config.json"))) << msg;
  EXPECT_TRUE(contains(msg, "JSON")) << msg;

  std::filesystem::remove(tmp.file("config.json"));
  msg = error_of([&] { AutoencoderKL::from_dir(dir); });
  EXPECT_TRUE(contains(msg, tmp.file("config.json"))) << msg;
  EXPECT_TRUE(contains(msg, "not found")) << msg;
}

TEST_F(VaeLoading, MissingWeightsOrFolderIsNamed) {
  test::write_text(tmp.file("config.json"), config);
  auto msg = error_of([&] { AutoencoderKL::from_dir(tmp.path.string()); });
  EXPECT_TRUE(contains(msg, tmp.file("diffusion_pytorch_model.safetensors"))) << msg;
  msg = error_of([&] { AutoencoderKL::from_dir(tmp.file("nowhere")); });
  EXPECT_TRUE(contains(msg, "VAE folder not found: " + tmp.file("nowhere"))) << msg;
}

TEST_F(VaeLoading, ConfigAndFileDisagreeOnWidths) {
  auto cfg = VaeConfig::from_json(config);
  cfg.block_out_channels = {32, 64, 64};
  auto msg = error_of([&] { AutoencoderKL::from_dir(write(weights, std::nullopt, cfg.to_json())); });
  EXPECT_TRUE(contains(msg, "has shape")) << msg;
  EXPECT_TRUE(contains(msg, "encoder.down_blocks.1.")) << msg;
}

TEST_F(VaeLoading, BadInputShapesAreErrors) {
  auto vae = AutoencoderKL::from_dir(write(weights));
  auto msg = error_of([&] { vae->encode(torch::zeros({1, 3, 30, 32})); });
  EXPECT_TRUE(contains(msg, "multiples of 4")) << msg;
  msg = error_of([&] { vae->encode(torch::zeros({1, 4, 32, 32})); });
  EXPECT_TRUE(contains(msg, "[1, 4, 32, 32]")) << msg;
  msg = error_of([&] { vae->decode(torch::zeros({1, 16, 8, 8})); });
  EXPECT_TRUE(contains(msg, "[B,4,h,w]")) << msg;
}

// ---------------------------------------------------------------------------------------------
// Config validation: each error names its field.
// ---------------------------------------------------------------------------------------------
void expect_config_error(const std::string& json, const std::string& part) {
  const auto msg = error_of([&] { VaeConfig::from_json(json); });
  EXPECT_TRUE(contains(msg, part)) << "config " << json << "\n  gave error: " << msg << "\n  expected: " << part;
}

TEST(VaeConfigJson, DefaultsAreDiffusers) {
  auto c = VaeConfig::from_json("{}");
  EXPECT_EQ(c.block_out_channels, (std::vector<int64_t>{64}));
  EXPECT_EQ(c.layers_per_block, 1);
  EXPECT_EQ(c.latent_channels, 4);
  EXPECT_EQ(c.norm_num_groups, 32);
  EXPECT_TRUE(c.use_quant_conv);
  EXPECT_TRUE(c.use_post_quant_conv);
  EXPECT_TRUE(c.mid_block_add_attention);
  EXPECT_DOUBLE_EQ(c.scaling_factor, 0.18215);
  EXPECT_DOUBLE_EQ(c.shift_factor, 0.0);
  EXPECT_EQ(c.downscale_factor(), 1);
}

TEST(VaeConfigJson, ErrorsNameTheField) {
  expect_config_error(R"({"act_fn": "gelu"})", "act_fn 'gelu'");
  expect_config_error(R"({"act_fn": 3})", "act_fn");
  expect_config_error(R"({"block_out_channels": [64, 80], "norm_num_groups": 32,
      "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"]})",
                      "block_out_channels[1] = 80 is not divisible by norm_num_groups = 32");
  expect_config_error(R"({"block_out_channels": []})", "block_out_channels");
  expect_config_error(R"({"block_out_channels": [64, "x"]})", "block_out_channels");
  expect_config_error(R"({"down_block_types": ["DownBlock2D"]})",
                      "down_block_types[0] is 'DownBlock2D'; only DownEncoderBlock2D");
  expect_config_error(R"({"up_block_types": ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"],
      "block_out_channels": [64, 64]})",
                      "up_block_types[1] is 'AttnUpDecoderBlock2D'");
  expect_config_error(R"({"block_out_channels": [64, 64], "down_block_types": ["DownEncoderBlock2D"]})",
                      "down_block_types has 1 entries but block_out_channels has 2");
  expect_config_error(R"({"layers_per_block": 0})", "layers_per_block");
  expect_config_error(R"({"layers_per_block": 1.5})", "layers_per_block must be an integer");
  expect_config_error(R"({"latent_channels": -1})", "latent_channels");
  expect_config_error(R"({"norm_num_groups": 0})", "norm_num_groups");
  expect_config_error(R"({"use_quant_conv": "yes"})", "use_quant_conv must be true or false");
  expect_config_error(R"({"mid_block_add_attention": 1})", "mid_block_add_attention");
  expect_config_error(R"({"scaling_factor": null})", "scaling_factor must be a number");
  expect_config_error(R"({"scaling_factor": 0})", "scaling_factor");
  expect_config_error(R"({"shift_factor": "0.1"})", "shift_factor must be a number");
  expect_config_error(R"({"_class_name": "AutoencoderTiny"})", "_class_name");
  expect_config_error("[1, 2]", "not a JSON object");
  expect_config_error("{", "VAE config: invalid JSON");
}

TEST(VaeConfigJson, NullShiftIsZeroAndUnusedFieldsAreIgnored) {
  auto c = VaeConfig::from_json(
      R"({"shift_factor": null, "sample_size": 1024, "force_upcast": true, "latents_mean": null, "_diffusers_version": "0.30.0"})");
  EXPECT_DOUBLE_EQ(c.shift_factor, 0.0);
}

TEST(VaeConfigJson, DisableMidBlockAttention) {
  auto c = VaeConfig::from_json(
      R"({"block_out_channels": [32, 32], "norm_num_groups": 8, "latent_channels": 4, "mid_block_add_attention": false})");
  AutoencoderKL vae(c);
  for (const auto& [name, t] : module_state(*vae)) EXPECT_FALSE(contains(name, "attentions")) << name;
  auto posterior = vae->encode(torch::zeros({1, 3, 8, 8}));
  EXPECT_EQ(posterior.mean.sizes(), (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_EQ(vae->decode(posterior.mean).sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
}

TEST(VaePosteriorSample, SeededAndScaledByStd) {
  VaePosterior p;
  p.mean = torch::linspace(-1, 1, 2 * 4 * 3 * 3).reshape({2, 4, 3, 3});
  p.logvar = torch::full({2, 4, 3, 3}, std::log(0.25));  // std 0.5
  auto a = p.sample(make_generator(7)), b = p.sample(make_generator(7)), c = p.sample(make_generator(8));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  auto eps = torch::randn({2, 4, 3, 3}, make_generator(7));  // the draw the seed gives
  EXPECT_LE(test::rel_error(a, p.mean + 0.5 * eps), 1e-6);
  if (torch::cuda::is_available()) {  // the same seed gives the same sample on the GPU
    VaePosterior g{p.mean.cuda(), p.logvar.cuda()};
    auto on_gpu = g.sample(make_generator(7));
    EXPECT_TRUE(on_gpu.is_cuda());
    EXPECT_LE(test::rel_error(on_gpu.cpu(), a), 1e-6);
  }
}

TEST(VaeConfigJson, FileErrorsNameThePath) {
  test::TempDir tmp;
  test::write_text(tmp.file("config.json"), R"({"act_fn": "relu"})");
  auto msg = error_of([&] { VaeConfig::from_file(tmp.file("config.json")); });
  EXPECT_TRUE(contains(msg, tmp.file("config.json") + ": invalid VAE config: act_fn 'relu'")) << msg;
}

TEST(VaeAttention, ChunkedEqualsWhole) {
  torch::manual_seed(0);
  auto q = torch::randn({2, 37, 8}), k = torch::randn({2, 37, 8}), v = torch::randn({2, 37, 8});
  auto whole = vae::chunked_attention(q, k, v, 0.3);
  auto chunked = vae::chunked_attention(q, k, v, 0.3, /*max_score_elements=*/2 * 37 * 5);  // 5 rows a block
  EXPECT_LE(test::rel_error(chunked, whole), 1e-6);
  auto ref = torch::softmax(torch::bmm(q, k.transpose(1, 2)) * 0.3, -1).bmm(v);
  EXPECT_LE(test::rel_error(whole, ref), 1e-6);
}

}  // namespace
}  // namespace luminars

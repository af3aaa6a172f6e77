// The trainable CLIP (src/text/clip_model.h, clip_vision_model.h): Hugging Face CLIPModel's tensor
// names and shapes, its files (round trip, text_encoder/ folder), the vision forward against a
// hand-written formula, gradients (every parameter; finite differences in float64), the
// contrastive loss and retrieval metrics against direct computations, a short training run that
// reaches 100% retrieval, CLIP scores and `luminars score`.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "core/module_state.h"
#include "core/threads.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "text/clip_loss.h"
#include "text/clip_model.h"
#include "text/clip_score.h"
#include "text/clip_tokenizer.h"
#include "text/text_encoder.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Shape = std::vector<int64_t>;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
// A small CLIP: text width 32 (2 layers, 2 heads), vision width 24 on 16×16 images in 4×4 patches
// (2 layers, 2 heads), projection 12. `vocab` 49408 fits the published tokenizer (EOS 49407).
ClipConfig tiny_config(int64_t vocab = 512, int64_t max_positions = 8) {
  ClipConfig c;
  c.text.vocab_size = vocab;
  c.text.hidden_size = 32;
  c.text.intermediate_size = 37;
  c.text.num_hidden_layers = 2;
  c.text.num_attention_heads = 2;
  c.text.max_position_embeddings = max_positions;
  c.text.bos_token_id = vocab - 2;
  c.text.eos_token_id = vocab - 1;  // the project's tokenizers: EOS = last id, pad = EOS
  c.text.pad_token_id = vocab - 1;
  c.vision.hidden_size = 24;
  c.vision.intermediate_size = 40;
  c.vision.num_hidden_layers = 2;
  c.vision.num_attention_heads = 2;
  c.vision.image_size = 16;
  c.vision.patch_size = 4;
  c.projection_dim = 12;
  return c;
}

ClipModel make_model(const ClipConfig& c, uint64_t seed = 0, torch::Dtype dtype = torch::kFloat32) {
  ClipModel m(c, torch::TensorOptions().dtype(dtype));
  m->init_weights(seed);
  return m;
}

// Token rows [bos, words..., eos, pad...] of length L for a vocabulary of `vocab` ids.
torch::Tensor token_rows(const std::vector<std::vector<int64_t>>& words, int64_t vocab, int64_t L) {
  auto ids = torch::full({static_cast<int64_t>(words.size()), L}, vocab - 1, torch::kInt64);
  for (std::size_t b = 0; b < words.size(); ++b) {
    ids[b][0] = vocab - 2;
    for (std::size_t i = 0; i < words[b].size(); ++i) ids[b][i + 1] = words[b][i];
  }
  return ids;
}

// The six colours of the toy retrieval task, in [-1,1].
const float kColours[6][3] = {{1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}, {1, 1, -1}, {-1, 1, 1}, {1, -1, 1}};
const char* kColourNames[6] = {"red", "green", "blue", "yellow", "cyan", "magenta"};

// [6,3,S,S] in [-1,1]: a coloured S/2 square centred on grey.
torch::Tensor coloured_squares(int64_t S) {
  auto x = torch::zeros({6, 3, S, S});
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t ch = 0; ch < 3; ++ch) x[i][ch].narrow(0, S / 4, S / 2).narrow(1, S / 4, S / 2).fill_(kColours[i][ch]);
  return x;
}

Image to_image(const torch::Tensor& chw) {  // [3,H,W] in [-1,1] -> 8-bit
  auto u8 = ((chw.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image im;
  im.height = static_cast<int>(chw.size(1));
  im.width = static_cast<int>(chw.size(2));
  im.rgb.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return im;
}

std::map<std::string, torch::Tensor> state_map(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : module_state(m)) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layout and files
// ---------------------------------------------------------------------------------------------
// Hugging Face CLIPModel's state dict (modeling_clip.py: CLIPModel, CLIPTextTransformer,
// CLIPVisionTransformer, CLIPVisionEmbeddings, CLIPEncoderLayer), written out by hand; the
// position_ids buffers are non-persistent there and absent here.
std::map<std::string, Shape> hf_clip_state_dict(const ClipConfig& c) {
  std::map<std::string, Shape> s;
  const int64_t P = c.projection_dim;
  auto layers = [&](const std::string& prefix, int64_t n, int64_t D, int64_t I) {
    for (int64_t i = 0; i < n; ++i) {
      const std::string l = prefix + ".encoder.layers." + std::to_string(i) + ".";
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        s[l + "self_attn." + proj + ".weight"] = {D, D};
        s[l + "self_attn." + proj + ".bias"] = {D};
      }
      for (const char* ln : {"layer_norm1", "layer_norm2"}) {
        s[l + ln + ".weight"] = {D};
        s[l + ln + ".bias"] = {D};
      }
      s[l + "mlp.fc1.weight"] = {I, D};
      s[l + "mlp.fc1.bias"] = {I};
      s[l + "mlp.fc2.weight"] = {D, I};
      s[l + "mlp.fc2.bias"] = {D};
    }
  };
  const auto& t = c.text;
  s["text_model.embeddings.token_embedding.weight"] = {t.vocab_size, t.hidden_size};
  s["text_model.embeddings.position_embedding.weight"] = {t.max_position_embeddings, t.hidden_size};
  layers("text_model", t.num_hidden_layers, t.hidden_size, t.intermediate_size);
  s["text_model.final_layer_norm.weight"] = {t.hidden_size};
  s["text_model.final_layer_norm.bias"] = {t.hidden_size};
  const auto& v = c.vision;
  const int64_t patches = (v.image_size / v.patch_size) * (v.image_size / v.patch_size);
  s["vision_model.embeddings.class_embedding"] = {v.hidden_size};
  s["vision_model.embeddings.patch_embedding.weight"] = {v.hidden_size, v.num_channels, v.patch_size, v.patch_size};
  s["vision_model.embeddings.position_embedding.weight"] = {patches + 1, v.hidden_size};
  s["vision_model.pre_layrnorm.weight"] = {v.hidden_size};
  s["vision_model.pre_layrnorm.bias"] = {v.hidden_size};
  layers("vision_model", v.num_hidden_layers, v.hidden_size, v.intermediate_size);
  s["vision_model.post_layernorm.weight"] = {v.hidden_size};
  s["vision_model.post_layernorm.bias"] = {v.hidden_size};
  s["visual_projection.weight"] = {P, v.hidden_size};
  s["text_projection.weight"] = {P, t.hidden_size};
  s["logit_scale"] = {};
  return s;
}

TEST(ClipModel, StateDictHasHuggingFaceNamesAndShapes) {
  const auto config = tiny_config();
  ClipModel model(config);
  std::map<std::string, Shape> ours;
  for (const auto& [name, t] : module_state(*model)) {
    EXPECT_FALSE(ours.count(name)) << "duplicate " << name;
    ours[name] = t.sizes().vec();
  }
  const auto expected = hf_clip_state_dict(config);
  EXPECT_EQ(ours.size(), expected.size());
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(ours.count(name)) << "missing " << name;
    EXPECT_EQ(ours[name], shape) << name;
  }
  for (const auto& [name, shape] : ours) EXPECT_TRUE(expected.count(name)) << "unexpected " << name;
  EXPECT_EQ(model->logit_scale.dim(), 0);
  // Frozen until asked; every parameter trainable after set_trainable.
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
  model->set_trainable();
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(ClipModel, InitWeightsFollowsHuggingFace) {
  auto config = tiny_config();
  config.text.hidden_size = config.vision.hidden_size = 256;  // enough samples for the stds
  config.text.intermediate_size = config.vision.intermediate_size = 512;
  config.vision.image_size = 64;
  config.vision.patch_size = 4;
  config.projection_dim = 128;
  auto model = make_model(config, /*seed=*/3);
  auto s = state_map(*model);
  auto expect_std = [&](const std::string& name, double std) {  // within 4 standard errors
    const double n = static_cast<double>(s.at(name).numel());
    EXPECT_NEAR(s.at(name).std().item<double>(), std, 4.0 * std / std::sqrt(2.0 * n)) << name;
    EXPECT_NEAR(s.at(name).mean().item<double>(), 0.0, 4.0 * std / std::sqrt(n)) << name;
  };
  const double D = 256, L = 2;
  expect_std("text_model.embeddings.token_embedding.weight", 0.02);
  expect_std("vision_model.embeddings.class_embedding", std::pow(D, -0.5));
  expect_std("vision_model.embeddings.patch_embedding.weight", 0.02);
  expect_std("vision_model.embeddings.position_embedding.weight", 0.02);
  for (const std::string tower : {"text_model", "vision_model"}) {
    const std::string l = tower + ".encoder.layers.1.";
    expect_std(l + "self_attn.q_proj.weight", std::pow(D, -0.5) * std::pow(2 * L, -0.5));
    expect_std(l + "self_attn.out_proj.weight", std::pow(D, -0.5));
    expect_std(l + "mlp.fc1.weight", std::pow(2 * D, -0.5));
    expect_std(l + "mlp.fc2.weight", std::pow(D, -0.5) * std::pow(2 * L, -0.5));
    EXPECT_TRUE(torch::equal(s.at(l + "mlp.fc1.bias"), torch::zeros({512})));
    EXPECT_TRUE(torch::equal(s.at(l + "layer_norm2.weight"), torch::ones({256})));
  }
  expect_std("visual_projection.weight", std::pow(D, -0.5));
  expect_std("text_projection.weight", std::pow(D, -0.5));
  EXPECT_TRUE(torch::equal(s.at("vision_model.pre_layrnorm.weight"), torch::ones({256})));
  EXPECT_FLOAT_EQ(model->logit_scale.item<float>(), 2.6592f);
  // Seeded: the same seed gives the same weights, another seed others.
  auto again = state_map(*make_model(config, 3));
  auto other = state_map(*make_model(config, 4));
  EXPECT_TRUE(torch::equal(again.at("vision_model.encoder.layers.0.mlp.fc1.weight"),
                           s.at("vision_model.encoder.layers.0.mlp.fc1.weight")));
  EXPECT_FALSE(torch::equal(other.at("text_model.encoder.layers.0.mlp.fc1.weight"),
                            s.at("text_model.encoder.layers.0.mlp.fc1.weight")));
}

TEST(ClipModel, ConfigJsonIsHuggingFaceClipConfig) {
  auto config = tiny_config();
  config.text.hidden_act = "gelu";
  config.vision.layer_norm_eps = 1e-6;
  config.logit_scale_init_value = 2.0;
  const json j = json::parse(config.to_json());
  EXPECT_EQ(j["architectures"], json({"CLIPModel"}));
  EXPECT_EQ(j["model_type"], "clip");
  EXPECT_EQ(j["projection_dim"], 12);
  EXPECT_EQ(j["text_config"]["model_type"], "clip_text_model");
  EXPECT_EQ(j["text_config"]["eos_token_id"], 511);
  EXPECT_EQ(j["text_config"]["projection_dim"], 12);
  EXPECT_EQ(j["vision_config"]["model_type"], "clip_vision_model");
  EXPECT_EQ(j["vision_config"]["patch_size"], 4);
  EXPECT_EQ(j["vision_config"]["image_size"], 16);
  auto back = ClipConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  EXPECT_EQ(back.text.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(back.vision.layer_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(back.logit_scale_init_value, 2.0);
  // HF defaults fill what a config leaves out.
  auto minimal = ClipConfig::from_json(R"({"text_config": {}, "vision_config": {}})");
  EXPECT_EQ(minimal.vision.image_size, 224);
  EXPECT_EQ(minimal.vision.patch_size, 32);
  EXPECT_EQ(minimal.projection_dim, 512);
  EXPECT_EQ(minimal.text.hidden_size, 512);
  // Errors name the field.
  auto error_for = [](const std::string& text) { return test::error_of([&] { ClipConfig::from_json(text, "c.json"); }); };
  std::string msg = error_for(R"({"text_config": {}, "vision_config": {"image_size": 16, "patch_size": 5}})");
  EXPECT_NE(msg.find("patch_size 5 must divide image_size 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("c.json"), std::string::npos) << msg;
  msg = error_for(R"({"text_config": {}})");
  EXPECT_NE(msg.find("'vision_config'"), std::string::npos) << msg;
  msg = error_for(R"({"text_config": {"hidden_size": 30}, "vision_config": {}})");
  EXPECT_NE(msg.find("num_attention_heads 8 must divide hidden_size 30"), std::string::npos) << msg;
  msg = error_for(R"({"model_type": "siglip", "text_config": {}, "vision_config": {}})");
  EXPECT_NE(msg.find("model_type \"siglip\""), std::string::npos) << msg;
  msg = error_for(R"({"text_config": {}, "vision_config": {"hidden_act": "relu6"}})");
  EXPECT_NE(msg.find("hidden_act 'relu6' is not supported"), std::string::npos) << msg;
  msg = error_for(R"({"text_config": {}, "vision_config": {}, "projection_dim": 0})");
  EXPECT_NE(msg.find("projection_dim must be positive"), std::string::npos) << msg;
}

TEST(ClipModel, SaveLoadRoundTripIsBitExact) {
  const auto config = tiny_config();
  auto model = make_model(config, 7);
  {
    torch::NoGradGuard no_grad;
    model->logit_scale.fill_(3.25);  // not the init value: the file's value must come back
  }
  test::TempDir tmp;
  const std::string dir = tmp.file("clip");
  save_clip_model(dir, model);
  for (const char* f : {"config.json", "model.safetensors", "preprocessor_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  auto loaded = load_clip_model(dir);
  EXPECT_EQ(loaded->config().to_json(), model->config().to_json());
  auto a = state_map(*model), b = state_map(*loaded);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(b[name].scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::equal(t, b[name])) << name;
  }
  // The file holds exactly the state dict, in float32.
  auto file = load_tensors((fs::path(dir) / "model.safetensors").string());
  EXPECT_EQ(file.size(), a.size());
  EXPECT_EQ(file.at("logit_scale").dim(), 0);
  EXPECT_EQ(file.at("vision_model.pre_layrnorm.bias").scalar_type(), torch::kFloat32);
  // Same outputs.
  torch::NoGradGuard no_grad;
  auto ids = token_rows({{5, 6, 7}, {8}}, 512, 8);
  auto pixels = torch::randn({2, 3, 16, 16});
  EXPECT_TRUE(torch::equal(model->encode_text(ids), loaded->encode_text(ids)));
  EXPECT_TRUE(torch::equal(model->encode_image(pixels), loaded->encode_image(pixels)));
  // The legacy position_ids buffers of older transformers files are accepted.
  auto tensors = load_tensors((fs::path(dir) / "model.safetensors").string());
  NamedTensors named(tensors.begin(), tensors.end());
  named.emplace_back("text_model.embeddings.position_ids", torch::arange(8).unsqueeze(0));
  named.emplace_back("vision_model.embeddings.position_ids", torch::arange(17).unsqueeze(0));
  save_tensors((fs::path(dir) / "model.safetensors").string(), named);
  EXPECT_TRUE(torch::equal(load_clip_model(dir)->encode_text(ids), model->encode_text(ids)));
  // A wrong tensor is named.
  named.emplace_back("vision_model.extra", torch::zeros({1}));
  save_tensors((fs::path(dir) / "model.safetensors").string(), named);
  auto msg = test::error_of([&] { load_clip_model(dir); });
  EXPECT_NE(msg.find("unexpected tensor 'vision_model.extra'"), std::string::npos) << msg;
  msg = test::error_of([&] { load_clip_model(tmp.file("nothing")); });
  EXPECT_NE(msg.find("nothing"), std::string::npos) << msg;
}

TEST(ClipModel, PreprocessorConfigAndPixels) {
  test::TempDir tmp;
  ClipImageProcessorConfig p;
  p.image_size = 16;
  test::write_text(tmp.file("preprocessor_config.json"), p.to_json());
  const json j = json::parse(read_file(tmp.file("preprocessor_config.json")));
  EXPECT_EQ(j["image_processor_type"], "CLIPImageProcessor");
  EXPECT_EQ(j["crop_size"]["height"], 16);
  EXPECT_EQ(j["size"]["shortest_edge"], 16);
  EXPECT_EQ(j["do_normalize"], true);
  EXPECT_NEAR(j["image_mean"][0].get<double>(), 0.48145466, 1e-12);
  EXPECT_NEAR(j["image_std"][2].get<double>(), 0.27577711, 1e-12);
  auto back = ClipImageProcessorConfig::from_file(tmp.file("preprocessor_config.json"));
  EXPECT_EQ(back.image_size, 16);
  EXPECT_EQ(back.image_mean, p.image_mean);
  EXPECT_EQ(back.image_std, p.image_std);

  // A uniform image: the normalised value of its [0,1] colour, at the requested size.
  auto grey = torch::full({2, 3, 40, 40}, 0.2);  // 0.6 in [0,1]
  auto px = clip_pixels(grey, 16);
  ASSERT_EQ(px.sizes(), (torch::IntArrayRef{2, 3, 16, 16}));
  for (int ch = 0; ch < 3; ++ch)
    EXPECT_NEAR(px[1][ch][5][7].item<double>(), (0.6 - p.image_mean[ch]) / p.image_std[ch], 1e-5);
  // Non-square: the centred square is kept (left and right thirds dropped).
  auto wide = torch::full({1, 3, 16, 48}, -1.0);
  wide.narrow(3, 16, 16).fill_(1.0);
  auto sq = clip_resize(wide, 16);
  ASSERT_EQ(sq.sizes(), (torch::IntArrayRef{1, 3, 16, 16}));
  EXPECT_TRUE(torch::allclose(sq, torch::ones_like(sq)));
  // Already at size: unchanged.
  auto same = torch::rand({1, 3, 16, 16}) * 2 - 1;
  EXPECT_TRUE(torch::equal(clip_resize(same, 16), same));
  // Downscaling 4× filters (antialias): columns +1 +1 +1 -1 repeating average to 0.5, where plain
  // bilinear sampling (between columns 4i+1 and 4i+2) would give 1.
  auto stripes = torch::tensor({1.0f, 1.0f, 1.0f, -1.0f}).repeat({8}).view({1, 1, 1, 32}).expand({1, 3, 32, 32});
  auto down = clip_resize(stripes, 8);
  EXPECT_NEAR(down[0][1][4][3].item<double>(), 0.5, 1e-5);
  EXPECT_NEAR(down.narrow(3, 1, 6).mean().item<double>(), 0.5, 1e-5);
}

TEST(ClipModel, TextEncoderFolderReadsAsClipTextModel) {
  const auto config = tiny_config(49408, 77);
  auto model = make_model(config, 11);
  test::TempDir tmp;
  save_clip_text_encoder(tmp.file("text_encoder"), model);
  const json j = json::parse(read_file(tmp.file("text_encoder/config.json")));
  EXPECT_EQ(j["architectures"], json({"CLIPTextModelWithProjection"}));
  EXPECT_EQ(j["model_type"], "clip_text_model");
  auto text = load_clip_text_model(tmp.file("text_encoder"));
  EXPECT_TRUE(text->config().with_projection);
  EXPECT_EQ(text->config().projection_dim, 12);
  EXPECT_EQ(text->config().eos_token_id, 49407);
  auto file = load_tensors(tmp.file("text_encoder/model.safetensors"));
  for (const auto& [name, t] : file)
    EXPECT_TRUE(name.rfind("text_model.", 0) == 0 || name == "text_projection.weight") << name;
  EXPECT_EQ(file.size(), module_state(*text).size());
  torch::NoGradGuard no_grad;
  auto ids = token_rows({{320, 1125, 2368}, {1125}, {}}, 49408, 77);
  auto a = model->text->forward(ids);
  auto b = text->forward(ids);
  EXPECT_TRUE(torch::equal(a.pooler_output, b.pooler_output));
  EXPECT_TRUE(torch::equal(a.text_embeds, b.text_embeds));
  EXPECT_TRUE(torch::equal(model->encode_text(ids), b.text_embeds));
  // Pooled at the first EOS (pad = EOS): row 1's EOS is at position 2.
  EXPECT_TRUE(torch::equal(b.pooler_output[1], b.last_hidden_state[1][2]));
  // And through TextEncoder with the published tokenizer.
  if (test::fixtures_dir().empty()) return;
  auto encoder = TextEncoder::load(tmp.file("text_encoder"), test::fixtures_dir() + "/clip_tokenizer");
  auto tokenizer = ClipTokenizer::from_dir(test::fixtures_dir() + "/clip_tokenizer");
  const std::vector<std::string> prompts{"a red square", "a photo of a cat"};
  EXPECT_TRUE(torch::equal(encoder.encode_all(prompts).text_embeds,
                           model->encode_text(model->tokenize(tokenizer, prompts))));
}

TEST(ClipModel, TokenizeFitsThePositionTable) {
  LUMINARS_REQUIRE_FIXTURES();
  auto tokenizer = ClipTokenizer::from_dir(test::fixtures_dir() + "/clip_tokenizer");
  ClipModel model(tiny_config(49408, 6));
  auto ids = model->tokenize(tokenizer, {"a b c d e f g h", "cat"});
  ASSERT_EQ(ids.sizes(), (torch::IntArrayRef{2, 6}));
  EXPECT_EQ(ids[0][0].item<int64_t>(), 49406);
  EXPECT_EQ(ids[0][5].item<int64_t>(), 49407);  // truncated, EOS kept last
  EXPECT_EQ(ids[1][2].item<int64_t>(), 49407);
  EXPECT_EQ(ids[1][5].item<int64_t>(), tokenizer.pad_id);
  auto full = ClipModel(tiny_config(49408, 77))->tokenize(tokenizer, {"cat"});
  EXPECT_TRUE(torch::equal(full, encode_batch(tokenizer, {"cat"})));
  auto msg = test::error_of([&] { ClipModel(tiny_config(512, 8))->tokenize(tokenizer, {"cat"}); });
  EXPECT_NE(msg.find("EOS id 49407 is not text_config.eos_token_id 511"), std::string::npos) << msg;
  // The tokenizer folder: the CLIP folder itself, else ../tokenizer.
  test::TempDir tmp;
  fs::create_directories(tmp.path / "clip");
  fs::create_directories(tmp.path / "tokenizer");
  msg = test::error_of([&] { clip_tokenizer_dir(tmp.file("clip")); });
  EXPECT_NE(msg.find("no tokenizer"), std::string::npos) << msg;
  test::write_text(tmp.file("tokenizer/vocab.json"), "{}");
  EXPECT_EQ(fs::path(clip_tokenizer_dir(tmp.file("clip") + "/")), tmp.path / "tokenizer");
  test::write_text(tmp.file("clip/vocab.json"), "{}");
  EXPECT_EQ(fs::path(clip_tokenizer_dir(tmp.file("clip"))), tmp.path / "clip");
}

// ---------------------------------------------------------------------------------------------
// Forward and gradients
// ---------------------------------------------------------------------------------------------
// The vision tower of a 1-layer config written out with plain tensor ops in float64: patches by
// reshaping, LayerNorm from its definition, attention per head with an explicit softmax.
TEST(ClipModel, VisionForwardMatchesHandWrittenFormula) {
  ClipVisionConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.image_size = 12;
  c.patch_size = 4;
  c.projection_dim = 8;
  ClipVisionModel model(c);
  model->init_weights(5);
  {
    torch::NoGradGuard no_grad;  // non-trivial norms and biases
    for (auto& p : model->parameters())
      if (p.dim() == 1) p.add_(torch::randn(p.sizes()) * 0.3);
  }
  auto w = state_map(*model);
  auto W = [&](const std::string& name) { return w.at(name).to(torch::kFloat64); };
  const int64_t B = 2, C = 3, S = 12, p = 4, g = 3, N = 9, D = 16, H = 2, hd = 8;
  auto pixels = torch::randn({B, C, S, S}, torch::kFloat64);

  auto layer_norm = [](const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    auto mean = x.mean(-1, true);
    auto var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / (var + 1e-5).sqrt() * weight + bias;
  };
  auto linear = [](const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    auto y = torch::matmul(x, weight.t());
    return bias.defined() ? y + bias : y;
  };
  // Patches in row-major order, each flattened as (channel, row, column) like the conv weight.
  auto patches = pixels.view({B, C, g, p, g, p}).permute({0, 2, 4, 1, 3, 5}).reshape({B, N, C * p * p});
  auto emb = torch::matmul(patches, W("vision_model.embeddings.patch_embedding.weight").reshape({D, C * p * p}).t());
  auto x = torch::cat({W("vision_model.embeddings.class_embedding").view({1, 1, D}).expand({B, 1, D}), emb}, 1) +
           W("vision_model.embeddings.position_embedding.weight");
  x = layer_norm(x, W("vision_model.pre_layrnorm.weight"), W("vision_model.pre_layrnorm.bias"));
  const std::string l = "vision_model.encoder.layers.0.";
  auto h = layer_norm(x, W(l + "layer_norm1.weight"), W(l + "layer_norm1.bias"));
  auto proj = [&](const std::string& name) {
    return linear(h, W(l + "self_attn." + name + ".weight"), W(l + "self_attn." + name + ".bias"));
  };
  auto q = proj("q_proj"), k = proj("k_proj"), v = proj("v_proj");
  auto attn = torch::zeros({B, N + 1, D}, torch::kFloat64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t head = 0; head < H; ++head) {
      auto qh = q[b].narrow(1, head * hd, hd), kh = k[b].narrow(1, head * hd, hd), vh = v[b].narrow(1, head * hd, hd);
      auto scores = torch::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(hd));  // every token sees every token
      auto e = (scores - std::get<0>(scores.max(1, true))).exp();
      attn[b].narrow(1, head * hd, hd).copy_(torch::matmul(e / e.sum(1, true), vh));
    }
  x = x + linear(attn, W(l + "self_attn.out_proj.weight"), W(l + "self_attn.out_proj.bias"));
  auto m = linear(layer_norm(x, W(l + "layer_norm2.weight"), W(l + "layer_norm2.bias")), W(l + "mlp.fc1.weight"),
                  W(l + "mlp.fc1.bias"));
  m = m * torch::sigmoid(1.702 * m);  // quick_gelu
  x = x + linear(m, W(l + "mlp.fc2.weight"), W(l + "mlp.fc2.bias"));
  auto pooled = layer_norm(x.select(1, 0), W("vision_model.post_layernorm.weight"), W("vision_model.post_layernorm.bias"));
  auto embeds = linear(pooled, W("visual_projection.weight"), {});

  torch::NoGradGuard no_grad;
  auto out = model->forward(pixels.to(torch::kFloat32));
  EXPECT_LE(test::rel_error(out.last_hidden_state, x), 1e-5);
  EXPECT_LE(test::rel_error(out.pooler_output, pooled), 1e-5);
  EXPECT_LE(test::rel_error(out.image_embeds, embeds), 1e-5);
  // The wrong size is named.
  auto msg = test::error_of([&] { model->forward(torch::zeros({1, 3, 16, 16})); });
  EXPECT_NE(msg.find("image_size 12"), std::string::npos) << msg;
}

TEST(ClipModel, GradientsReachEveryParameter) {
  auto model = make_model(tiny_config(), 1);
  model->set_trainable();
  auto ids = token_rows({{5, 6}, {7}, {8, 9, 10}}, 512, 8);
  auto loss = clip_contrastive_loss(model->encode_image(torch::randn({3, 3, 16, 16})), model->encode_text(ids),
                                    model->logit_scale, torch::tensor({0, 0, 1}, torch::kInt64));
  loss.backward();
  for (const auto& [name, p] : module_state(*model)) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(p.grad().norm().item<double>(), 0.0) << name;
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << name;
  }
}

// Autograd through the Frozen* layers, the oneDNN pointwise products and the attention against
// central finite differences of the whole loss, in float64.
TEST(ClipModel, GradientsMatchFiniteDifferences) {
  torch::manual_seed(11);  // the inputs and directions below: the same whatever ran before
  auto model = make_model(tiny_config(), 2, torch::kFloat64);
  model->set_trainable();
  auto ids = token_rows({{5, 6}, {7}, {8, 9, 10}}, 512, 8);
  auto pixels = torch::randn({3, 3, 16, 16}, torch::kFloat64);
  auto image_ids = torch::tensor({0, 0, 1}, torch::kInt64);
  auto loss_fn = [&] {
    return clip_contrastive_loss(model->encode_image(pixels), model->encode_text(ids), model->logit_scale, image_ids);
  };
  loss_fn().backward();
  auto params = state_map(*model);
  for (const std::string name :
       {"text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
        "text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.encoder.layers.0.self_attn.v_proj.bias",
        "text_model.encoder.layers.1.mlp.fc1.weight", "text_model.encoder.layers.1.layer_norm2.weight",
        "text_model.final_layer_norm.bias", "text_projection.weight", "vision_model.embeddings.class_embedding",
        "vision_model.embeddings.patch_embedding.weight", "vision_model.pre_layrnorm.weight",
        "vision_model.encoder.layers.0.self_attn.k_proj.weight", "vision_model.encoder.layers.1.mlp.fc2.weight",
        "vision_model.post_layernorm.weight", "visual_projection.weight", "logit_scale"}) {
    auto& p = params.at(name);
    auto dir = torch::randn(p.sizes(), torch::kFloat64);
    const double analytic = (p.grad() * dir).sum().item<double>();
    const double eps = 1e-5;
    double plus, minus;
    {
      torch::NoGradGuard no_grad;
      p.add_(dir * eps);
      plus = loss_fn().item<double>();
      p.add_(dir * (-2 * eps));
      minus = loss_fn().item<double>();
      p.add_(dir * eps);
    }
    const double numeric = (plus - minus) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 1e-5 * std::max(1.0, std::abs(numeric))) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Loss and metrics
// ---------------------------------------------------------------------------------------------
// The loss from its definition, entry by entry in double precision.
double loss_by_hand(const torch::Tensor& img, const torch::Tensor& txt, double scale, const std::vector<int64_t>& id) {
  const int64_t N = img.size(0);
  auto I = img.to(torch::kFloat64), T = txt.to(torch::kFloat64);
  std::vector<std::vector<double>> logit(N, std::vector<double>(N));
  for (int64_t a = 0; a < N; ++a)
    for (int64_t b = 0; b < N; ++b)
      logit[a][b] = scale * (I[a] * T[b]).sum().item<double>() / (I[a].norm().item<double>() * T[b].norm().item<double>());
  double image_loss = 0, text_loss = 0;
  for (int64_t a = 0; a < N; ++a) {
    int64_t positives = 0;
    for (int64_t b = 0; b < N; ++b) positives += id[a] == id[b];
    double zi = 0, zt = 0;
    for (int64_t b = 0; b < N; ++b) {
      zi += std::exp(logit[a][b]);
      zt += std::exp(logit[b][a]);
    }
    for (int64_t b = 0; b < N; ++b)
      if (id[a] == id[b]) {
        image_loss -= std::log(std::exp(logit[a][b]) / zi) / positives;
        text_loss -= std::log(std::exp(logit[b][a]) / zt) / positives;
      }
  }
  return (image_loss + text_loss) / (2.0 * N);
}

TEST(ClipLoss, MatchesDirectComputation) {
  torch::manual_seed(0);
  auto img = torch::randn({3, 5}), txt = torch::randn({3, 5});
  auto scale = torch::tensor(std::log(10.0));
  // Distinct images: HF's clip_loss (cross-entropy against the diagonal, both ways).
  const double got = clip_contrastive_loss(img, txt, scale).item<double>();
  EXPECT_NEAR(got, loss_by_hand(img, txt, 10.0, {0, 1, 2}), 1e-5);
  auto logits = 10.0 * torch::matmul(img / img.norm(2, 1, true), (txt / txt.norm(2, 1, true)).t());
  namespace F = torch::nn::functional;
  const double hf = ((F::cross_entropy(logits, torch::arange(3)) + F::cross_entropy(logits.t(), torch::arange(3))) / 2)
                        .item<double>();
  EXPECT_NEAR(got, hf, 1e-5);
  EXPECT_NEAR(clip_contrastive_loss(img, txt, scale, torch::tensor({4, 9, 2}, torch::kInt64)).item<double>(), got, 1e-6);
  // Two captions of one image: both are positives for it.
  const double multi = clip_contrastive_loss(img, txt, scale, torch::tensor({0, 0, 1}, torch::kInt64)).item<double>();
  EXPECT_NEAR(multi, loss_by_hand(img, txt, 10.0, {0, 0, 1}), 1e-5);
  EXPECT_GT(std::abs(multi - got), 1e-3);
  // Rows 0 and 1 by hand: targets [1/2, 1/2, 0], [1/2, 1/2, 0], [0, 0, 1] in both directions.
  auto lp_i = logits.log_softmax(1), lp_t = logits.t().log_softmax(1);
  auto target = torch::tensor({0.5, 0.5, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0}).view({3, 3}).to(torch::kFloat32);
  const double direct = (-(target * lp_i).sum() / 3 - (target * lp_t).sum() / 3).item<double>() / 2;
  EXPECT_NEAR(multi, direct, 1e-5);
  // The scale is clamped at 100, as CLIP does.
  EXPECT_NEAR(clip_contrastive_loss(img, txt, torch::tensor(std::log(500.0))).item<double>(),
              loss_by_hand(img, txt, 100.0, {0, 1, 2}), 1e-4);
  // Perfectly aligned pairs with a large scale: loss near 0.
  auto eye = torch::eye(3);
  EXPECT_LT(clip_contrastive_loss(eye, eye, torch::tensor(std::log(100.0))).item<double>(), 1e-6);
  // Bad shapes are named.
  auto msg = test::error_of([&] { clip_contrastive_loss(img, txt.narrow(0, 0, 2), scale); });
  EXPECT_NE(msg.find("[3, 5]"), std::string::npos) << msg;
  msg = test::error_of([&] { clip_contrastive_loss(img, txt, scale, torch::zeros({2}, torch::kInt64)); });
  EXPECT_NE(msg.find("image_ids"), std::string::npos) << msg;
}

TEST(ClipLoss, RetrievalMetricsOnKnownEmbeddings) {
  // Images: the unit vectors e0..e3; image 3 has no caption.
  auto images = torch::eye(4);
  // Captions 0, 1 describe image 0, caption 2 image 1, caption 3 image 2.
  auto texts = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f,     // -> image 0 (right)
                              0.1f, 0.9f, 0.0f, 0.0f,     // -> image 1 (wrong)
                              0.0f, 0.2f, 1.0f, 0.0f,     // -> image 2 (wrong), image 1 second
                              0.0f, 0.0f, 1.0f, 0.0f})    // -> image 2 (right)
                   .view({4, 4});
  auto r = retrieval_metrics(images, texts, torch::tensor({0, 0, 1, 2}, torch::kInt64));
  EXPECT_EQ(r.images, 4);
  EXPECT_EQ(r.captions, 4);
  // Text -> image: captions 0 and 3 right at top 1; all four within the top 4 (k capped at N).
  EXPECT_DOUBLE_EQ(r.text_to_image_top1, 0.5);
  EXPECT_DOUBLE_EQ(r.text_to_image_top5, 1.0);
  // Image -> text over the three captioned images: image 0's best is caption 0 (its own), image 1's
  // caption 1 (image 0's), image 2's caption 3 (its own).
  EXPECT_DOUBLE_EQ(r.image_to_text_top1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.image_to_text_top5, 1.0);
  EXPECT_DOUBLE_EQ(r.chance_text_to_image_top1, 0.25);
  EXPECT_DOUBLE_EQ(r.chance_text_to_image_top5, 1.0);
  // Chance of a random caption being its own: 2/4, 1/4, 1/4.
  EXPECT_NEAR(r.chance_image_to_text_top1, (0.5 + 0.25 + 0.25) / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.chance_image_to_text_top5, 1.0);
  // Top 5 below 1 with more candidates: 8 images, caption c -> image c, texts ranked so image c is
  // 6th for caption 0 (the others first).
  auto many = torch::eye(8);
  auto t = torch::eye(8);
  t[0] = torch::tensor({0.1f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.0f, 0.0f});
  auto r8 = retrieval_metrics(many, t, torch::arange(8));
  EXPECT_DOUBLE_EQ(r8.text_to_image_top1, 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(r8.text_to_image_top5, 7.0 / 8.0);
  EXPECT_NEAR(r8.chance_text_to_image_top5, 5.0 / 8.0, 1e-12);
  EXPECT_NEAR(r8.chance_image_to_text_top5, 5.0 / 8.0, 1e-12);
  auto msg = test::error_of([&] { retrieval_metrics(images, texts, torch::tensor({0, 0, 1, 4}, torch::kInt64)); });
  EXPECT_NE(msg.find("outside [0, 4)"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------
// Six coloured squares, three caption variants each ("a red square", "red", "the red one" as
// made-up token ids): a few hundred AdamW steps from HF's init reach 100% top-1 both ways.
TEST(ClipModel, TrainsToPerfectRetrievalOnColouredSquares) {
  torch::manual_seed(0);
  const auto config = tiny_config();
  auto model = make_model(config, 42);
  model->set_trainable();
  const auto pixels = model->preprocess(coloured_squares(16));  // [6,3,16,16]
  std::vector<std::vector<int64_t>> words;
  std::vector<int64_t> caption_image;
  for (int64_t c = 0; c < 6; ++c) {
    for (const auto& w : std::vector<std::vector<int64_t>>{{20, 100 + c, 30}, {100 + c}, {40, 100 + c, 50}}) {
      words.push_back(w);
      caption_image.push_back(c);
    }
  }
  const auto ids = token_rows(words, 512, 8);  // [18,8]
  const auto image_of = torch::tensor(caption_image, torch::kInt64);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.01));
  auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  const int steps = 300;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    // Every caption paired with its image: repeated images are positives for each other's captions.
    auto loss = clip_contrastive_loss(model->encode_image(pixels.index({image_of})), model->encode_text(ids),
                                      model->logit_scale, image_of);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("train_seconds", std::to_string(seconds));
  RecordProperty("loss_first_last", std::to_string(first) + " " + std::to_string(last));
  model->eval();
  torch::NoGradGuard no_grad;
  auto r = retrieval_metrics(model->encode_image(pixels), model->encode_text(ids), image_of);
  EXPECT_DOUBLE_EQ(r.image_to_text_top1, 1.0);
  EXPECT_DOUBLE_EQ(r.text_to_image_top1, 1.0);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  EXPECT_NEAR(r.chance_text_to_image_top1, 1.0 / 6.0, 1e-12);
  EXPECT_NEAR(r.chance_image_to_text_top1, 3.0 / 18.0, 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Scores and `luminars score`
// ---------------------------------------------------------------------------------------------
TEST(ClipScore, ScoresAndPromptSwapAccuracy) {
  LUMINARS_REQUIRE_FIXTURES();
  auto tokenizer = ClipTokenizer::from_dir(test::fixtures_dir() + "/clip_tokenizer");
  auto model = make_model(tiny_config(49408, 77), 9);
  model->eval();
  auto images = coloured_squares(24).narrow(0, 0, 3);
  const std::vector<std::string> prompts{"a red square", "a green square", "a blue square"};
  auto s = clip_scores(model, tokenizer, images, prompts);
  ASSERT_EQ(s.scores.size(), 3u);
  torch::NoGradGuard no_grad;
  auto img = model->encode_image(model->preprocess(images));
  auto txt = model->encode_text(model->tokenize(tokenizer, prompts));
  auto cos = torch::matmul(img / img.norm(2, 1, true), (txt / txt.norm(2, 1, true)).t());  // [3,3]
  int64_t wins = 0;
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(s.scores[i], 100.0 * cos[i][i].item<double>(), 1e-4);
    EXPECT_EQ(s.best_prompt[i], cos[i].argmax().item<int64_t>());
    wins += cos[i].argmax().item<int64_t>() == i;
  }
  EXPECT_NEAR(s.mean_score, (s.scores[0] + s.scores[1] + s.scores[2]) / 3, 1e-9);
  EXPECT_DOUBLE_EQ(s.swap_accuracy, wins / 3.0);
  EXPECT_EQ(s.swap_images, 3);
  // Identical prompts are not rivals; with only one distinct prompt there is nothing to compare.
  auto same = clip_scores(model, tokenizer, images, {"x", "x", "x"});
  EXPECT_TRUE(std::isnan(same.swap_accuracy));
  EXPECT_EQ(same.swap_images, 0);
  auto msg = test::error_of([&] { clip_scores(model, tokenizer, images, {"a", "b"}); });
  EXPECT_NE(msg.find("3 images but 2 prompts"), std::string::npos) << msg;
}

TEST(ClipScore, CommandLine) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir tmp;
  const std::string tok = test::fixtures_dir() + "/clip_tokenizer";
  auto model = make_model(tiny_config(49408, 77), 13);
  save_clip_model(tmp.file("clip"), model, tok);
  EXPECT_TRUE(fs::exists(tmp.path / "clip" / "vocab.json"));
  EXPECT_TRUE(fs::exists(tmp.path / "clip" / "merges.txt"));
  auto squares = coloured_squares(32);
  std::string images;
  for (int i = 0; i < 3; ++i) {
    const std::string path = tmp.file(std::string(kColourNames[i]) + ".png");
    save_png(path, to_image(i == 2 ? squares[i].narrow(2, 0, 24) : squares[i]));  // one 24×32 (cropped) image
    images += " " + path;
  }
  const std::string prompts = " --prompts 'a red square' 'a green square' 'a blue square'";
  auto r = test::run_cli("score --clip " + tmp.file("clip") + " --images" + images + prompts + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["count"], 3);
  ASSERT_EQ(j["images"].size(), 3u);
  for (const auto& row : j["images"]) {
    EXPECT_TRUE(row.contains("image") && row.contains("prompt") && row.contains("best_prompt"));
    EXPECT_TRUE(row["clip_score"].is_number());
  }
  EXPECT_EQ(j["images"][1]["prompt"], "a green square");
  EXPECT_TRUE(j["mean_clip_score"].is_number());
  EXPECT_TRUE(j["prompt_swap_accuracy"].is_number());
  // The same numbers as the library on the same pictures.
  std::vector<torch::Tensor> batch;
  for (int i = 0; i < 3; ++i)
    batch.push_back(clip_resize(image_to_tensor(load_image(tmp.file(std::string(kColourNames[i]) + ".png"))).unsqueeze(0), 16));
  auto tokenizer = ClipTokenizer::from_dir(tok);
  auto s = clip_scores(model, tokenizer, torch::cat(batch), {"a red square", "a green square", "a blue square"});
  EXPECT_NEAR(j["mean_clip_score"].get<double>(), s.mean_score, 1e-4);
  EXPECT_NEAR(j["prompt_swap_accuracy"].get<double>(), s.swap_accuracy, 1e-12);

  // Plain text from a prompts file; the tokenizer from ../tokenizer.
  fs::create_directories(tmp.path / "model" / "clip");
  save_clip_model(tmp.file("model/clip"), model);
  fs::create_directories(tmp.path / "model" / "tokenizer");
  for (const char* f : {"vocab.json", "merges.txt"}) fs::copy_file(fs::path(tok) / f, tmp.path / "model" / "tokenizer" / f);
  test::write_text(tmp.file("prompts.txt"), "a red square\na green square\r\n\na blue square\n");
  r = test::run_cli("score --clip " + tmp.file("model/clip") + " --images" + images + " --prompts-file " +
                    tmp.file("prompts.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("mean CLIP score"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("prompt-swap accuracy"), std::string::npos) << r.output;

  // Counts that differ: exit 1 and one line naming both.
  r = test::run_cli("score --clip " + tmp.file("clip") + " --images" + images + " --prompts 'a' 'b'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("3 images but 2 prompts"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace
}  // namespace luminars

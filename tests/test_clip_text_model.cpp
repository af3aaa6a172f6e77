// The CLIP text model against transformers (fixtures/clip_text_tiny*: quick_gelu with the legacy
// pooling rule, gelu with eos_token_id), its legacy and half-precision files, its errors, and the
// published ViT-L/14 and ViT-H/14 text towers (fixtures/published_manifests.json).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "text/clip_text_model.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string fixture(const std::string& name) { return test::fixtures_dir() + "/" + name; }

using test::error_of;

// The outputs of `model` on the fixture's input_ids against its expected tensors.
void expect_parity(ClipTextModel& model, const std::map<std::string, torch::Tensor>& ex, double tol) {
  torch::NoGradGuard no_grad;
  auto out = model->forward(ex.at("input_ids"));
  EXPECT_LE(test::rel_error(out.last_hidden_state, ex.at("last_hidden_state")), tol);
  EXPECT_LE(test::rel_error(out.penultimate_hidden_state, ex.at("penultimate_hidden_state")), tol);
  EXPECT_LE(test::rel_error(out.pooler_output, ex.at("pooler_output")), tol);
  ASSERT_TRUE(out.text_embeds.defined());
  EXPECT_LE(test::rel_error(out.text_embeds, ex.at("text_embeds")), tol);
}

// Rewrites a fixture folder into `tmp`: the weights through `edit`, saved as `dtype`, and the
// config through `edit_config`.
void rewrite_fixture(const std::string& name, const test::TempDir& tmp,
                     const std::function<void(std::map<std::string, torch::Tensor>&)>& edit = {},
                     torch::Dtype dtype = torch::kFloat32, const std::function<void(json&)>& edit_config = {}) {
  auto tensors = load_tensors(fixture(name) + "/model.safetensors");
  if (edit) edit(tensors);
  NamedTensors named;
  for (auto& [k, v] : tensors) named.emplace_back(k, v.is_floating_point() ? v.to(dtype) : v);
  save_tensors(tmp.file("model.safetensors"), named);
  json config = json::parse(read_file(fixture(name) + "/config.json"));
  if (edit_config) edit_config(config);
  test::write_text(tmp.file("config.json"), config.dump(2));
}

struct ClipTextFixture : ::testing::TestWithParam<std::string> {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    ex = load_tensors(fixture(GetParam()) + "/expected.safetensors");
  }
  std::map<std::string, torch::Tensor> ex;
};

TEST_P(ClipTextFixture, Parity) {
  auto model = load_clip_text_model(fixture(GetParam()));
  EXPECT_TRUE(model->config().with_projection);
  EXPECT_EQ(model->config().num_hidden_layers, 3);
  expect_parity(model, ex, 1e-5);
  // The penultimate state is not the last one, and the last one is normalised.
  torch::NoGradGuard no_grad;
  auto out = model->forward(ex.at("input_ids"));
  EXPECT_GT(test::rel_error(out.penultimate_hidden_state, ex.at("last_hidden_state")), 0.1);
  for (auto* p : {&out.last_hidden_state, &out.penultimate_hidden_state}) EXPECT_FALSE(p->requires_grad());
}

TEST_P(ClipTextFixture, LegacyPositionIdsLoad) {
  test::TempDir tmp;
  rewrite_fixture(GetParam(), tmp, [](auto& t) {
    t["text_model.embeddings.position_ids"] = torch::arange(77, torch::kInt64).unsqueeze(0);
  });
  auto model = load_clip_text_model(tmp.path.string());
  expect_parity(model, ex, 1e-5);
}

TEST_P(ClipTextFixture, HalfPrecisionWeightsLoadAsFloat32) {
  for (auto [dtype, tol] : {std::pair{torch::kBFloat16, 2e-2}, std::pair{torch::kFloat16, 5e-3}}) {
    test::TempDir tmp;
    rewrite_fixture(GetParam(), tmp, {}, dtype);
    auto model = load_clip_text_model(tmp.path.string());
    for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
    expect_parity(model, ex, tol);
    torch::NoGradGuard no_grad;
    RecordProperty(std::string(c10::toString(dtype)) + "_rel_error",
                   std::to_string(test::rel_error(model->forward(ex.at("input_ids")).last_hidden_state,
                                                  ex.at("last_hidden_state"))));
  }
}

INSTANTIATE_TEST_SUITE_P(ClipText, ClipTextFixture, ::testing::Values("clip_text_tiny", "clip_text_tiny_gelu"));

TEST(ClipTextModel, PoolingRuleFollowsEosTokenId) {
  LUMINARS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  // Row 0: EOS (the largest id) at 3; row 1: no EOS, the largest id (BOS) at 3.
  auto ids = torch::tensor({320, 49406, 539, 49407, 49407, 0, 320, 539, 49406, 0}, torch::kInt64).view({2, 5});
  auto legacy = load_clip_text_model(fixture("clip_text_tiny"));  // eos_token_id 2: argmax of the ids
  auto out = legacy->forward(ids);
  EXPECT_TRUE(torch::equal(out.pooler_output[0], out.last_hidden_state[0][3]));
  EXPECT_TRUE(torch::equal(out.pooler_output[1], out.last_hidden_state[1][3]));
  auto modern = load_clip_text_model(fixture("clip_text_tiny_gelu"));  // eos_token_id 49407: first EOS
  out = modern->forward(ids);
  EXPECT_TRUE(torch::equal(out.pooler_output[0], out.last_hidden_state[0][3]));
  EXPECT_TRUE(torch::equal(out.pooler_output[1], out.last_hidden_state[1][0]));  // none: position 0, as HF
}

TEST(ClipTextModel, WithoutProjection) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir tmp;
  rewrite_fixture("clip_text_tiny_gelu", tmp, [](auto& t) { t.erase("text_projection.weight"); }, torch::kFloat32,
                  [](json& c) { c["architectures"] = {"CLIPTextModel"}; });
  auto model = load_clip_text_model(tmp.path.string());
  EXPECT_FALSE(model->config().with_projection);
  auto ex = load_tensors(fixture("clip_text_tiny_gelu") + "/expected.safetensors");
  torch::NoGradGuard no_grad;
  auto out = model->forward(ex.at("input_ids"));
  EXPECT_FALSE(out.text_embeds.defined());
  EXPECT_LE(test::rel_error(out.pooler_output, ex.at("pooler_output")), 1e-5);
}

TEST(ClipTextModel, ShorterInputsUseTheFirstPositions) {
  LUMINARS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  auto model = load_clip_text_model(fixture("clip_text_tiny_gelu"));
  auto ex = load_tensors(fixture("clip_text_tiny_gelu") + "/expected.safetensors");
  // Causal attention: the first 20 tokens' states do not depend on the later ones.
  auto out = model->forward(ex.at("input_ids").narrow(1, 0, 20));
  EXPECT_LE(test::rel_error(out.last_hidden_state, ex.at("last_hidden_state").narrow(1, 0, 20)), 1e-5);
}

TEST(ClipTextModel, ErrorsNameTheFault) {
  LUMINARS_REQUIRE_FIXTURES();
  const std::string name = "clip_text_tiny_gelu";
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, [](auto& t) { t.erase("text_model.encoder.layers.1.mlp.fc2.bias"); });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("missing tensor 'text_model.encoder.layers.1.mlp.fc2.bias'"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, [](auto& t) { t["text_model.final_layer_norm.weight"] = torch::ones({31}); });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("'text_model.final_layer_norm.weight' has shape [31], expected [32]"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, [](auto& t) { t["text_model.extra.weight"] = torch::ones({2}); });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("unexpected tensor 'text_model.extra.weight'"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, {}, torch::kFloat32, [](json& c) { c["vocab_size"] = 1000; });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("vocab_size 1000 does not match the 49408 rows"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, {}, torch::kFloat32, [](json& c) { c["hidden_act"] = "swish"; });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("hidden_act 'swish' is not supported"), std::string::npos) << msg;
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, {}, torch::kFloat32, [](json& c) { c["num_attention_heads"] = 5; });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("num_attention_heads 5 must divide hidden_size 32"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp, {}, torch::kFloat32, [](json& c) { c["hidden_size"] = "32"; });
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("field 'hidden_size' must be an integer"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp);
    test::write_text(tmp.file("config.json"), "{\"hidden_size\": ");
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("config.json: invalid JSON"), std::string::npos) << msg;
    fs::remove(tmp.file("config.json"));
    msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("config.json: file not found"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    rewrite_fixture(name, tmp);
    fs::remove(tmp.file("model.safetensors"));
    auto msg = error_of([&] { load_clip_text_model(tmp.path.string()); });
    EXPECT_NE(msg.find("model.safetensors: file not found"), std::string::npos) << msg;
  }
  auto msg = error_of([] { load_clip_text_model("/nonexistent/text_encoder"); });
  EXPECT_NE(msg.find("/nonexistent/text_encoder"), std::string::npos) << msg;

  auto model = load_clip_text_model(fixture(name));
  msg = error_of([&] { model->forward(torch::zeros({1, 78}, torch::kInt64)); });
  EXPECT_NE(msg.find("max_position_embeddings 77"), std::string::npos) << msg;
  msg = error_of([&] { model->forward(torch::full({1, 5}, 49408, torch::kInt64)); });
  EXPECT_NE(msg.find("token id 49408 is outside the vocabulary"), std::string::npos) << msg;
}

// Published text towers built from their configurations on the meta device (no memory, no init):
// every tensor name and shape and the parameter count exactly as in the published files.
void expect_manifest(const ClipTextConfig& config, const std::string& key) {
  auto manifests = json::parse(read_file(fixture("published_manifests.json")));
  const auto& m = manifests.at(key);
  ClipTextModel model(config, torch::TensorOptions().device(torch::kMeta));
  EXPECT_EQ(count_parameters(*model), m.at("params").get<int64_t>());
  std::map<std::string, std::vector<int64_t>> ours, published;
  for (const auto& [name, t] : module_state(*model)) ours[name] = t.sizes().vec();
  for (const auto& [name, shape] : m.at("keys").items()) published[name] = shape.get<std::vector<int64_t>>();
  EXPECT_EQ(ours.size(), published.size());
  for (const auto& [name, shape] : published) {
    auto it = ours.find(name);
    ASSERT_NE(it, ours.end()) << "missing " << name;
    EXPECT_EQ(it->second, shape) << name;
  }
}

TEST(ClipTextPublished, VitL14Text) {
  LUMINARS_REQUIRE_FIXTURES();
  auto c = ClipTextConfig::vit_l14();
  EXPECT_EQ(c.hidden_act, "quick_gelu");
  expect_manifest(c, "clip_vit_l14_text");
}

TEST(ClipTextPublished, OpenClipVitH14Text) {
  LUMINARS_REQUIRE_FIXTURES();
  auto c = ClipTextConfig::vit_h14();
  EXPECT_EQ(c.hidden_act, "gelu");
  expect_manifest(c, "openclip_vit_h14_text");
}

TEST(ClipTextPublished, ConfigJsonOfAPublishedFolder) {
  // The text_encoder/config.json of an SD 1.x pipeline (CLIPTextModel, legacy ids) reads as ViT-L/14.
  auto c = ClipTextConfig::from_json(R"({"architectures": ["CLIPTextModel"], "attention_dropout": 0.0,
      "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768,
      "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
      "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12,
      "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768, "torch_dtype": "float32",
      "vocab_size": 49408})");
  auto l14 = ClipTextConfig::vit_l14();
  EXPECT_EQ(c.hidden_size, l14.hidden_size);
  EXPECT_EQ(c.num_hidden_layers, l14.num_hidden_layers);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_FALSE(c.with_projection);
  // A whole CLIPConfig: the text tower's fields under text_config, projection_dim beside it.
  auto full = ClipTextConfig::from_json(R"({"projection_dim": 1024, "text_config": {"hidden_size": 1024,
      "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096, "hidden_act": "gelu"}})");
  EXPECT_EQ(full.projection_dim, 1024);
  EXPECT_EQ(full.hidden_act, "gelu");
}

TEST(ClipTextModel, RandomInitIsDeterministic) {
  ClipTextConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.vocab_size = 100;
  c.with_projection = true;
  c.projection_dim = 8;
  ClipTextModel a(c), b(c);
  a->init_weights(7);
  b->init_weights(7);
  for (const auto& [name, t] : module_state(*a)) {
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
    EXPECT_FALSE(t.requires_grad()) << name;
  }
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor({{49 % 100, 3, 99, 1}}, torch::kInt64);
  c.eos_token_id = 99;
  EXPECT_TRUE(torch::equal(a->forward(ids).text_embeds, b->forward(ids).text_embeds));
}

}  // namespace
}  // namespace luminars

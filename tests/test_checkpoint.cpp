// Checkpoints: config in metadata, any valid config loads, mismatches are named.
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include "core/error.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "test_support.h"

namespace luminars {
namespace {

using test::error_of;

TEST(Checkpoint, RoundTripAnyConfig) {
  test::TempDir dir;
  Config cfg = Config::preset("tiny");
  cfg.widths = {16, 32, 48};
  cfg.depths = {1, 0, 2};
  cfg.recursions = 3;
  LuminaRS model(cfg);
  for (auto& p : model->parameters()) {
    torch::NoGradGuard g;
    p.uniform_(-1, 1);
  }
  save_denoiser(model, dir.file("m.safetensors"));
  EXPECT_EQ(read_denoiser_config(dir.file("m.safetensors")), cfg);
  auto loaded = load_denoiser(dir.file("m.safetensors"));
  EXPECT_EQ(loaded->config(), cfg);
  auto a = module_state(*model), b = module_state(*loaded);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(Checkpoint, Bf16Save) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  save_denoiser(model, dir.file("m.safetensors"), torch::kBFloat16);
  safetensors::Reader r(dir.file("m.safetensors"));
  EXPECT_EQ(r.at("stem.weight").dtype, safetensors::DType::BF16);
  auto loaded = load_denoiser(dir.file("m.safetensors"));  // converted back to float32
  EXPECT_EQ(loaded->stem->weight.scalar_type(), torch::kFloat32);
  EXPECT_LT(test::rel_error(loaded->stem->weight, model->stem->weight), 1e-2);
}

TEST(Checkpoint, MissingTensorIsNamed) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  auto state = module_state(*model);
  NamedTensors kept;
  for (auto& kv : state)
    if (kv.first != "unet.mid.attn.in_proj_weight") kept.push_back(kv);
  save_tensors(dir.file("m.safetensors"), kept, {{kConfigMetadataKey, model->config().to_json()}});
  auto e = error_of([&] { load_denoiser(dir.file("m.safetensors")); });
  EXPECT_NE(e.find("missing tensor 'unet.mid.attn.in_proj_weight'"), std::string::npos) << e;
}

TEST(Checkpoint, WrongShapeIsNamed) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  auto state = module_state(*model);
  for (auto& kv : state)
    if (kv.first == "head.weight") kv.second = torch::zeros({4, 32, 3, 2});
  save_tensors(dir.file("m.safetensors"), state, {{kConfigMetadataKey, model->config().to_json()}});
  auto e = error_of([&] { load_denoiser(dir.file("m.safetensors")); });
  EXPECT_NE(e.find("tensor 'head.weight' has shape [4, 32, 3, 2], expected [4, 32, 3, 3]"), std::string::npos) << e;
}

TEST(Checkpoint, UnexpectedTensorIsNamed) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  auto state = module_state(*model);
  state.emplace_back("extra.weight", torch::zeros({1}));
  save_tensors(dir.file("m.safetensors"), state, {{kConfigMetadataKey, model->config().to_json()}});
  EXPECT_NE(error_of([&] { load_denoiser(dir.file("m.safetensors")); }).find("unexpected tensor 'extra.weight'"),
            std::string::npos);
}

TEST(Checkpoint, ConfigProblems) {
  test::TempDir dir;
  save_tensors(dir.file("none.safetensors"), {{"w", torch::ones({1})}});
  EXPECT_NE(error_of([&] { load_denoiser(dir.file("none.safetensors")); }).find("no 'luminars_config'"), std::string::npos);
  save_tensors(dir.file("bad.safetensors"), {{"w", torch::ones({1})}}, {{kConfigMetadataKey, "{not json"}});
  auto e = error_of([&] { load_denoiser(dir.file("bad.safetensors")); });
  EXPECT_NE(e.find("config: invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.safetensors"), std::string::npos) << e;
  save_tensors(dir.file("inv.safetensors"), {{"w", torch::ones({1})}}, {{kConfigMetadataKey, R"({"recursions": 99})"}});
  EXPECT_NE(error_of([&] { load_denoiser(dir.file("inv.safetensors")); }).find("recursions = 99"), std::string::npos);
}

TEST(Checkpoint, ReferenceFixtureLoadsUnchanged) {
  LUMINARS_REQUIRE_FIXTURES();
  auto path = test::fixtures_dir() + "/luminars_tiny/model.safetensors";
  auto model = load_denoiser(path);
  auto ref = load_tensors(path);
  for (const auto& [name, t] : module_state(*model)) EXPECT_TRUE(torch::equal(t, ref.at(name))) << name;
}

}  // namespace
}  // namespace luminars

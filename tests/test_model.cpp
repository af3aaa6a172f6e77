// The denoiser's module tree: names, shapes and budget against the reference's default manifest,
// initialisation rules, and input checks.
#include <luminars/luminars.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/module_state.h"
#include "test_support.h"

namespace luminars {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(Model, DefaultStateDictMatchesManifestOneForOne) {
  LUMINARS_REQUIRE_FIXTURES();
  auto manifest = read_json(test::fixtures_dir() + "/luminars_default_manifest.json");
  Config cfg = Config::from_json(manifest["config"].dump());
  EXPECT_EQ(cfg, Config::preset("default"));
  torch::NoGradGuard no_grad;
  LuminaRS model(cfg);
  auto state = module_state(*model);
  const auto& tensors = manifest["tensors"];
  ASSERT_EQ(state.size(), tensors.size());
  std::set<std::string> names;
  for (const auto& [name, t] : state) {
    names.insert(name);
    ASSERT_TRUE(tensors.contains(name)) << "unexpected tensor " << name;
    EXPECT_EQ(t.sizes().vec(), tensors[name].get<std::vector<int64_t>>()) << name;
  }
  for (auto it = tensors.begin(); it != tensors.end(); ++it) EXPECT_TRUE(names.count(it.key())) << "missing " << it.key();
}

TEST(Model, DefaultBudgetEqualsManifest) {
  LUMINARS_REQUIRE_FIXTURES();
  auto manifest = read_json(test::fixtures_dir() + "/luminars_default_manifest.json");
  LuminaRS model(Config::preset("default"));
  auto budget = parameter_budget(model);
  for (const char* k : {"encoder", "bottleneck", "decoder", "embeds", "total"})
    EXPECT_EQ(budget.at(k), manifest["budget"][k].get<int64_t>()) << k;
  EXPECT_EQ(budget.at("total"), 88662928);
}

TEST(Model, TinyStateDictMatchesTinyManifest) {
  LUMINARS_REQUIRE_FIXTURES();
  auto manifest = read_json(test::fixtures_dir() + "/luminars_tiny/manifest.json");
  LuminaRS model(Config::from_json(manifest["config"].dump()));
  auto state = module_state(*model);
  ASSERT_EQ(state.size(), manifest["tensors"].size());
  for (const auto& [name, t] : state) EXPECT_EQ(t.sizes().vec(), manifest["tensors"][name].get<std::vector<int64_t>>()) << name;
}

TEST(Model, ZeroInitialisedAdaAndOut) {
  torch::manual_seed(0);
  LuminaRS model(Config::preset("tiny"));
  int ada = 0;
  for (const auto& p : model->named_parameters()) {
    const auto& name = p.key();
    bool zero = name.find(".ada.") != std::string::npos || name.rfind("unet.out.", 0) == 0;
    if (zero) {
      EXPECT_EQ(p.value().abs().max().item<float>(), 0.f) << name;
      ada += name.find(".ada.weight") != std::string::npos;
    } else if (p.value().dim() > 1) {
      EXPECT_GT(p.value().abs().max().item<float>(), 0.f) << name;
    }
  }
  EXPECT_EQ(ada, 1 + 1 + 1 + 1 + 1);  // down 1+1, mid 1, up 1+1
  auto r = model->recursion_embed->weight;
  EXPECT_NEAR(r.std().item<float>(), 0.02, 0.01);
  // Each pass starts as identity: z + unet(z) = z, so the output does not depend on recursions.
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 4, 8, 8}), t = torch::tensor({0.5f}), ctx = torch::randn({1, 5, 40}), pooled = torch::randn({1, 40});
  ForwardOptions one;
  one.recursions = 1;
  EXPECT_TRUE(torch::allclose(model->forward(x, t, ctx, pooled), model->forward(x, t, ctx, pooled, one)));
}

TEST(Model, RejectsBadInputsWithClearErrors) {
  LuminaRS model(Config::preset("tiny"));
  torch::NoGradGuard no_grad;
  auto t = torch::tensor({0.5f}), ctx = torch::randn({1, 5, 40}), pooled = torch::randn({1, 40});
  auto msg = [&](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg([&] { model->forward(torch::randn({1, 3, 8, 8}), t, ctx, pooled); }).find("x must be [B,4,H,W]"),
            std::string::npos);
  EXPECT_NE(msg([&] { model->forward(torch::randn({1, 4, 7, 8}), t, ctx, pooled); }).find("not divisible"),
            std::string::npos);
  EXPECT_NE(msg([&] { model->forward(torch::randn({1, 4, 8, 8}), t, torch::randn({1, 5, 32}), pooled); }).find("ctx must be"),
            std::string::npos);
  EXPECT_NE(msg([&] { model->forward(torch::randn({1, 4, 8, 8}), torch::rand({2}), ctx, pooled); }).find("t must be [1]"),
            std::string::npos);
  ForwardOptions o;
  o.recursions = 9;
  EXPECT_NE(msg([&] { model->forward(torch::randn({1, 4, 8, 8}), t, ctx, pooled, o); }).find("max_recursions"),
            std::string::npos);
}

TEST(Model, GradientThroughLastRecursionOnly) {
  torch::manual_seed(1);
  LuminaRS model(Config::preset("tiny"));
  for (auto& p : model->parameters()) {  // make every pass non-trivial
    torch::NoGradGuard g;
    p.add_(torch::randn_like(p) * 0.05);
  }
  auto x = torch::randn({2, 4, 8, 8}), t = torch::rand({2}), ctx = torch::randn({2, 5, 40}), pooled = torch::randn({2, 40});
  ForwardOptions full, last;
  last.grad_last_recursion_only = true;
  auto v_full = model->forward(x, t, ctx, pooled, full);
  auto v_last = model->forward(x, t, ctx, pooled, last);
  EXPECT_TRUE(torch::allclose(v_full, v_last, 1e-5, 1e-6));  // same value
  v_last.pow(2).mean().backward();
  auto g_last = model->recursion_embed->weight.grad().clone();
  EXPECT_EQ(g_last[0].abs().max().item<float>(), 0.f);  // pass 0 ran without autograd
  EXPECT_GT(g_last[1].abs().max().item<float>(), 0.f);
}

}  // namespace
}  // namespace luminars

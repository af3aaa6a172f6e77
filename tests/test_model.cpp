// The denoiser's module tree: names, shapes and budget against the reference's default manifest,
// initialisation rules, and input checks.
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

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

// A tiny model whose every pass does real work (non-zero ada and out).
LuminaRS busy_tiny_model() {
  torch::manual_seed(2);
  LuminaRS model(Config::preset("tiny"));
  torch::NoGradGuard g;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  return model;
}

TEST(Model, PromptEncodedOnceGivesTheSameVelocity) {
  auto model = busy_tiny_model();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 4, 8, 8}), ctx = torch::randn({2, 5, 40}), pooled = torch::randn({2, 40});
  auto mask = torch::tensor({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, torch::kBool).view({2, 5});
  ForwardOptions masked;
  masked.mask = mask;
  const auto prompt = model->encode_prompt(ctx, pooled, mask);
  EXPECT_EQ(prompt.text.size(), 5u);  // one key/value pair per block: down 1+1, mid 1, up 1+1
  for (float t : {0.1f, 0.7f}) {  // the same state serves every step
    auto tb = torch::full({2}, t);
    auto direct = model->forward(x, tb, ctx, pooled, masked);
    EXPECT_TRUE(torch::equal(model->forward(x, tb, prompt), direct));
    EXPECT_GT((direct - model->forward(x, tb, ctx, pooled)).abs().max().item<float>(), 1e-4);  // the mask matters
  }
  EXPECT_NE(test::error_of([&] { model->forward(torch::randn({1, 4, 8, 8}), torch::rand({1}), prompt); })
                .find("the prompt one of 2"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { model->encode_prompt(ctx, torch::randn({2, 41})); }).find("pooled must be [2,40]"),
            std::string::npos);
}

TEST(Model, UpsampleByPhasesEqualsNearestThenConvolution) {
  torch::manual_seed(4);
  Upsample up(6, 5);
  for (auto sizes : {std::vector<int64_t>{2, 6, 4, 4}, std::vector<int64_t>{1, 6, 3, 5}}) {
    auto x = torch::randn(sizes).contiguous(torch::MemoryFormat::ChannelsLast);
    auto n = up->norm(x);
    auto want = up->conv(torch::upsample_nearest2d(n, {2 * sizes[2], 2 * sizes[3]}));
    auto got = up->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE(test::rel_error(got, want), 1e-6);
    got.sum().backward();  // differentiable through the folded kernels
    EXPECT_GT(up->conv->weight.grad().abs().sum().item<float>(), 0.f);
    up->zero_grad();
  }
  // Without autograd the folded kernels are cached, and follow the weights when they change.
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 6, 4, 4}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto reference = [&] { return up->conv(torch::upsample_nearest2d(up->norm(x), {8, 8})); };
  EXPECT_LE(test::rel_error(up->forward(x), reference()), 1e-6);
  up->conv->weight.mul_(-2.0);
  EXPECT_LE(test::rel_error(up->forward(x), reference()), 1e-6);
}

TEST(Model, MaskedTokensDoNotReachTheVelocity) {
  auto model = busy_tiny_model();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 4, 8, 8}), t = torch::tensor({0.4f}), ctx = torch::randn({1, 5, 40}), pooled = torch::randn({1, 40});
  auto mask = torch::tensor({1, 1, 1, 0, 0}, torch::kBool).view({1, 5});
  auto other = ctx.clone();
  other.slice(1, 3, 5).normal_();  // change only the masked tokens
  auto a = model->forward(x, t, model->encode_prompt(ctx, pooled, mask));
  auto b = model->forward(x, t, model->encode_prompt(other, pooled, mask));
  EXPECT_LE(test::rel_error(b, a), 1e-6);
}

}  // namespace
}  // namespace luminars

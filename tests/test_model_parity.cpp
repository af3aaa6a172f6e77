// Parity of the denoiser, loss and samplers with the reference (fixtures/luminars_tiny).
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include "core/error.h"
#include "core/tensor_io.h"
#include "test_support.h"

namespace luminars {
namespace {

constexpr double kTol = 1e-5;

struct TinyFixture : ::testing::Test {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    dir = test::fixtures_dir() + "/luminars_tiny";
    model = load_denoiser(dir + "/model.safetensors");
    model->eval();
    ex = load_tensors(dir + "/expected.safetensors");
  }
  torch::Tensor e(const std::string& name) { return ex.at(name); }
  std::string dir;
  LuminaRS model{nullptr};
  std::map<std::string, torch::Tensor> ex;
  torch::NoGradGuard no_grad;
};

TEST_F(TinyFixture, ConfigFromMetadataIsTheTinyPreset) { EXPECT_EQ(model->config(), Config::preset("tiny")); }

TEST_F(TinyFixture, Velocity) {
  auto v = model->forward(e("x"), e("t"), e("ctx"), e("pooled"));
  EXPECT_LE(test::rel_error(v, e("velocity")), kTol);
}

TEST_F(TinyFixture, VelocityMasked) {
  ForwardOptions o;
  o.mask = e("mask").to(torch::kBool);
  auto v = model->forward(e("x"), e("t"), e("ctx"), e("pooled"), o);
  EXPECT_LE(test::rel_error(v, e("velocity_masked")), kTol);
  // The mask must matter: the second sample attends to 3 of 7 tokens.
  EXPECT_GT(test::rel_error(v, e("velocity")), 1e-3);
}

TEST_F(TinyFixture, VelocityOneRecursion) {
  ForwardOptions o;
  o.recursions = 1;
  auto v = model->forward(e("x"), e("t"), e("ctx"), e("pooled"), o);
  EXPECT_LE(test::rel_error(v, e("velocity_1_recursion")), kTol);
}

TEST_F(TinyFixture, Loss) {
  auto loss = flow_matching_loss(model, e("clean"), e("noise"), e("t"), e("ctx"), e("pooled"));
  EXPECT_LE(test::rel_error(loss.reshape({1}), e("loss")), kTol);
}

TEST_F(TinyFixture, SampleEuler4StepsGuidance3) {
  SampleOptions o;
  o.steps = 4;
  o.guidance.scale = 3.0;
  o.guidance.null_ctx = e("null_ctx");
  o.guidance.null_pooled = e("null_pooled");
  auto x = sample_flow(model, e("noise"), e("ctx"), e("pooled"), o);
  EXPECT_LE(test::rel_error(x, e("sample_euler_4_cfg3")), kTol);
}

TEST_F(TinyFixture, SampleHeun3StepsShift3) {
  SampleOptions o;
  o.steps = 3;
  o.shift = 3.0;
  o.method = SamplerMethod::Heun;
  int calls = 0;
  o.on_step = [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 3);
    EXPECT_EQ(done, calls);
  };
  auto x = sample_flow(model, e("noise"), e("ctx"), e("pooled"), o);
  EXPECT_LE(test::rel_error(x, e("sample_heun_3_shift3")), kTol);
  EXPECT_EQ(calls, 3);
}

TEST(SampleTimes, Shift3Twelve) {
  LUMINARS_REQUIRE_FIXTURES();
  auto ex = load_tensors(test::fixtures_dir() + "/luminars_tiny/expected.safetensors");
  EXPECT_LE(test::rel_error(sample_times(12, 3.0), ex.at("sample_times_12_shift3")), kTol);
}

TEST(SampleTimes, EndpointsAndMonotone) {
  auto ts = sample_times(10, 1.0);
  EXPECT_FLOAT_EQ(ts[0].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(ts[10].item<float>(), 1.f);
  EXPECT_NEAR(ts[5].item<float>(), 0.5f, 1e-7);
  EXPECT_TRUE((ts.slice(0, 1) > ts.slice(0, 0, 10)).all().item<bool>());
  EXPECT_THROW(sample_times(0), Error);
  EXPECT_THROW(sample_times(4, -1.0), Error);
}

}  // namespace
}  // namespace luminars

#include "pipeline/quantization_tuning.h"

#include <cmath>
#include <iterator>
#include <optional>

#include "core/error.h"
#include "core/generator.h"
#include "core/progress.h"
#include "flow/sampler.h"
#include "pipeline/calibration.h"
#include "text/text_encoder.h"
#include "vae/vae.h"

namespace luminars {

const std::vector<std::string>& default_tuning_prompts() {
  static const std::vector<std::string> prompts = [] {
    const char* subjects[] = {
        "red apple",      "yellow banana",   "strawberry",       "watermelon",     "cherries",      "lemon",
        "grapes",         "carrot",          "hamburger",        "hot dog",        "ice cream",     "doughnut",
        "cup of coffee",  "teapot",          "cat",              "dog",            "fox",           "lion face",
        "panda",          "penguin",         "frog",            "turtle",         "octopus",       "whale",
        "bee",            "ladybug",         "snail",            "rose",           "sunflower",     "cactus",
        "palm tree",      "maple leaf",      "mushroom",         "crescent moon",  "rainbow",       "snowflake",
        "fire",           "water droplet",   "lightning",        "mountain",       "volcano",       "globe",
        "bicycle",        "airplane",        "sailboat",         "train",          "taxi",          "ambulance",
        "house",          "castle",          "light bulb",       "key",            "bell",          "gift",
        "balloon",        "trophy",          "basketball",       "laughing face",  "angry face",    "thinking face",
        "face with tears of joy", "ghost",   "robot",            "purple heart"};
    const char* styles[] = {"openmoji", "noto", "fluent flat", "twemoji", "fluent 3d", "emojione", "fxemoji", "streamline"};
    std::vector<std::string> out;
    const int n = static_cast<int>(std::size(subjects));
    for (int j = 0; j < 4; ++j)  // each subject in four styles, in the training captions' forms (scripts/fetch_emoji.py)
      for (int i = 0; i < n; ++i) {
        const std::string c = subjects[i], st = styles[(i + 3 * j) % 8];
        switch ((i + j) % 4) {
          case 0: out.push_back(c + ", " + st + " style"); break;
          case 1: out.push_back(std::string(std::string("aeiou").find(c[0]) == std::string::npos ? "a " : "an ") + c + " emoji, " + st + " style"); break;
          case 2: out.push_back(c + " in " + st + " emoji style"); break;
          default: out.push_back(j == 3 ? c : c + ", " + st + " style"); break;
        }
      }
    return out;
  }();
  return prompts;
}

namespace {

// Every step of the teacher's trajectories: latents, time, guided velocity and which prompt.
struct TeacherStates {
  torch::Tensor x, t, v, prompt;          // [N,C,H,W], [N], [N,C,H,W], [N] int64
  torch::Tensor ctx, pooled;              // the prompts' [P,L,D], [P,D]
  torch::Tensor null_ctx, null_pooled;    // the empty prompt's [1,L,D], [1,D]
  double scale = 1;
};

TeacherStates record_teacher(const ModelFolder& folder, LuminaRS& teacher, const TextEncoder& text,
                             const std::vector<std::string>& prompts, int64_t seeds, uint64_t first_seed) {
  TeacherStates s;
  s.scale = folder.sampler.cfg_scale;
  std::vector<torch::Tensor> xs, ts, vs, ids, ctxs, pooleds;
  draw_prompts(folder, teacher, text, prompts, seeds, first_seed, "the float model's trajectories",
               [&](std::size_t i, const TextEncoding& enc, VelocityFn velocity) {
                 ctxs.push_back(enc.ctx.narrow(0, 0, 1));
                 pooleds.push_back(enc.pooled.narrow(0, 0, 1));
                 if (i == 0) s.null_ctx = enc.ctx.narrow(0, 1, 1), s.null_pooled = enc.pooled.narrow(0, 1, 1);
                 return VelocityFn([&, i, velocity = std::move(velocity)](const torch::Tensor& x, float t) {
                   auto v = velocity(x, t);
                   xs.push_back(x.clone());
                   vs.push_back(v.clone());
                   ts.push_back(torch::full({x.size(0)}, t));
                   ids.push_back(torch::full({x.size(0)}, static_cast<int64_t>(i), torch::kInt64));
                   return v;
                 });
               });
  s.x = torch::cat(xs), s.t = torch::cat(ts), s.v = torch::cat(vs), s.prompt = torch::cat(ids);
  s.ctx = torch::cat(ctxs), s.pooled = torch::cat(pooleds);
  return s;
}

// The guided velocity of `model` at the states `idx` of `s`, as guided_velocity computes it.
torch::Tensor guided(LuminaRS& model, const TeacherStates& s, const torch::Tensor& idx) {
  const auto x = s.x.index_select(0, idx), t = s.t.index_select(0, idx), p = s.prompt.index_select(0, idx);
  const int64_t b = idx.size(0);
  auto ctx = torch::cat({s.ctx.index_select(0, p), s.null_ctx.expand({b, -1, -1})});
  auto pooled = torch::cat({s.pooled.index_select(0, p), s.null_pooled.expand({b, -1})});
  auto out = model->forward(torch::cat({x, x}), torch::cat({t, t}), ctx, pooled).chunk(2);
  return out[1] + s.scale * (out[0] - out[1]);
}

// ‖v_model − v_teacher‖ / ‖v_teacher‖ over every state.
double relative_error(LuminaRS& model, const TeacherStates& s) {
  torch::NoGradGuard no_grad;
  double num = 0, den = 0;
  const int64_t n = s.x.size(0), chunk = 64;
  for (int64_t i = 0; i < n; i += chunk) {
    auto idx = torch::arange(i, std::min(n, i + chunk), torch::kInt64);
    auto ref = s.v.index_select(0, idx);
    num += (guided(model, s, idx) - ref).square().sum().item<double>();
    den += ref.square().sum().item<double>();
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

constexpr int64_t kSearchEvery = 16;  // steps between scale searches

// A weight the student sees rounded: the model's parameter holds the rounded values, `master`
// the float ones the optimizer moves.
struct Rounded {
  torch::Tensor param, master;
  quant::Scheme scheme;
  torch::Tensor scales;  // of the last search
};

// search: each block's scale searched as export searches it (quant::quantize); otherwise the
// masters are rounded at the scales of the last search.
void round_into_params(std::vector<Rounded>& rounded, bool search) {
  torch::NoGradGuard no_grad;
  for (auto& r : rounded) {
    if (search || !r.scales.defined()) {
      const auto p = quant::quantize(r.master, r.scheme);
      r.scales = p.scales;
      r.param.copy_(quant::dequantize(p, r.scheme, r.master.sizes()));
    } else {
      r.param.copy_(quant::round_at_scales(r.master, r.scheme, r.scales));
    }
  }
}

}  // namespace

QuantizationTuningReport tune_for_quantization(const ModelFolder& folder, LuminaRS& denoiser, const QuantizationTuning& o) {
  if (o.steps < 0) throw Error("quantization tuning: steps must be 0 or more, got " + std::to_string(o.steps));
  if (o.prompts.empty()) throw Error("quantization tuning: no prompts");
  if (o.batch < 1 || o.seeds < 1 || !(o.lr > 0)) throw Error("quantization tuning: batch and seeds must be positive, lr above 0");
  denoiser->eval();
  const auto text = TextEncoder::load(folder.path_of(folder.text_encoder), folder.path_of(folder.tokenizer), torch::kCPU);
  const TeacherStates s = record_teacher(folder, denoiser, text, o.prompts, o.seeds, 2000);
  std::optional<TeacherStates> held;
  if (!o.held_out.empty()) held = record_teacher(folder, denoiser, text, o.held_out, 1, 3000);
  QuantizationTuningReport report;
  report.states = s.x.size(0);

  std::vector<Rounded> rounded;
  std::vector<torch::Tensor> trained;  // what Adam moves: masters and the float parameters
  for (auto& item : denoiser->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    if (quant::quantizable(name, p)) {
      const auto scheme = o.scheme_of ? o.scheme_of(name, p).value_or(o.scheme) : o.scheme;
      const auto from = o.start.find(name);
      const auto master = from == o.start.end() ? p.detach().clone() : from->second.to(torch::kFloat32).clone();
      if (master.sizes() != p.sizes()) throw Error("quantization tuning: the start of " + name + " has another shape");
      rounded.push_back(Rounded{p, master.requires_grad_(true), scheme, {}});
      trained.push_back(rounded.back().master);
    } else {
      trained.push_back(p);
    }
  }
  round_into_params(rounded, true);
  report.error_before = relative_error(denoiser, s);
  report.error_after = report.error_before;
  if (held) report.held_out_before = report.held_out_after = relative_error(denoiser, *held);
  if (o.steps > 0) {
    torch::optim::Adam adam(trained, torch::optim::AdamOptions(o.lr));
    auto gen = make_generator(o.seed);
    const int64_t n = report.states, batch = std::min(o.batch, n);
    ProgressOptions po;
    po.unit = "step";
    Progress bar(o.steps, "tuning the rounded weights", po);
    torch::Tensor order;
    int64_t at = n;
    double loss_avg = 0;
    for (int64_t step = 0; step < o.steps; ++step) {
      if (at + batch > n) order = torch::randperm(n, gen, torch::kInt64), at = 0;
      const auto idx = order.slice(0, at, at + batch);
      at += batch;
      adam.zero_grad();
      denoiser->zero_grad();
      auto ref = s.v.index_select(0, idx);
      auto loss = (guided(denoiser, s, idx) - ref).square().mean() / ref.square().mean().clamp_min(1e-12);
      loss.backward();
      for (auto& r : rounded)  // straight through: the rounded weight's gradient moves its master
        if (r.param.grad().defined()) r.master.mutable_grad() = r.param.grad();  // shared: both are zeroed before the next backward
      // cosine decay to 0: late steps settle the weights rather than toss them across rounding boundaries
      static_cast<torch::optim::AdamOptions&>(adam.param_groups()[0].options())
          .lr(o.lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(o.steps))));
      adam.step();
      // the last step searches, so the model ends rounded exactly as export will round it
      round_into_params(rounded, (step + 1) % kSearchEvery == 0 || step + 1 == o.steps);
      const double l = loss.item<double>();
      loss_avg = step == 0 ? l : 0.95 * loss_avg + 0.05 * l;
      bar.set_postfix("relative error " + std::to_string(std::sqrt(loss_avg)).substr(0, 6));
      bar.update();
    }
    bar.finish();
    report.error_after = relative_error(denoiser, s);
    if (held) report.held_out_after = relative_error(denoiser, *held);
  }
  torch::NoGradGuard no_grad;  // the model keeps the float weights export rounds
  for (auto& r : rounded) r.param.copy_(r.master);
  return report;
}

}  // namespace luminars

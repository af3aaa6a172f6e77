#include "pipeline/calibration.h"

#include "core/error.h"
#include "core/generator.h"
#include "core/input_stats.h"
#include "core/progress.h"
#include "flow/sampler.h"
#include "text/text_encoder.h"
#include "vae/vae.h"

namespace luminars {

const std::vector<std::string>& default_calibration_prompts() {
  static const std::vector<std::string> prompts = {
      "a dog face",          "a slice of pizza, noto style", "a green tree",        "a red car, twemoji style",
      "an umbrella",         "a sun behind a cloud",         "a tropical fish",     "a guitar, openmoji style",
      "a crying face",       "a blue butterfly",             "a birthday cake",     "a purple flower, fluent-flat style",
      "a winking face",      "a house with a garden",        "a soccer ball",       "an orange, emojione style"};
  return prompts;
}

void draw_prompts(const ModelFolder& folder, LuminaRS& denoiser, const TextEncoder& text,
                  const std::vector<std::string>& prompts, int64_t seeds, uint64_t first_seed, const std::string& label,
                  const WrapVelocity& wrap) {
  torch::NoGradGuard no_grad;
  const int64_t side = folder.resolution / read_vae_geometry(folder.path_of(folder.vae)).downscale_factor;
  ProgressOptions po;
  po.unit = "prompt";
  Progress bar(static_cast<int64_t>(prompts.size()), label, po);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto enc = text.encode({prompts[i], ""}, folder.penultimate);
    Guidance g;
    g.scale = folder.sampler.cfg_scale;
    g.null_ctx = enc.ctx.narrow(0, 1, 1);
    g.null_pooled = enc.pooled.narrow(0, 1, 1);
    auto velocity = guided_velocity(denoiser, enc.ctx.narrow(0, 0, 1), enc.pooled.narrow(0, 0, 1), g);
    if (wrap) velocity = wrap(i, enc, std::move(velocity));
    for (int64_t k = 0; k < seeds; ++k) {
      auto noise = torch::randn({1, denoiser->config().latent_channels, side, side},
                                make_generator(first_seed + i * static_cast<uint64_t>(seeds) + k));
      integrate(velocity, noise, folder.sampler.steps, folder.sampler.shift, sampler_from_name(folder.sampler.method));
    }
    bar.update();
  }
  bar.finish();
}

std::map<std::string, InputMoments> denoiser_input_moments(const ModelFolder& folder, LuminaRS& denoiser,
                                                               const std::vector<std::string>& prompts) {
  if (prompts.empty()) throw Error("calibration: no prompts");
  const auto text = TextEncoder::load(folder.path_of(folder.text_encoder), folder.path_of(folder.tokenizer), torch::kCPU);
  denoiser->eval();
  InputStats stats;
  draw_prompts(folder, denoiser, text, prompts, 1, 1000, "calibrating", [&stats](std::size_t, const TextEncoding&, VelocityFn v) {
    return VelocityFn([&stats, v = std::move(v)](const torch::Tensor& x, float t) {
      RecordInputStats record(stats);
      return v(x, t);
    });
  });
  return stats.by_name(*denoiser);
}

}  // namespace luminars

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

std::map<std::string, InputMoments> denoiser_input_moments(const ModelFolder& folder, LuminaRS& denoiser,
                                                               const std::vector<std::string>& prompts) {
  if (prompts.empty()) throw Error("calibration: no prompts");
  torch::NoGradGuard no_grad;
  const auto text = TextEncoder::load(folder.path_of(folder.text_encoder), folder.path_of(folder.tokenizer), torch::kCPU);
  const int64_t side = folder.resolution / read_vae_geometry(folder.path_of(folder.vae)).downscale_factor;
  const auto& cfg = denoiser->config();
  denoiser->eval();
  InputStats stats;
  ProgressOptions po;
  po.unit = "prompt";
  Progress bar(static_cast<int64_t>(prompts.size()), "calibrating", po);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto enc = text.encode({prompts[i], ""}, folder.penultimate);
    SampleOptions so;
    so.steps = folder.sampler.steps;
    so.shift = folder.sampler.shift;
    so.method = sampler_from_name(folder.sampler.method);
    so.guidance.scale = folder.sampler.cfg_scale;
    so.guidance.null_ctx = enc.ctx.narrow(0, 1, 1);
    so.guidance.null_pooled = enc.pooled.narrow(0, 1, 1);
    auto noise = torch::randn({1, cfg.latent_channels, side, side}, make_generator(1000 + i));
    RecordInputStats record(stats);
    sample_flow(denoiser, noise, enc.ctx.narrow(0, 0, 1), enc.pooled.narrow(0, 0, 1), so);
    bar.update();
  }
  bar.finish();
  return stats.by_name(*denoiser);
}

}  // namespace luminars

#include "pipeline/generate.h"

#include <filesystem>

#include "core/autocast.h"
#include "core/error.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "core/progress.h"
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "pipeline/model_folder.h"
#include "text/text_encoder.h"
#include "vae/vae.h"
#include "vae/vae_tiling.h"

namespace luminars {

namespace fs = std::filesystem;

GenerateResult generate(const GenerateOptions& o) {
  // 1. Check inputs and resolve the model folder.
  if (o.out.empty()) throw Error("no output path given (--out)");
  if (o.batch < 1 || o.batch > 64) throw Error("batch must be between 1 and 64, got " + std::to_string(o.batch));
  ModelFolder folder = ModelFolder::load(o.model_dir);
  auto pick = [&](const std::string& override_path, const std::string& component) {
    return override_path.empty() ? folder.path_of(component) : override_path;
  };
  const std::string denoiser_path = pick(o.denoiser, folder.denoiser);
  const int64_t steps = o.steps.value_or(folder.sampler.steps);
  const double cfg_scale = o.cfg_scale.value_or(folder.sampler.cfg_scale);
  const double shift = o.shift.value_or(folder.sampler.shift);
  const SamplerMethod method = sampler_from_name(o.sampler.value_or(folder.sampler.method));
  const int64_t size = o.size.value_or(folder.resolution);
  if (steps < 1 || steps > 1000) throw Error("steps must be between 1 and 1000, got " + std::to_string(steps));
  if (!(cfg_scale >= 0 && cfg_scale <= 100)) throw Error("guidance scale must be between 0 and 100");
  if (size < 8 || size > 4096) throw Error("size must be between 8 and 4096 pixels, got " + std::to_string(size));
  const Config cfg = read_denoiser_config(denoiser_path);
  torch::NoGradGuard no_grad;

  // 2. Encode the prompt (and the negative prompt for guidance), then release the text encoder.
  torch::Tensor ctx, pooled, null_ctx, null_pooled;
  {
    auto text = TextEncoder::load(pick(o.text_encoder, folder.text_encoder), pick(o.tokenizer, folder.tokenizer), o.device);
    if (text.hidden_size() != cfg.text_dim)
      throw Error("the text encoder's hidden size " + std::to_string(text.hidden_size()) + " differs from the denoiser's text_dim " +
                  std::to_string(cfg.text_dim));
    auto emb = text.encode({o.prompt, o.negative}, folder.penultimate);
    ctx = emb.ctx.narrow(0, 0, 1).expand({o.batch, -1, -1}).contiguous();
    pooled = emb.pooled.narrow(0, 0, 1).expand({o.batch, -1}).contiguous();
    null_ctx = emb.ctx.narrow(0, 1, 1).expand({o.batch, -1, -1}).contiguous();
    null_pooled = emb.pooled.narrow(0, 1, 1).expand({o.batch, -1}).contiguous();
  }

  // 3. The VAE's geometry (config only) gives the latent size.
  auto vae_dir = pick(o.vae, folder.vae);
  const auto vae_geometry = read_vae_geometry(vae_dir);
  const int64_t factor = vae_geometry.downscale_factor;
  if (size % (factor * cfg.size_multiple()) != 0)
    throw Error("size " + std::to_string(size) + " must be a multiple of " + std::to_string(factor * cfg.size_multiple()) +
                " (VAE factor " + std::to_string(factor) + " × denoiser levels " + std::to_string(cfg.size_multiple()) + ")");
  if (vae_geometry.latent_channels != cfg.latent_channels)
    throw Error("the VAE has " + std::to_string(vae_geometry.latent_channels) + " latent channels, the denoiser " +
                std::to_string(cfg.latent_channels));

  // 4. Denoising loop.
  torch::Tensor latents;
  {
    LuminaRS model = load_denoiser(denoiser_path, o.device);
    model->eval();
    auto gen = make_generator(o.seed);
    auto noise = torch::randn({o.batch, cfg.latent_channels, size / factor, size / factor}, gen).to(o.device);
    SampleOptions so;
    so.steps = steps;
    so.shift = shift;
    so.method = method;
    so.guidance.scale = cfg_scale;
    so.guidance.null_ctx = null_ctx;
    so.guidance.null_pooled = null_pooled;
    std::unique_ptr<Progress> bar;
    if (o.progress) {
      ProgressOptions po;
      po.unit = "step";
      bar = std::make_unique<Progress>(steps, "sampling", po);
      so.on_step = [&](int64_t, int64_t) { bar->update(); };
    }
    AutocastGuard autocast(o.bf16, o.device, /*allow_cpu=*/true);
    latents = sample_flow(model, noise, ctx, pooled, so).to(torch::kFloat32);
    if (bar) bar->finish();
  }

  // 5. Decode and write.
  VaeLoadOptions vo;
  vo.part = VaePart::Decoder;
  vo.device = o.device;
  auto vae = load_vae(vae_dir, vo);
  if (o.vae_tile != 0 && o.vae_tile < 8 * factor)
    throw Error("VAE tile of " + std::to_string(o.vae_tile) + " pixels: give 0 (no tiling) or at least " +
                std::to_string(8 * factor) + " (8 latent pixels)");
  VaeTiling tiling;
  tiling.tile = o.vae_tile / factor;
  tiling.overlap = tiling.tile / 4;
  torch::Tensor images;
  {
    torch::NoGradGuard no_grad;
    AutocastGuard autocast(o.bf16, o.device, /*allow_cpu=*/true);  // as the denoiser: bf16 products, float32 picture
    images = decode_tiled(*vae, vae->from_denoiser(latents), tiling).to(torch::kFloat32).clamp(-1, 1).to(torch::kCPU);
  }
  if (auto parent = fs::path(o.out).parent_path(); !parent.empty()) fs::create_directories(parent);
  save_png(o.out, o.batch == 1 ? tensor_to_image(images[0]) : make_grid(images));
  return {images, o.out};
}

}  // namespace luminars

#include "pipeline/pipeline.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "core/allocator.h"
#include "core/autocast.h"
#include "core/device.h"
#include "core/number_text.h"
#include "core/image_tensor.h"
#include "core/progress.h"
#include "core/streamed_weights.h"
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/bf16_weights.h"
#include "model/checkpoint.h"
#include "model/lora_file.h"
#include "pipeline/inpainting.h"
#include "pipeline/lora_prompt.h"
#include "pipeline/text_lora.h"
#include "text/text_encoder.h"
#include "vae/vae.h"
#include "vae/vae_tiling.h"

namespace luminars {

namespace fs = std::filesystem;

struct PromptEncoding {
  torch::Tensor ctx, pooled, null_ctx, null_pooled;  // [1,L,D], [1,D] each: prompt and negative prompt
};

// Everything a request resolves to once the folder's defaults are applied and every field checked.
struct RequestSettings {
  int64_t steps = 12, batch = 1, width = 0, height = 0;
  double cfg_scale = 4, shift = 1;
  std::string sampler = "euler";
  std::optional<Image> init, mask;  // fitted to width × height
  int64_t first_width = 0, first_height = 0;  // two passes (hires fix): the first pass's size; 0: one pass
  double hires_strength = 0;
};

struct Latents {
  torch::Tensor x;    // [B,C,h,w] float32 in the denoiser's space
  RequestSettings settings;  // what the request resolved to (init image and mask fitted), for decode()
  std::vector<std::pair<std::string, std::string>> loras;  // name and short hash of each LoRA applied
};

// ---------------------------------------------------------------------------------------------
// The parts, loaded at construction (keep_loaded) or when needed.
// ---------------------------------------------------------------------------------------------
struct Pipeline::Parts {
  PipelineOptions options;
  ModelFolder folder;
  torch::Device device = torch::kCPU;
  std::string denoiser_path, text_encoder_dir, tokenizer_dir, vae_dir;
  Config config;
  VaeGeometry vae_geometry;

  std::optional<TextEncoder> text;
  std::optional<LuminaRS> denoiser;
  std::unique_ptr<Vae> decoder, encoder;

  TextEncoder& text_encoder() {
    if (!text) {
      quant::KeepPacked keep(options.low_memory);  // quantized weights stay packed (low memory)
      text.emplace(TextEncoder::load(text_encoder_dir, tokenizer_dir, device));
      if (text->hidden_size() != config.text_dim)
        throw Error("the text encoder's hidden size " + std::to_string(text->hidden_size()) +
                    " differs from the denoiser's text_dim " + std::to_string(config.text_dim) + " (" + text_encoder_dir + ")");
    }
    return *text;
  }
  LuminaRS& model() {
    if (!denoiser) {
      quant::KeepPacked keep(options.low_memory);  // quantized weights stay packed (low memory)
      denoiser.emplace(load_denoiser(denoiser_path, device));
      (*denoiser)->eval();
      // Sampling on the GPU runs under bf16 autocast: its weights become bf16 once, here, not
      // in every step (the CPU keeps float32 weights; its autocast casts them per generation).
      if (device.is_cuda() && options.bf16) cast_matmul_weights(*denoiser);
    }
    return *denoiser;
  }
  Vae& vae(VaePart part) {
    auto& slot = part == VaePart::Decoder ? decoder : encoder;
    if (!slot) {
      quant::KeepPacked keep(options.low_memory);  // quantized weights stay packed (low memory)
      VaeLoadOptions vo;
      vo.part = part;
      vo.device = device;
      slot = load_vae(vae_dir, vo);
    }
    return *slot;
  }
  // Low-memory mode: a part is released as soon as its step is done.
  template <typename T>
  void release(T& part) {
    if (options.keep_loaded) return;
    part.reset();
    if (options.low_memory) trim_freed_memory();
  }

  // LoRA files read once each (re-read when the file changes), the base's hash computed once.
  struct CachedLora {
    fs::file_time_type stamp;
    std::shared_ptr<const LoraFile> file;
    std::string short_hash;
  };
  std::map<std::string, CachedLora> lora_files;
  std::string base_hash;
  const CachedLora& lora_file(const std::string& path);
  // Attaches `loras` to the loaded denoiser (replacing any earlier ones); returns name and hash of each.
  std::vector<std::pair<std::string, std::string>> apply_loras(const std::vector<LoraSpec>& loras);
  // Attaches the text-encoder layers (text) or the denoiser's of `loras` to `targets`, replacing any
  // earlier ones; returns name and hash of each LoRA. A refused file leaves none attached.
  std::vector<std::pair<std::string, std::string>> attach_loras(const std::vector<LoraTarget>& targets,
                                                                const std::vector<LoraSpec>& loras, bool text);

  int64_t factor() const { return vae_geometry.downscale_factor; }
  int64_t multiple() const { return vae_geometry.downscale_factor * config.size_multiple(); }

  RequestSettings resolve(const GenerationRequest& r) const;
  void resolve_hires(const GenerationRequest& r, RequestSettings& s) const;
  // Latents [B,C,h,w] in the denoiser's space → pictures [B,3,H,W] in [-1, 1], float32 on the device
  // (tiled when large); pictures → the VAE encoder's mean latents in the denoiser's space.
  torch::Tensor to_pixels(const torch::Tensor& latents);
  torch::Tensor to_latents(const torch::Tensor& pixels);
  SizeRule size_rule() const { return {multiple(), 4096, folder.trained_sizes}; }
  SizeRule size_rule(const GenerationRequest& r) const { return widen_for_loras(size_rule(), request_loras(r, options.lora_dir)); }
};

const Pipeline::Parts::CachedLora& Pipeline::Parts::lora_file(const std::string& path) {
  std::error_code ec;
  const auto stamp = fs::last_write_time(path, ec);
  if (ec) throw Error("LoRA file " + path + " does not exist");
  auto it = lora_files.find(path);
  if (it == lora_files.end() || it->second.stamp != stamp) {
    auto file = std::make_shared<const LoraFile>(read_lora_file(path));
    it = lora_files.insert_or_assign(path, CachedLora{stamp, file, lora_file_short_hash(path)}).first;
  }
  return it->second;
}

std::vector<std::pair<std::string, std::string>> Pipeline::Parts::attach_loras(const std::vector<LoraTarget>& targets,
                                                                            const std::vector<LoraSpec>& loras, bool text) {
  detach_lora(targets);
  std::vector<std::pair<std::string, std::string>> used;
  if (loras.empty()) return used;
  if (base_hash.empty()) base_hash = denoiser_lora_identity(denoiser_path);
  try {
    for (const auto& spec : loras) {  // checked by loras_of
      const auto& cached = lora_file(spec.path);
      check_lora_base(*cached.file, fs::path(folder.dir).filename().string(), base_hash);
      attach_lora(targets, lora_part(cached.file->tensors, text), spec.weight, "LoRA file " + spec.path);
      used.emplace_back(lora_name(spec), cached.short_hash);
    }
  } catch (...) {
    detach_lora(targets);
    throw;
  }
  return used;
}

std::vector<std::pair<std::string, std::string>> Pipeline::Parts::apply_loras(const std::vector<LoraSpec>& loras) {
  auto& m = model();
  auto used = attach_loras(lora_targets(m), loras, /*text=*/false);
  if (options.fuse_loras && !used.empty()) fuse_lora(m);
  return used;
}

RequestSettings Pipeline::Parts::resolve(const GenerationRequest& r) const {
  RequestSettings s;
  s.steps = r.steps.value_or(folder.sampler.steps);
  s.cfg_scale = r.cfg_scale.value_or(folder.sampler.cfg_scale);
  s.shift = r.shift.value_or(folder.sampler.shift);
  s.sampler = r.sampler.value_or(folder.sampler.method);
  s.batch = r.batch;
  sampler_from_name(s.sampler);  // throws for unknown names
  if (s.batch < 1 || s.batch > 64) throw Error("batch must be between 1 and 64, got " + std::to_string(s.batch));
  if (s.steps < 1 || s.steps > 1000) throw Error("steps must be between 1 and 1000, got " + std::to_string(s.steps));
  if (!(s.cfg_scale >= 0 && s.cfg_scale <= 100)) throw Error("guidance scale must be between 0 and 100, got " + format_number(s.cfg_scale));
  if (!(s.shift > 0 && s.shift <= 100)) throw Error("shift must be in (0, 100], got " + format_number(s.shift));
  if (r.mask && !r.init_image) throw Error("a mask needs an init image (inpainting)");
  if (r.init_image && r.init_image->empty()) throw Error("the init image is empty");
  if (r.init_image && !(r.strength > 0 && r.strength <= 1))
    throw Error("strength must be in (0, 1], got " + format_number(r.strength));
  if (r.mask_blur < 0 || r.mask_blur > 256) throw Error("mask blur must be between 0 and 256 pixels, got " + std::to_string(r.mask_blur));
  if (r.mask && (r.mask->width != r.init_image->width || r.mask->height != r.init_image->height))
    throw Error("the mask is " + std::to_string(r.mask->width) + "x" + std::to_string(r.mask->height) + " but the init image is " +
                std::to_string(r.init_image->width) + "x" + std::to_string(r.init_image->height));

  const int64_t m = multiple();
  auto side = [&](const std::optional<int64_t>& asked, int init_side) {
    if (asked) return *asked;
    if (r.init_image) return std::max<int64_t>(m, init_side / m * m);  // the init image's size, rounded down
    return folder.resolution;
  };
  s.width = side(r.width, r.init_image ? r.init_image->width : 0);
  s.height = side(r.height, r.init_image ? r.init_image->height : 0);
  const SizeRule rule = size_rule();
  for (auto [name, v] : {std::pair<const char*, int64_t>{"width", s.width}, {"height", s.height}})
    if (auto error = size_error(name, v, rule); !error.empty()) throw Error(error);
  if (r.init_image) s.init = resize_to_cover(*r.init_image, static_cast<int>(s.width), static_cast<int>(s.height));
  if (r.mask) s.mask = resize_to_cover(*r.mask, static_cast<int>(s.width), static_cast<int>(s.height));
  resolve_hires(r, s);
  return s;
}

// Two passes when the request (or else the folder) asks for them and the picture is larger than
// the first pass: the first pass keeps the picture's proportions, its longer side `from`, each side
// rounded to the size step (trained: the folder's sizes and the request's LoRAs'). A folder's
// default that finds no trained first size draws in one pass; a request's own hires_from is
// refused then.
void Pipeline::Parts::resolve_hires(const GenerationRequest& r, RequestSettings& s) const {
  const int64_t from = r.hires_from.value_or(folder.sampler.hires_from);
  const double strength = r.hires_strength.value_or(folder.sampler.hires_strength);
  if (from < 0 || from > 4096) throw Error("hires fix: the first pass's side must be 0 (one pass) to 4096 pixels, got " + std::to_string(from));
  if (!(strength > 0 && strength <= 1)) throw Error("hires fix: strength must be in (0, 1], got " + format_number(strength));
  if (r.hires_from && *r.hires_from > 0 && r.init_image)
    throw Error("hires fix draws text-to-image pictures in two passes; this request has an init image");
  const int64_t longer = std::max(s.width, s.height);
  if (from == 0 || r.init_image || longer <= from) return;
  const int64_t m = multiple();
  auto first_side = [&](int64_t v) {
    return std::max<int64_t>(m, static_cast<int64_t>(std::llround(static_cast<double>(v) * from / longer / m)) * m);
  };
  const int64_t w = first_side(s.width), h = first_side(s.height);
  SizeRule rule = size_rule();
  bool widened = false;  // the request's LoRAs' trained sizes count as trained (read only when needed)
  for (auto [name, v] : {std::pair<const char*, int64_t>{"width", w}, {"height", h}}) {
    std::string error = size_error(std::string("hires fix: the first pass's ") + name, v, rule);
    if (error.empty() && !widened && !is_trained_size(v, rule)) {
      rule = size_rule(r);
      widened = true;
    }
    if (error.empty() && !(r.hires_from && r.hires_any_size) && !is_trained_size(v, rule))
      error = "hires fix: the first pass's " + std::string(name) + " " + std::to_string(v) + " is not a size the model was trained at (" +
              join_sizes(rule.trained) + ")";
    if (error.empty()) continue;
    if (r.hires_from) throw Error(error);
    return;  // the folder's default does not apply to this size
  }
  s.first_width = w;
  s.first_height = h;
  s.hires_strength = strength;
}

torch::Tensor Pipeline::Parts::to_pixels(const torch::Tensor& latents) {
  torch::Tensor images;
  {
    auto& v = vae(VaePart::Decoder);
    VaeTiling tiling;
    tiling.tile = options.vae_tile / factor();
    tiling.overlap = tiling.tile / 4;
    AutocastGuard autocast(options.bf16, device, /*allow_cpu=*/true);  // bf16 products, float32 picture
    images = decode_tiled(v, v.from_denoiser(latents), tiling).to(torch::kFloat32).clamp(-1, 1);
  }
  release(decoder);
  return images;
}

torch::Tensor Pipeline::Parts::to_latents(const torch::Tensor& pixels) {
  torch::Tensor z;
  {
    AutocastGuard autocast(options.bf16, device, /*allow_cpu=*/true);
    auto& v = vae(VaePart::Encoder);
    z = v.to_denoiser(v.encode(pixels.to(device)).mean.to(torch::kFloat32));
  }
  release(encoder);
  return z;
}

Pipeline::Pipeline(PipelineOptions options) : parts_(std::make_unique<Parts>()) {
  auto& p = *parts_;
  p.options = std::move(options);
  if (p.options.low_memory) return_freed_memory_promptly();
  p.folder = ModelFolder::load(p.options.model_dir);
  auto pick = [&](const std::string& override_path, const std::string& component) {
    return override_path.empty() ? p.folder.path_of(component) : override_path;
  };
  p.denoiser_path = pick(p.options.denoiser, p.folder.denoiser);
  p.text_encoder_dir = pick(p.options.text_encoder, p.folder.text_encoder);
  p.tokenizer_dir = pick(p.options.tokenizer, p.folder.tokenizer);
  p.vae_dir = pick(p.options.vae, p.folder.vae);
  p.device = device_from_name(p.options.device);
  p.config = read_denoiser_config(p.denoiser_path);
  p.vae_geometry = read_vae_geometry(p.vae_dir);
  if (p.vae_geometry.latent_channels != p.config.latent_channels)
    throw Error("the VAE has " + std::to_string(p.vae_geometry.latent_channels) + " latent channels, the denoiser " +
                std::to_string(p.config.latent_channels) + " (" + p.vae_dir + ")");
  if (p.options.vae_tile != 0 && p.options.vae_tile < 8 * p.factor())
    throw Error("VAE tile of " + std::to_string(p.options.vae_tile) + " pixels: give 0 (no tiling) or at least " +
                std::to_string(8 * p.factor()) + " (8 latent pixels)");
  if (p.options.keep_loaded) {
    p.text_encoder();
    p.model();
    p.vae(VaePart::Decoder);
  }
}

Pipeline::~Pipeline() = default;

const ModelFolder& Pipeline::folder() const { return parts_->folder; }
std::string Pipeline::model_name() const { return fs::path(parts_->folder.dir).filename().string(); }
int64_t Pipeline::resolution() const { return parts_->folder.resolution; }
int64_t Pipeline::size_multiple() const { return parts_->multiple(); }
SizeRule Pipeline::size_rule() const { return parts_->size_rule(); }
SizeRule Pipeline::size_rule(const GenerationRequest& request) const { return parts_->size_rule(request); }

std::vector<LoraSpec> Pipeline::loras_of(const GenerationRequest& r) const { return request_loras(r, parts_->options.lora_dir); }

std::pair<int64_t, int64_t> Pipeline::output_size(const GenerationRequest& request) const {
  const RequestSettings s = parts_->resolve(request);
  return {s.width, s.height};
}

// ---------------------------------------------------------------------------------------------
// 1. Prompt → the denoiser's conditioning (and the negative prompt's, for guidance).
// ---------------------------------------------------------------------------------------------
std::shared_ptr<PromptEncoding> Pipeline::encode_prompt(const GenerationRequest& r) {
  auto& p = *parts_;
  torch::NoGradGuard no_grad;
  TextEncoding emb;
  {
    const auto targets = text_lora_targets(p.text_encoder().model());
    p.attach_loras(targets, loras_of(r), /*text=*/true);  // the request's text-encoder adapters, if any
    struct Detach {
      const std::vector<LoraTarget>& t;
      ~Detach() { detach_lora(t); }
    } detach{targets};
    emb = p.text_encoder().encode({strip_lora_tags(r.prompt), r.negative}, p.folder.penultimate);
  }
  p.release(p.text);
  auto out = std::make_shared<PromptEncoding>();
  out->ctx = emb.ctx.narrow(0, 0, 1);
  out->pooled = emb.pooled.narrow(0, 0, 1);
  out->null_ctx = emb.ctx.narrow(0, 1, 1);
  out->null_pooled = emb.pooled.narrow(0, 1, 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. Noise (or the init image's latent with noise) → latents, by the flow sampler.
// ---------------------------------------------------------------------------------------------
std::shared_ptr<Latents> Pipeline::denoise(const GenerationRequest& r, const PromptEncoding& prompt) {
  auto& p = *parts_;
  const RequestSettings s = p.resolve(r);
  const int64_t f = p.factor(), c = p.config.latent_channels;
  const bool two_pass = s.first_width > 0;
  torch::NoGradGuard no_grad;
  auto check_cancel = [&] {
    if (r.cancelled && r.cancelled()) throw Cancelled();
  };
  check_cancel();

  // Image i of the batch: noise from seed + i (the same noise on every device). Two passes: the
  // first pass's noise at its size from the same seeds, so its picture is the one-pass picture of
  // that size and seed.
  auto noise_of = [&](int64_t width, int64_t height) {
    std::vector<torch::Tensor> noises;
    for (int64_t i = 0; i < s.batch; ++i)
      noises.push_back(torch::randn({1, c, height / f, width / f}, make_generator(r.seed + static_cast<uint64_t>(i))));
    return torch::cat(noises).to(p.device);
  };
  auto noise = noise_of(s.width, s.height);

  // Image-to-image (and the second pass): start at the first time ≥ 1 − strength.
  auto times = sample_times(s.steps, s.shift);
  const float* ts = times.data_ptr<float>();
  auto first_step = [&](double strength) {
    int64_t k = 0;
    const float start = static_cast<float>(1.0 - strength);
    while (k < s.steps && ts[k] < start - 1e-6f) ++k;
    return k;
  };
  int64_t first = 0;
  if (s.init) first = first_step(r.strength);
  else if (two_pass) first = first_step(s.hires_strength);
  const int64_t n = s.steps - first + (two_pass ? s.steps : 0);  // steps over both passes

  std::unique_ptr<Progress> bar;
  if (p.options.progress && n > 0) {
    ProgressOptions po;
    po.unit = "step";
    bar = std::make_unique<Progress>(n, two_pass ? "sampling (two passes)" : "sampling", po);
  }
  int64_t done = 0;
  auto on_step = [&](int64_t, int64_t) {
    ++done;
    if (bar) bar->update();
    if (r.on_step) r.on_step(done, n);
    check_cancel();
  };
  auto rows = [&](const torch::Tensor& t) {
    std::vector<int64_t> shape = t.sizes().vec();
    shape[0] = s.batch;
    return t.expand(shape).contiguous();
  };

  // The guided flow from x over `tail`, with the request's LoRAs attached for as long as it runs.
  std::vector<std::pair<std::string, std::string>> used_loras;
  auto flow = [&](const torch::Tensor& x, const torch::Tensor& tail, const StepHook& after_step) {
    auto& model = p.model();
    used_loras = p.apply_loras(loras_of(r));
    struct Detach {  // on every way out, before the model may be released
      LuminaRS* m;
      ~Detach() { detach_lora(*m); }
    } detach{&model};
    Guidance g;
    g.scale = s.cfg_scale;
    g.null_ctx = rows(prompt.null_ctx);
    g.null_pooled = rows(prompt.null_pooled);
    AutocastGuard autocast(p.options.bf16, p.device, /*allow_cpu=*/true);
    auto v = guided_velocity(model, rows(prompt.ctx), rows(prompt.pooled), g);
    return integrate_over(v, x, tail, sampler_from_name(s.sampler), on_step, after_step).to(torch::kFloat32);
  };

  torch::Tensor z0, keep;  // init latent [B,C,h,w]; inpainting: 1 where the latent is kept
  StepHook after_step;
  if (two_pass) {
    // First pass at its size; its pictures upscaled (bicubic) to the picture's size and encoded.
    auto low = flow(noise_of(s.first_width, s.first_height), times, {});
    p.release(p.denoiser);
    namespace F = torch::nn::functional;
    auto pixels = F::interpolate(p.to_pixels(low), F::InterpolateFuncOptions()
                                                       .size(std::vector<int64_t>{s.height, s.width})
                                                       .mode(torch::kBicubic)
                                                       .align_corners(false))
                      .clamp(-1, 1);
    z0 = p.to_latents(pixels);
    check_cancel();
  } else if (s.init) {
    z0 = p.to_latents(image_to_tensor(*s.init).unsqueeze(0)).expand({s.batch, -1, -1, -1}).contiguous();
    if (s.mask) {
      keep = 1 - latent_mask(soft_mask(*s.mask, r.mask_blur), f).to(p.device);  // [1,1,h,w]
      after_step = [&](const torch::Tensor& x, float t) { return x * (1 - keep) + interpolate(z0, noise, torch::full({1}, t)) * keep; };
    }
  }
  const float t0 = ts[first];
  auto x = z0.defined() ? interpolate(z0, noise, torch::full({1}, t0)) : noise;
  if (after_step) x = after_step(x, t0);
  auto out = flow(x, times.narrow(0, first, s.steps + 1 - first), after_step);
  if (bar) bar->finish();
  p.release(p.denoiser);
  auto result = std::make_shared<Latents>();
  result->x = out;
  result->settings = s;
  result->loras = std::move(used_loras);
  return result;
}

// ---------------------------------------------------------------------------------------------
// 3. Latents → pictures (tiled when large); inpainting composites the kept region back.
// ---------------------------------------------------------------------------------------------
Generation Pipeline::decode(const GenerationRequest& r, const Latents& latents) {
  auto& p = *parts_;
  const RequestSettings& s = latents.settings;
  torch::Tensor images;
  {
    torch::NoGradGuard no_grad;
    images = p.to_pixels(latents.x).to(torch::kCPU);
  }
  if (s.mask) {
    auto m = soft_mask(*s.mask, r.mask_blur);  // [1,1,H,W], 1 = repainted
    images = images * m + image_to_tensor(*s.init).unsqueeze(0) * (1 - m);
  }

  Generation g;
  for (int64_t i = 0; i < images.size(0); ++i) {
    g.images.push_back(tensor_to_image(images[i]));
    GenerationParameters gp;
    gp.prompt = r.prompt;
    // LoRAs given beside the prompt are recorded in it as tags, as AUTOMATIC1111 records every LoRA.
    for (const auto& spec : r.loras) gp.prompt += " <lora:" + lora_name(spec) + ":" + format_number(spec.weight) + ">";
    gp.lora_hashes = latents.loras;
    gp.negative = r.negative;
    gp.steps = s.steps;
    gp.sampler = s.sampler;
    gp.cfg_scale = s.cfg_scale;
    gp.seed = r.seed + static_cast<uint64_t>(i);
    gp.width = s.width;
    gp.height = s.height;
    gp.model = model_name();
    if (s.init) gp.strength = r.strength;
    if (s.first_width > 0) {
      gp.first_width = s.first_width;
      gp.first_height = s.first_height;
      gp.strength = s.hires_strength;
    }
    if (s.mask) gp.mask_blur = r.mask_blur;
    gp.shift = s.shift;
    g.parameters.push_back(gp);
  }
  return g;
}

Generation Pipeline::generate(const GenerationRequest& r) {
  parts_->resolve(r);  // every field checked before anything is loaded
  loras_of(r);
  auto prompt = encode_prompt(r);
  auto latents = denoise(r, *prompt);
  return decode(r, *latents);
}

}  // namespace luminars

#include "model/luminars.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/shape.h"
#include "core/module_state.h"

namespace luminars {

namespace nn = torch::nn;

torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto f = torch::exp(-std::log(10000.0) *
                      torch::arange(half, torch::TensorOptions().dtype(torch::kFloat32).device(t.device())) /
                      static_cast<double>(half));
  auto a = (1000.0 * t.to(torch::kFloat32)).unsqueeze(1) * f.unsqueeze(0);  // [B,half]
  return torch::cat({a.cos(), a.sin()}, 1);                                 // [B,dim]
}

LuminaRSImpl::LuminaRSImpl(const Config& config) : cfg(config) {
  cfg.validate();
  const int64_t e = cfg.embed_dim, c0 = cfg.widths[0], dt = cfg.text_dim;
  time_embed = register_module("time_embed", nn::Sequential(nn::Linear(cfg.freq_dim, e), nn::SiLU(), nn::Linear(e, e)));
  pooled_embed = register_module("pooled_embed", nn::Linear(dt, e));
  recursion_embed = register_module("recursion_embed", nn::Embedding(cfg.max_recursions, e));
  context_embed = register_module(
      "context_embed", nn::Sequential(nn::LayerNorm(nn::LayerNormOptions({dt}).eps(1e-6)), nn::Linear(dt, 2 * dt),
                                      nn::GELU(), nn::Linear(2 * dt, dt)));
  stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(cfg.latent_channels, c0, /*kernel_size=*/3).padding(1)));
  unet = register_module("unet", UNet(cfg));
  head_norm = register_module("head_norm", ChannelNorm(c0));
  head = register_module("head", nn::Conv2d(nn::Conv2dOptions(c0, cfg.latent_channels, /*kernel_size=*/3).padding(1)));
  torch::NoGradGuard no_grad;
  recursion_embed->weight.normal_(0.0, 0.02);
}

namespace {

// x [B,C,H,W] with B = batch, t [B], recursions within the configuration.
void check_latents(const Config& cfg, const torch::Tensor& x, const torch::Tensor& t, int64_t batch,
                   const ForwardOptions& o) {
  if (x.dim() != 4 || x.size(1) != cfg.latent_channels)
    throw Error("denoiser input x must be [B," + std::to_string(cfg.latent_channels) + ",H,W], got " + shape_of(x));
  cfg.validate_latent_size(x.size(2), x.size(3));
  if (x.size(0) != batch)
    throw Error("denoiser input x " + shape_of(x) + " has a batch of " + std::to_string(x.size(0)) +
                " but the prompt one of " + std::to_string(batch));
  const int64_t B = batch;
  if (t.dim() != 1 || t.size(0) != B) throw Error("denoiser input t must be [" + std::to_string(B) + "], got " + shape_of(t));
  if (o.recursions < 0 || o.recursions > cfg.max_recursions)
    throw Error("recursions = " + std::to_string(o.recursions) + " must be between 1 and max_recursions = " +
                std::to_string(cfg.max_recursions));
}

// ctx [B,L,D], pooled [B,D], mask [B,L] or undefined.
void check_prompt(const Config& cfg, const torch::Tensor& ctx, const torch::Tensor& pooled, const torch::Tensor& mask,
                  int64_t B) {
  if (ctx.dim() != 3 || ctx.size(0) != B || ctx.size(2) != cfg.text_dim)
    throw Error("denoiser input ctx must be [" + std::to_string(B) + ",L," + std::to_string(cfg.text_dim) + "], got " +
                shape_of(ctx));
  if (pooled.dim() != 2 || pooled.size(0) != B || pooled.size(1) != cfg.text_dim)
    throw Error("denoiser input pooled must be [" + std::to_string(B) + "," + std::to_string(cfg.text_dim) + "], got " +
                shape_of(pooled));
  if (mask.defined() && (mask.dim() != 2 || mask.size(0) != B || mask.size(1) != ctx.size(1)))
    throw Error("denoiser mask must be [" + std::to_string(B) + "," + std::to_string(ctx.size(1)) + "], got " +
                shape_of(mask));
}

}  // namespace

PromptState LuminaRSImpl::encode_prompt(const torch::Tensor& ctx, const torch::Tensor& pooled,
                                        const torch::Tensor& mask) {
  check_prompt(cfg, ctx, pooled, mask, ctx.dim() == 3 ? ctx.size(0) : -1);
  PromptState p;
  p.batch = ctx.size(0);
  p.tokens = ctx.size(1);
  p.pooled_emb = pooled_embed(pooled);                       // [B,E]
  auto c = context_embed->forward(ctx);                      // [B,L,D]
  p.bias = attention_bias(mask, c);                          // [B,1,L] or undefined
  p.text = unet->project_text(c);
  return p;
}

torch::Tensor LuminaRSImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& ctx,
                                    const torch::Tensor& pooled, const ForwardOptions& o) {
  check_latents(cfg, x, t, x.dim() == 4 ? x.size(0) : -1, o);
  check_prompt(cfg, ctx, pooled, o.mask, x.size(0));
  return forward(x, t, encode_prompt(ctx, pooled, o.mask), o);
}

torch::Tensor LuminaRSImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const PromptState& prompt,
                                    const ForwardOptions& o) {
  check_latents(cfg, x, t, prompt.batch, o);
  const int64_t passes = o.recursions > 0 ? o.recursions : cfg.recursions;
  auto emb = time_embed->forward(timestep_features(t, cfg.freq_dim).to(x.scalar_type())) + prompt.pooled_emb;  // [B,E]
  // Channels-last from here on: channel LayerNorms, pointwise MLPs and attention read NHWC views.
  // The residual stream z stays in x's dtype (float32) under bf16 autocast; only products round.
  auto z = stem(x.contiguous(torch::MemoryFormat::ChannelsLast)).to(x.scalar_type());
  for (int64_t k = 0; k < passes; ++k) {
    auto emb_act = torch::silu(emb + recursion_embed->weight[k]);  // each block's ada input
    if (o.grad_last_recursion_only && k + 1 < passes && torch::GradMode::is_enabled()) {
      torch::NoGradGuard no_grad;
      z = z + unet(z, emb_act, prompt.text, prompt.bias);
    } else {
      z = z + unet(z, emb_act, prompt.text, prompt.bias);
    }
  }
  return head(head_norm(z)).to(x.scalar_type()).contiguous();
}

std::map<std::string, int64_t> parameter_budget(LuminaRS& m) {
  auto n = [](std::initializer_list<const nn::Module*> mods) {
    int64_t s = 0;
    for (auto* mod : mods) s += count_parameters(*mod);
    return s;
  };
  auto& u = *m->unet;
  int64_t enc = n({m->stem.get()}), dec = n({u.out.get(), m->head_norm.get(), m->head.get()});
  for (auto& l : u.down) enc += count_parameters(*l);
  for (auto& d : u.downsample) enc += count_parameters(*d);
  for (auto& l : u.up) dec += count_parameters(*l);
  for (auto& d : u.upsample) dec += count_parameters(*d);
  return {{"encoder", enc},
          {"bottleneck", count_parameters(*u.mid)},
          {"decoder", dec},
          {"embeds", n({m->time_embed.get(), m->pooled_embed.get(), m->recursion_embed.get(), m->context_embed.get()})},
          {"total", count_parameters(*m)}};
}

}  // namespace luminars

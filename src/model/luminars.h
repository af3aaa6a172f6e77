// LuminaRS: the denoiser (reference class LuminaRS). Predicts the flow-matching velocity
// v = x_clean − noise of noisy latents x_t at time t ∈ [0,1] (0 = noise, 1 = clean).
//   emb = time_embed(features(t)) + pooled_embed(pooled);  ctx = context_embed(ctx)
//   z = stem(x_t);  T times: z = z + unet(z, emb + recursion_embed[k], ctx)
//   v = head(head_norm(z))
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/unet.h"

namespace luminars {

// [cos | sin] of 1000·t at frequencies exp(−ln(10000)·i/(dim/2)), i < dim/2: t [B] -> [B,dim].
torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim);

struct ForwardOptions {
  torch::Tensor mask;              // [B,L] bool, true = attend; undefined = every token
  int64_t recursions = 0;          // 0 = config.recursions
  bool grad_last_recursion_only = false;  // training: earlier passes run without autograd
};

// Everything the denoiser derives from the prompt alone: computed once per generation by
// encode_prompt(), then reused by every step and recursion.
struct PromptState {
  torch::Tensor pooled_emb;   // pooled_embed(pooled) [B,E]
  torch::Tensor bias;         // attention_bias(mask) [B,1,L], or undefined
  std::vector<TextKV> text;   // every cross-attention's keys and values of context_embed(ctx)
  int64_t batch = 0, tokens = 0;
};

struct LuminaRSImpl : torch::nn::Module {
  explicit LuminaRSImpl(const Config& cfg = Config{});

  // x [B,C,H,W], t [B], ctx [B,L,D], pooled [B,D] -> velocity [B,C,H,W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& ctx,
                        const torch::Tensor& pooled, const ForwardOptions& options = {});
  // The same function in two parts: ctx [B,L,D], pooled [B,D], mask [B,L] or undefined -> state;
  // then x [B,C,H,W], t [B] -> velocity (options.mask is ignored: the state holds it).
  PromptState encode_prompt(const torch::Tensor& ctx, const torch::Tensor& pooled, const torch::Tensor& mask = {});
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const PromptState& prompt,
                        const ForwardOptions& options = {});

  const Config& config() const { return cfg; }

  Config cfg;
  torch::nn::Sequential time_embed{nullptr};     // .0 Linear(freq,E) .1 SiLU .2 Linear(E,E)
  torch::nn::Linear pooled_embed{nullptr};       // D -> E
  torch::nn::Embedding recursion_embed{nullptr}; // [max_recursions, E]
  torch::nn::Sequential context_embed{nullptr};  // .0 LayerNorm(D) .1 Linear(D,2D) .2 GELU .3 Linear(2D,D)
  torch::nn::Conv2d stem{nullptr};               // latent_channels -> widths[0], 3×3
  UNet unet{nullptr};
  ChannelNorm head_norm{nullptr};
  torch::nn::Conv2d head{nullptr};               // widths[0] -> latent_channels, 3×3
};
TORCH_MODULE(LuminaRS);

// Parameter counts per component, as `budget()` in the reference:
// encoder, bottleneck, decoder, embeds, total.
std::map<std::string, int64_t> parameter_budget(LuminaRS& model);

}  // namespace luminars

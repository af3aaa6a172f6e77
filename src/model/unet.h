// UNet: one shared-weight refinement pass of the denoiser (reference classes Level, Mid, UNet).
// Features at widths[0] in, the same shape out. Tensors: down.*, downsample.*, mid.*, up.*,
// upsample.*, out.* (out zero-initialised: every pass starts as the identity).
#pragma once
#include <torch/torch.h>

#include "model/blocks.h"
#include "model/config.h"

namespace luminars {

// Level: `blocks` at one width; decoder levels also fuse [x, skip] with the 1×1 conv `skip`.
struct LevelImpl : torch::nn::Module {
  LevelImpl(int64_t channels, int64_t depth, const Config& cfg, bool with_skip);
  torch::nn::Conv2d skip{nullptr};
  LoraSlot skip_lora;
  torch::nn::ModuleList blocks;
  std::vector<Block> block_list;  // typed view of `blocks`
};
TORCH_MODULE(Level);

// Mid: bottleneck blocks, then pre-norm multi-head self-attention (attn_norm, attn).
struct MidImpl : torch::nn::Module {
  MidImpl(int64_t channels, const Config& cfg);
  torch::nn::ModuleList blocks;
  std::vector<Block> block_list;
  torch::nn::LayerNorm attn_norm{nullptr};
  SelfAttention attn{nullptr};
};
TORCH_MODULE(Mid);

struct UNetImpl : torch::nn::Module {
  explicit UNetImpl(const Config& cfg);
  // ctx [B,L,D] (context-embedded) -> every block's keys and values, in the order forward() runs them.
  std::vector<TextKV> project_text(const torch::Tensor& ctx);
  // z [B,widths[0],H,W]; emb_act = silu(emb + recursion_embed[k]) [B,E]; text = project_text(ctx);
  // bias = attention_bias(mask) [B,1,L] or undefined.
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& emb_act, const std::vector<TextKV>& text,
                        const torch::Tensor& bias);
  std::vector<Level> down, up;
  std::vector<Downsample> downsample;
  std::vector<Upsample> upsample;
  Mid mid{nullptr};
  torch::nn::Conv2d out{nullptr};
  LoraSlot out_lora;
};
TORCH_MODULE(UNet);

}  // namespace luminars

// Building blocks of the denoiser; each mirrors the reference class of the same name
// (spec/luminars_reference.py) and registers the same tensor names.
// Shapes: B = batch, C = channels, H×W = spatial, L = text tokens, D = text_dim, E = embed_dim.
#pragma once
#include <torch/torch.h>

#include "core/upsample_conv.h"
#include "core/lora_slot.h"

namespace luminars {

// One cross-attention's view of the prompt: keys (already scaled by 1/√head_dim) and values of
// the text tokens, [B,L,head_dim] each. They depend on the prompt alone, so sampling computes
// them once per generation, not once per step and recursion.
struct TextKV {
  torch::Tensor key, value;
};

// A [B,L] bool mask (true = attend) as the additive attention bias [B,1,L] (0 or −∞) in `like`'s
// floating type; undefined stays undefined (every token attended).
torch::Tensor attention_bias(const torch::Tensor& mask, const torch::Tensor& like);

// ln(x), with x first converted to the affine parameters' dtype where they differ (bf16 autocast
// hands some norms bf16 activations; LayerNorm needs its input and parameters in one dtype).
torch::Tensor layer_norm(torch::nn::LayerNorm ln, const torch::Tensor& x);

// ChannelNorm: LayerNorm over the channel axis of an NCHW tensor (eps 1e-6). Tensors: ln.*
struct ChannelNormImpl : torch::nn::Module {
  ChannelNormImpl(int64_t channels, bool affine = true);
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,C,H,W]
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(ChannelNorm);

// CrossAttention: multi-query attention from image tokens to text tokens; C/head_dim query heads
// share one key head and one value head. Tensors: norm.*, q.weight, kv.weight, out.*
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t channels, int64_t text_dim, int64_t head_dim);
  // ctx [B,L,D] (already context-embedded) -> this layer's keys and values.
  TextKV project_text(const torch::Tensor& ctx);
  // x [B,C,H,W]; bias = attention_bias(mask) [B,1,L] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const TextKV& text, const torch::Tensor& bias);
  int64_t heads, head_dim;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear q{nullptr}, kv{nullptr}, out{nullptr};  // kv rows [0,hd) key, [hd,2hd) value
  LoraSlot q_lora, kv_lora, out_lora;  // adapters (model/lora.h); empty: the layers alone
};
TORCH_MODULE(CrossAttention);

// Block: ConvNeXt block with adaptive LayerNorm from the time embedding and a gated MLP, then
// cross-attention to the text. Tensors: dwconv.*, ada.* (zero-initialised), mlp_in.*, mlp_out.*, attn.*
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t channels, int64_t embed_dim, int64_t text_dim, int64_t head_dim);
  // x [B,C,H,W]; emb_act = silu(emb) [B,E]; text = attn->project_text(ctx); bias [B,1,L] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb_act, const TextKV& text,
                        const torch::Tensor& bias);
  torch::nn::Conv2d dwconv{nullptr};
  ChannelNorm norm{nullptr};  // no affine parameters
  torch::nn::Linear ada{nullptr};
  torch::nn::Conv2d mlp_in{nullptr}, mlp_out{nullptr};
  CrossAttention attn{nullptr};
  LoraSlot ada_lora, mlp_in_lora, mlp_out_lora;
};
TORCH_MODULE(Block);

// Downsample: channel LayerNorm + 2×2 stride-2 conv. Tensors: norm.ln.*, conv.*
struct DownsampleImpl : torch::nn::Module {
  DownsampleImpl(int64_t c_in, int64_t c_out);
  torch::Tensor forward(const torch::Tensor& x);
  ChannelNorm norm{nullptr};
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample);

// Upsample: channel LayerNorm + nearest ×2 + 3×3 conv. Tensors: norm.ln.*, conv.*
struct UpsampleImpl : torch::nn::Module {
  UpsampleImpl(int64_t c_in, int64_t c_out);
  torch::Tensor forward(const torch::Tensor& x);
  ChannelNorm norm{nullptr};
  torch::nn::Conv2d conv{nullptr};
  UpsampleConv3x3 upsample_conv;  // computes conv(nearest×2(·)) from conv's weights
};
TORCH_MODULE(Upsample);

// Bottleneck self-attention with nn.MultiheadAttention's tensor names:
// in_proj_weight [3C,C], in_proj_bias [3C], out_proj.weight [C,C], out_proj.bias [C].
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t channels, int64_t heads);
  torch::Tensor forward(const torch::Tensor& tokens);  // [B,H,W,C] -> [B,H,W,C]
  int64_t heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  LoraSlot in_proj_lora, out_proj_lora;  // in_proj's adapters take the module path "in_proj"
};
TORCH_MODULE(SelfAttention);

}  // namespace luminars

// The frozen VAE: diffusers' AutoencoderKL with its published tensor names, loaded from a diffusers
// `vae/` folder (config.json + diffusion_pytorch_model.safetensors in F32, F16 or BF16).
//   auto vae = luminars::AutoencoderKL::from_dir("sd3/vae", {.part = luminars::VaePart::Decoder});
//   auto images = vae->decode(vae->from_denoiser(latents));   // [B,3,8h,8w] in [-1,1]
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "vae/vae_blocks.h"
#include "vae/vae_config.h"

namespace luminars {

namespace vae {

// Encoder: conv_in, down_blocks.N, mid_block, conv_norm_out, SiLU, conv_out (-> mean and logvar,
// 2·latent_channels). [B,in_channels,H,W] -> [B,2·latent,H/f,W/f], f = downscale_factor.
struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const VaeConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;
  std::vector<DownEncoderBlock2D> down_list;
  UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Encoder);

// Decoder: conv_in, mid_block, up_blocks.N (up_blocks.0 is the widest, layers_per_block+1 resnets
// each), conv_norm_out, SiLU, conv_out. [B,latent,h,w] -> [B,out_channels,h·f,w·f].
struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const VaeConfig& cfg);
  torch::Tensor forward(const torch::Tensor& z);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks;
  std::vector<UpDecoderBlock2D> up_list;
  UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Decoder);

}  // namespace vae

// The diagonal Gaussian the encoder predicts per latent element.
struct VaePosterior {
  torch::Tensor mean, logvar;  // [B,latent,h,w]; logvar clamped to [-30, 20]
  torch::Tensor std() const { return torch::exp(0.5 * logvar); }
  // mean + std·ε with ε ~ N(0,1) from `generator` (the default generator when not given).
  torch::Tensor sample(std::optional<torch::Generator> generator = std::nullopt) const;
};

// Which half of the VAE to build and read: training data preparation needs only the encoder,
// generation only the decoder.
enum class VaePart {
  Both,
  Encoder,  // encoder.* and quant_conv.*
  Decoder,  // decoder.* and post_quant_conv.*
};

struct VaeLoadOptions {
  VaePart part = VaePart::Both;
  torch::Dtype dtype = torch::kFloat32;  // compute dtype; file tensors are converted to it
  torch::Device device = torch::kCPU;
};

struct AutoencoderKLImpl : torch::nn::Module {
  // Randomly initialised (PyTorch's default initialisation); every parameter frozen.
  explicit AutoencoderKLImpl(const VaeConfig& cfg, VaePart part = VaePart::Both);

  // images [B,in_channels,H,W] in [-1,1], H and W multiples of downscale_factor().
  // Throws when the VAE has no encoder (VaePart::Decoder). No autograd (the VAE is frozen).
  VaePosterior encode(const torch::Tensor& images);
  // latents [B,latent_channels,h,w] (VAE space, not the denoiser's) -> images, roughly in [-1,1].
  // Throws when the VAE has no decoder (VaePart::Encoder).
  torch::Tensor decode(const torch::Tensor& latents);

  torch::Tensor to_denoiser(const torch::Tensor& z) const;    // (z − shift)·scale
  torch::Tensor from_denoiser(const torch::Tensor& x) const;  // x/scale + shift

  int64_t downscale_factor() const { return cfg.downscale_factor(); }
  const VaeConfig& config() const { return cfg; }
  bool has_encoder() const { return !encoder.is_empty(); }
  bool has_decoder() const { return !decoder.is_empty(); }

  // Parameter counts: encoder.* and decoder.* alone, and everything built (quant convs included).
  int64_t encoder_parameters() const;
  int64_t decoder_parameters() const;
  int64_t total_parameters() const;

  VaeConfig cfg;
  vae::Encoder encoder{nullptr};            // absent with VaePart::Decoder
  vae::Decoder decoder{nullptr};            // absent with VaePart::Encoder
  torch::nn::Conv2d quant_conv{nullptr};    // 2·latent -> 2·latent, 1×1 (use_quant_conv, with the encoder)
  torch::nn::Conv2d post_quant_conv{nullptr};  // latent -> latent, 1×1 (use_post_quant_conv, with the decoder)
};

class AutoencoderKL : public torch::nn::ModuleHolder<AutoencoderKLImpl> {
 public:
  using torch::nn::ModuleHolder<AutoencoderKLImpl>::ModuleHolder;
  using Impl = AutoencoderKLImpl;

  // Loads a diffusers VAE folder: `dir`/config.json and `dir`/diffusion_pytorch_model.safetensors
  // (else diffusion_pytorch_model.fp16.safetensors). Legacy mid-block attention names
  // (query, key, value, proj_attn; 1×1-conv kernels) are accepted. Every tensor the model needs must
  // be present with its exact shape; with VaePart::Both no other tensor may be present, and with
  // one part the other part's tensors are not read.
  static AutoencoderKL from_dir(const std::string& dir, const VaeLoadOptions& options = {});
};

// The weights file from_dir reads in `dir`; throws naming the folder when there is none.
std::string vae_weights_path(const std::string& dir);

// Under q4_0, the VAE weights (by name) to store in q8_0 instead: the decoder's two
// highest-resolution up blocks and its output convolution, whose rounding shows directly as colour
// and line in the picture (README, "8-bit and 4-bit weights").
bool vae_keeps_eight_bits(const VaeConfig& config, const std::string& name);

}  // namespace luminars

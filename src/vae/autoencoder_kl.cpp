#include "vae/autoencoder_kl.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/weight_loader.h"
#include "core/streamed_weights.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"

namespace luminars {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv3x3(int64_t c_in, int64_t c_out) {
  return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, /*kernel_size=*/3).padding(1));
}

nn::GroupNorm norm_out(int64_t groups, int64_t channels) {
  return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(1e-6));
}

std::string shape_str(torch::IntArrayRef s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Current diffusers name of a tensor: the mid-block attention's legacy projections renamed.
std::string current_name(const std::string& name) {
  if (name.find("mid_block.attentions.") == std::string::npos) return name;
  static const std::pair<const char*, const char*> legacy[] = {
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return name;
  std::string base = name.substr(0, dot) + ".", leaf = name.substr(dot + 1);
  for (const auto& [old_part, new_part] : legacy)
    if (base.ends_with(old_part)) return base.substr(0, base.size() - std::strlen(old_part)) + new_part + leaf;
  return name;
}

bool is_attention_projection(const std::string& name) {
  if (name.find("mid_block.attentions.") == std::string::npos) return false;
  for (const char* p : {".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight"})
    if (name.ends_with(p)) return true;
  return false;
}

}  // namespace

namespace vae {

// ---------------------------------------------------------------------------------------------
// Encoder / Decoder
// ---------------------------------------------------------------------------------------------
EncoderImpl::EncoderImpl(const VaeConfig& cfg) {
  const auto& widths = cfg.block_out_channels;
  const int64_t groups = cfg.norm_num_groups, levels = cfg.levels();
  conv_in = register_module("conv_in", conv3x3(cfg.in_channels, widths[0]));
  int64_t c_out = widths[0];
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t c_in = c_out;
    c_out = widths[i];
    down_list.push_back(DownEncoderBlock2D(c_in, c_out, cfg.layers_per_block, groups, /*add_downsample=*/i + 1 < levels));
    down_blocks->push_back(down_list.back());
  }
  down_blocks = register_module("down_blocks", down_blocks);
  mid_block = register_module("mid_block", UNetMidBlock2D(widths.back(), groups, cfg.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out", norm_out(groups, widths.back()));
  conv_out = register_module("conv_out", conv3x3(widths.back(), 2 * cfg.latent_channels));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in(x);
  for (auto& block : down_list) h = block(h);
  h = mid_block(h);
  return conv_out(silu_temporary(group_norm(conv_norm_out, h)));
}

DecoderImpl::DecoderImpl(const VaeConfig& cfg) {
  std::vector<int64_t> widths(cfg.block_out_channels.rbegin(), cfg.block_out_channels.rend());  // widest first
  const int64_t groups = cfg.norm_num_groups, levels = cfg.levels();
  conv_in = register_module("conv_in", conv3x3(cfg.latent_channels, widths[0]));
  int64_t c_out = widths[0];
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t c_in = c_out;
    c_out = widths[i];
    up_list.push_back(UpDecoderBlock2D(c_in, c_out, cfg.layers_per_block + 1, groups, /*add_upsample=*/i + 1 < levels));
    quant::drop_init(*up_list.back());  // under low-memory loading: its init is not kept (the load fills it)
    up_blocks->push_back(up_list.back());
  }
  up_blocks = register_module("up_blocks", up_blocks);
  mid_block = register_module("mid_block", UNetMidBlock2D(widths[0], groups, cfg.mid_block_add_attention));
  quant::drop_init(*mid_block);
  conv_norm_out = register_module("conv_norm_out", norm_out(groups, widths.back()));
  conv_out = register_module("conv_out", conv3x3(widths.back(), cfg.out_channels));
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) {
  // One block's weights in float32 at a time under low-memory loading (core/streamed_weights.h).
  torch::Tensor h;
  {
    quant::WeightScope weights(*mid_block);
    h = mid_block(conv_in(z));
  }
  for (auto& block : up_list) {
    quant::WeightScope weights(*block);
    h = block(h);
  }
  return conv_out(silu_temporary(group_norm(conv_norm_out, h)));
}

}  // namespace vae

// ---------------------------------------------------------------------------------------------
// VaePosterior
// ---------------------------------------------------------------------------------------------
torch::Tensor VaePosterior::sample(std::optional<torch::Generator> generator) const {
  // A seeded generator lives on the CPU: draw there and move, so a seed gives the same noise on
  // every device.
  auto eps = generator ? torch::randn(mean.sizes(), *generator, mean.options().device(generator->device())).to(mean.device())
                       : torch::randn(mean.sizes(), mean.options());
  return mean + std() * eps;
}

// ---------------------------------------------------------------------------------------------
// AutoencoderKL
// ---------------------------------------------------------------------------------------------
AutoencoderKLImpl::AutoencoderKLImpl(const VaeConfig& config, VaePart part) : cfg(config) {
  cfg.validate();
  const int64_t L = cfg.latent_channels;
  const bool with_encoder = part != VaePart::Decoder, with_decoder = part != VaePart::Encoder;
  // Registration order is the published state-dict order: encoder, decoder, quant_conv, post_quant_conv.
  if (with_encoder) encoder = register_module("encoder", vae::Encoder(cfg));
  if (with_decoder) decoder = register_module("decoder", vae::Decoder(cfg));
  if (cfg.use_quant_conv && with_encoder)
    quant_conv = register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(2 * L, 2 * L, /*kernel_size=*/1)));
  if (cfg.use_post_quant_conv && with_decoder)
    post_quant_conv = register_module("post_quant_conv", nn::Conv2d(nn::Conv2dOptions(L, L, /*kernel_size=*/1)));
  for (auto& p : parameters()) p.set_requires_grad(false);
  eval();
}

VaePosterior AutoencoderKLImpl::encode(const torch::Tensor& images) {
  if (!has_encoder()) throw Error("this VAE was loaded without its encoder (VaePart::Decoder): encode() needs it");
  const int64_t f = downscale_factor();
  if (images.dim() != 4 || images.size(1) != cfg.in_channels || images.size(2) <= 0 || images.size(3) <= 0 ||
      images.size(2) % f != 0 || images.size(3) % f != 0)
    throw Error("VAE encode: images of shape " + shape_str(images.sizes()) + " are not [B," +
                std::to_string(cfg.in_channels) + ",H,W] with H and W positive multiples of " + std::to_string(f));
  torch::NoGradGuard no_grad;
  const auto& w = encoder->conv_in->weight;
  auto moments = encoder(images.to(w.device(), w.scalar_type()));  // [B,2L,h,w]
  if (quant_conv) moments = quant_conv(moments);
  auto parts = moments.chunk(2, 1);
  return {parts[0], parts[1].clamp(-30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& latents) {
  if (!has_decoder()) throw Error("this VAE was loaded without its decoder (VaePart::Encoder): decode() needs it");
  if (latents.dim() != 4 || latents.size(1) != cfg.latent_channels || latents.size(2) <= 0 || latents.size(3) <= 0)
    throw Error("VAE decode: latents of shape " + shape_str(latents.sizes()) + " are not [B," +
                std::to_string(cfg.latent_channels) + ",h,w]");
  torch::NoGradGuard no_grad;
  const auto& w = decoder->conv_in->weight;
  auto z = latents.to(w.device(), w.scalar_type());
  if (post_quant_conv) z = post_quant_conv(z);
  return decoder(z);
}

torch::Tensor AutoencoderKLImpl::to_denoiser(const torch::Tensor& z) const {
  return (z - cfg.shift_factor) * cfg.scaling_factor;
}

torch::Tensor AutoencoderKLImpl::from_denoiser(const torch::Tensor& x) const {
  return x / cfg.scaling_factor + cfg.shift_factor;
}

int64_t AutoencoderKLImpl::encoder_parameters() const { return encoder ? count_parameters(*encoder) : 0; }
int64_t AutoencoderKLImpl::decoder_parameters() const { return decoder ? count_parameters(*decoder) : 0; }
int64_t AutoencoderKLImpl::total_parameters() const { return count_parameters(*this); }

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------
std::string vae_weights_path(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"}) {
    auto p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return p.string();
  }
  throw Error((fs::path(dir) / "diffusion_pytorch_model.safetensors").string() +
              ": not found (a diffusers VAE folder holds its weights there)");
}

namespace {

bool in_part(const std::string& name, VaePart part) {
  switch (part) {
    case VaePart::Encoder: return starts_with(name, "encoder.") || starts_with(name, "quant_conv.");
    case VaePart::Decoder: return starts_with(name, "decoder.") || starts_with(name, "post_quant_conv.");
    case VaePart::Both: break;
  }
  return true;
}

}  // namespace

AutoencoderKL AutoencoderKL::from_dir(const std::string& dir, const VaeLoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw Error("VAE folder not found: " + dir);
  const auto config_path = (fs::path(dir) / "config.json").string();
  if (!fs::is_regular_file(config_path)) throw Error(config_path + ": not found (a diffusers VAE folder needs it)");
  AutoencoderKL vae(VaeConfig::from_file(config_path), options.part);
  const auto weights = vae_weights_path(dir);
  WeightLoadOptions lo;  // tensor by tensor from the mapped file: peak memory near the VAE's own size
  lo.rename = [part = options.part](const std::string& file_name) {
    auto name = current_name(file_name);
    return in_part(name, part) ? name : std::string();
  };
  lo.adapt = [](const std::string& name, torch::Tensor t) {
    if (is_attention_projection(name) && t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1)
      t = t.flatten(1);  // 1×1 conv kernel [C,C,1,1] -> linear weight [C,C]
    return t;
  };
  lo.streamed = [](const std::string& name) {
    return name.rfind("decoder.mid_block.", 0) == 0 || name.rfind("decoder.up_blocks.", 0) == 0;
  };
  load_module_state(*vae, safetensors::Reader(weights), lo);
  vae->to(options.device, options.dtype);
  return vae;
}

bool vae_keeps_eight_bits(const VaeConfig& config, const std::string& name) {
  if (name.rfind("decoder.conv_out.", 0) == 0) return true;
  const std::string prefix = "decoder.up_blocks.";
  if (name.rfind(prefix, 0) != 0) return false;
  const auto dot = name.find('.', prefix.size());
  const auto index = name.substr(prefix.size(), dot - prefix.size());
  if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 3) return false;
  return std::stoll(index) >= config.levels() - 2;
}

}  // namespace luminars

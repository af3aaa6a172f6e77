// Configuration of the frozen VAE: the fields of a diffusers `AutoencoderKL` config.json that
// shape the network, validated, with diffusers' defaults for absent fields.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminars {

struct VaeConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<int64_t> block_out_channels{64};  // encoder widths per level; decoder in reverse
  int64_t layers_per_block = 1;                 // encoder resnets per level (decoder: one more)
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  std::string act_fn = "silu";                  // only SiLU is supported
  bool use_quant_conv = true;                   // 1×1 conv on the encoder's moments
  bool use_post_quant_conv = true;              // 1×1 conv on the latents before the decoder
  bool mid_block_add_attention = true;
  double scaling_factor = 0.18215;
  double shift_factor = 0.0;                    // null in config.json reads as 0

  int64_t levels() const { return static_cast<int64_t>(block_out_channels.size()); }
  // Image sides are this many times the latent sides: 2^(levels-1).
  int64_t downscale_factor() const { return int64_t{1} << (levels() - 1); }

  // Throws luminars::Error naming the first field at fault.
  void validate() const;

  // diffusers-style JSON (with down/up block types), readable by from_json and by diffusers.
  std::string to_json(int indent = -1) const;
  // Validates; fields diffusers keeps for other purposes (sample_size, force_upcast, …) are ignored.
  static VaeConfig from_json(const std::string& text);
  static VaeConfig from_file(const std::string& path);  // errors name the path

  // Published VAEs without weights: "sd3" and "flux" (the 16-channel layout, each with its own
  // scaling and shift), "sd" (the 4-channel Stable Diffusion 1.x/2.x VAE, with quant convs).
  static VaeConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
  bool operator==(const VaeConfig&) const = default;
};

}  // namespace luminars

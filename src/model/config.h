// LuminaRS denoiser configuration: the fields of DEFAULT in spec/luminars_reference.py, as data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminars {

struct Config {
  int64_t latent_channels = 16;            // VAE latent channels (input and output of the denoiser)
  std::vector<int64_t> widths{192, 384, 768};  // channels per U-Net level
  std::vector<int64_t> depths{2, 2, 3};    // ConvNeXt blocks per level (encoder and decoder alike)
  int64_t mid_depth = 2;                   // blocks in the bottleneck, before its self-attention
  int64_t embed_dim = 768;                 // time/pooled embedding width
  int64_t text_dim = 768;                  // text encoder hidden size (ctx and pooled)
  int64_t head_dim = 64;                   // attention head width (cross and self)
  int64_t recursions = 2;                  // shared-weight refinement passes T
  int64_t max_recursions = 8;              // rows of recursion_embed
  int64_t freq_dim = 256;                  // sinusoidal time features

  int64_t levels() const { return static_cast<int64_t>(widths.size()); }
  // Latent sides must be divisible by this (2^(levels-1)).
  int64_t size_multiple() const { return int64_t{1} << (levels() - 1); }

  // Throws luminars::Error naming the first field at fault.
  void validate() const;
  // Throws when a latent of side H×W cannot pass through the U-Net.
  void validate_latent_size(int64_t height, int64_t width) const;

  std::string to_json(int indent = -1) const;
  static Config from_json(const std::string& text);   // validates; unknown fields are errors
  static Config from_file(const std::string& path);
  static Config preset(const std::string& name);      // "default", "small", "tiny"
  static std::vector<std::string> preset_names();
  bool operator==(const Config&) const = default;
};

}  // namespace luminars

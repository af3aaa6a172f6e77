// The VAE as the rest of the pipeline sees it: images to a posterior over latents and latents back
// to images, its downscale factor and latent channels, and the map to and from the denoiser's
// space. The class is chosen by `_class_name` in the folder's config.json, as diffusers does, so
// prepare, train and generate never name a VAE class.
//   auto vae = luminars::load_vae("sd3/vae", {.part = luminars::VaePart::Decoder});
//   auto images = vae->decode(vae->from_denoiser(latents));   // [B,3,f·h,f·w] in [-1,1]
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "vae/autoencoder_kl.h"

namespace luminars {

class Vae {
 public:
  virtual ~Vae() = default;
  // images [B,3,H,W] in [-1,1], H and W multiples of downscale_factor(); no autograd.
  virtual VaePosterior encode(const torch::Tensor& images) = 0;
  // latents [B,latent_channels,h,w] in the VAE's own space -> images, roughly in [-1,1]; no autograd.
  virtual torch::Tensor decode(const torch::Tensor& latents) = 0;
  virtual int64_t downscale_factor() const = 0;
  virtual int64_t latent_channels() const = 0;
  virtual double scaling_factor() const = 0;
  virtual double shift_factor() const = 0;
  virtual std::string class_name() const = 0;

  torch::Tensor to_denoiser(const torch::Tensor& z) const { return (z - shift_factor()) * scaling_factor(); }
  torch::Tensor from_denoiser(const torch::Tensor& x) const { return x / scaling_factor() + shift_factor(); }
};

// What a VAE folder's config.json says of its geometry, without reading weights.
struct VaeGeometry {
  std::string class_name;
  int64_t downscale_factor = 8, latent_channels = 4;
  double scaling_factor = 1, shift_factor = 0;
};
// Throws naming the file for a missing or unreadable config, or a `_class_name` the project does
// not implement (the error lists those it does).
VaeGeometry read_vae_geometry(const std::string& dir);

// Loads `dir` (config.json + weights) as the class its config names.
std::unique_ptr<Vae> load_vae(const std::string& dir, const VaeLoadOptions& options = {});

// Wraps a built AutoencoderKL (the trainer's, say) as a Vae.
std::unique_ptr<Vae> make_vae(AutoencoderKL model);

// Class names load_vae knows.
std::vector<std::string> vae_class_names();

}  // namespace luminars

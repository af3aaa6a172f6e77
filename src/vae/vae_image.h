// Images through the VAE: fitting an image to the VAE's size multiple, and the encode/decode round
// trip the `luminars vae roundtrip` command runs.
#pragma once
#include "core/image.h"
#include "vae/autoencoder_kl.h"

namespace luminars {

// Centre crop to the largest width and height that are multiples of `multiple` (no resampling).
// Throws naming `name` when a side is smaller than `multiple`.
Image crop_to_multiple(const Image& image, int64_t multiple, const std::string& name = "image");

// Crops `image` to the VAE's factor, encodes it (posterior mean) and decodes it back. A positive
// `latent_noise` adds Gaussian noise of that standard deviation to the latents in the denoiser's
// units (unit variance) before decoding: how forgiving the decoder is of a denoiser's small errors.
Image vae_roundtrip(AutoencoderKL& vae, const Image& image, const std::string& name = "image", double latent_noise = 0,
                    uint64_t seed = 0);

}  // namespace luminars

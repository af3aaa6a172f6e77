// Images through the VAE: fitting an image to the VAE's size multiple, and the encode/decode round
// trip the `luminars vae roundtrip` command runs.
#pragma once
#include "core/image.h"
#include "vae/autoencoder_kl.h"

namespace luminars {

// Centre crop to the largest width and height that are multiples of `multiple` (no resampling).
// Throws naming `name` when a side is smaller than `multiple`.
Image crop_to_multiple(const Image& image, int64_t multiple, const std::string& name = "image");

// Crops `image` to the VAE's factor, encodes it (posterior mean) and decodes it back.
Image vae_roundtrip(AutoencoderKL& vae, const Image& image, const std::string& name = "image");

}  // namespace luminars

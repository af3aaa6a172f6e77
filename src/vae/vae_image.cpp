#include "vae/vae_image.h"

#include "core/error.h"
#include "core/image_tensor.h"
#include "core/generator.h"

namespace luminars {

Image crop_to_multiple(const Image& image, int64_t multiple, const std::string& name) {
  const int m = static_cast<int>(multiple);
  const int w = image.width - image.width % m, h = image.height - image.height % m;
  if (w <= 0 || h <= 0)
    throw Error(name + " is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                ", smaller than the VAE's size multiple " + std::to_string(m));
  if (w == image.width && h == image.height) return image;
  return crop(image, (image.width - w) / 2, (image.height - h) / 2, w, h);
}

Image vae_roundtrip(AutoencoderKL& vae, const Image& image, const std::string& name, double latent_noise,
                    uint64_t seed) {
  auto x = image_to_tensor(crop_to_multiple(image, vae->downscale_factor(), name)).unsqueeze(0);  // [1,3,H,W]
  auto z = vae->encode(x).mean;
  if (latent_noise > 0) {  // noise in the denoiser's unit-variance units
    auto gen = make_generator(seed);
    z = vae->from_denoiser(vae->to_denoiser(z) + latent_noise * torch::randn(z.sizes(), gen));
  }
  auto decoded = vae->decode(z);
  return tensor_to_image(decoded[0]);
}

}  // namespace luminars

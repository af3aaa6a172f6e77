// luminars vae: inspect a diffusers VAE folder (info), pass an image through it (roundtrip) and
// measure its reconstruction PSNR over a folder (psnr).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "cli_validators.h"
#include "commands.h"
#include "core/error.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "train/image_set.h"
#include "train/vae_trainer.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_image.h"

namespace luminars::cli {

namespace {

std::string lower_extension(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}

void print_info(const std::string& dir) {
  const auto cfg = VaeConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(cfg);  // built without its weights: the counts come from the config
  std::printf("VAE %s (AutoencoderKL)\n", dir.c_str());
  std::printf("config  %s\n", cfg.to_json().c_str());
  std::printf("latents %lld channels, image side = %lld x latent side, to denoiser (z - %g) * %g\n\n",
              static_cast<long long>(cfg.latent_channels), static_cast<long long>(cfg.downscale_factor()),
              cfg.shift_factor, cfg.scaling_factor);
  const int64_t enc = vae->encoder_parameters(), dec = vae->decoder_parameters(), total = vae->total_parameters();
  const std::pair<const char*, int64_t> rows[] = {
      {"encoder", enc}, {"decoder", dec}, {"quant convs", total - enc - dec}, {"total", total}};
  std::printf("%-12s %14s\n", "component", "parameters");
  for (const auto& [name, n] : rows)
    std::printf("%-12s %14lld %9.2fM\n", name, static_cast<long long>(n), n / 1e6);
  std::string weights;
  try {
    weights = vae_weights_path(dir);
  } catch (const Error&) {
    std::printf("\nweights: none in %s\n", dir.c_str());
    return;
  }
  safetensors::Reader reader(weights);
  std::set<std::string> dtypes;
  std::size_t bytes = 0;
  for (const auto& t : reader.tensors()) {
    dtypes.insert(safetensors::dtype_name(t.dtype));
    bytes += t.nbytes;
  }
  std::string names;
  for (const auto& d : dtypes) names += (names.empty() ? "" : ", ") + d;
  std::printf("\nweights: %s (%zu tensors, %s, %.1f MB)\n", weights.c_str(), reader.tensors().size(), names.c_str(),
              bytes / 1e6);
}

}  // namespace

void register_vae(CLI::App& app, GlobalOptions& g) {
  auto* vae_cmd = app.add_subcommand("vae", "inspect a diffusers AutoencoderKL folder or pass an image through it");
  vae_cmd->require_subcommand(1);

  struct InfoOpts {
    std::string dir;
  };
  auto info = std::make_shared<InfoOpts>();
  auto* info_cmd = vae_cmd->add_subcommand("info", "print a VAE's config and its parameter counts (encoder, decoder)");
  info_cmd->add_option("--vae", info->dir, "diffusers VAE folder (config.json, diffusion_pytorch_model.safetensors)")
      ->required();
  info_cmd->callback([info, &g] {
    apply_global(g);
    print_info(info->dir);
  });

  struct RoundtripOpts {
    std::string dir, input, output;
    double latent_noise = 0;
    uint64_t seed = 0;
  };
  auto rt = std::make_shared<RoundtripOpts>();
  auto* rt_cmd = vae_cmd->add_subcommand(
      "roundtrip",
      "encode an image (posterior mean) and decode it again. The image is centre-cropped (not resized) to the largest "
      "width and height that are multiples of the VAE's factor (8 for the published VAEs); the result is a PNG.");
  rt_cmd->add_option("--vae", rt->dir, "diffusers VAE folder (config.json, diffusion_pytorch_model.safetensors)")
      ->required();
  rt_cmd->add_option("input", rt->input, "input image (PNG, JPEG, BMP, ...)")->required();
  rt_cmd->add_option("output", rt->output, "output .png (written atomically)")->required();
  rt_cmd->add_option("--latent-noise", rt->latent_noise,
                     "add Gaussian noise of this standard deviation to the unit-variance latents before decoding")
      ->check(CLI::Range(0.0, 10.0));
  rt_cmd->add_option("--seed", rt->seed, "seed of that noise")->check(fixed_seed());
  rt_cmd->callback([rt, &g] {
    apply_global(g);
    if (lower_extension(rt->output) != ".png") throw Error("output " + rt->output + " must be a .png file");
    const Image image = load_image(rt->input);
    auto vae = AutoencoderKL::from_dir(rt->dir);
    const Image out = vae_roundtrip(vae, image, rt->input, rt->latent_noise, rt->seed);
    save_png(rt->output, out);
    std::printf("%s (%dx%d) -> %s (%dx%d, latents %lldx%lldx%lld)\n", rt->input.c_str(), image.width, image.height,
                rt->output.c_str(), out.width, out.height, static_cast<long long>(vae->config().latent_channels),
                static_cast<long long>(out.height / vae->downscale_factor()),
                static_cast<long long>(out.width / vae->downscale_factor()));
  });

  struct PsnrOpts {
    std::string dir, data;
    int64_t resolution = 64, batch = 32;
    bool json = false;
  };
  auto ps = std::make_shared<PsnrOpts>();
  auto* ps_cmd = vae_cmd->add_subcommand(
      "psnr", "reconstruction PSNR (posterior mean, dB) over a folder of pictures, e.g. held-out images");
  ps_cmd->add_option("--vae", ps->dir, "diffusers VAE folder (config.json, diffusion_pytorch_model.safetensors)")
      ->required();
  ps_cmd->add_option("--data", ps->data, "image folder (imagefolder or sidecar layout; captions not needed)")
      ->required();
  ps_cmd->add_option("--resolution", ps->resolution, "pictures resized and centre-cropped to this side")
      ->check(CLI::Range(8, 4096))
      ->capture_default_str();
  ps_cmd->add_option("--batch", ps->batch, "images per pass")->check(CLI::Range(1, 4096))->capture_default_str();
  ps_cmd->add_flag("--json", ps->json, "print the result as JSON");
  ps_cmd->callback([ps, &g] {
    apply_global(g);
    auto vae = AutoencoderKL::from_dir(ps->dir);
    if (ps->resolution % vae->downscale_factor() != 0)
      throw Error("--resolution " + std::to_string(ps->resolution) + " is not a multiple of the VAE's factor " +
                  std::to_string(vae->downscale_factor()));
    DatasetOptions scan;
    scan.captions_required = false;
    const ImageSet images = ImageSet::load(Dataset::scan(ps->data, scan), ps->resolution, !ps->json);
    torch::NoGradGuard no_grad;
    double psnr = 0;
    for (int64_t s = 0; s < images.size(); s += ps->batch) {
      std::vector<int64_t> idx;
      for (int64_t i = s; i < std::min(images.size(), s + ps->batch); ++i) idx.push_back(i);
      auto x = images.batch(idx);
      psnr += mean_psnr(vae->decode(vae->encode(x).mean), x) * static_cast<double>(idx.size());
    }
    psnr /= static_cast<double>(images.size());
    if (ps->json) {
      std::cout << nlohmann::json{{"vae", ps->dir}, {"data", ps->data}, {"images", images.size()},
                                  {"resolution", ps->resolution}, {"psnr_db", psnr}}
                       .dump(2)
                << "\n";
      return;
    }
    std::printf("VAE %s on %s: %lld images at %lld px, mean PSNR %.2f dB\n", ps->dir.c_str(), ps->data.c_str(),
                static_cast<long long>(images.size()), static_cast<long long>(ps->resolution), psnr);
  });
}

}  // namespace luminars::cli

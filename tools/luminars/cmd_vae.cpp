// luminars vae: inspect a diffusers VAE folder (info) and pass an image through it (roundtrip).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "commands.h"
#include "core/error.h"
#include "core/image.h"
#include "core/safetensors.h"
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
  rt_cmd->callback([rt, &g] {
    apply_global(g);
    if (lower_extension(rt->output) != ".png") throw Error("output " + rt->output + " must be a .png file");
    const Image image = load_image(rt->input);
    auto vae = AutoencoderKL::from_dir(rt->dir);
    const Image out = vae_roundtrip(vae, image, rt->input);
    save_png(rt->output, out);
    std::printf("%s (%dx%d) -> %s (%dx%d, latents %lldx%lldx%lld)\n", rt->input.c_str(), image.width, image.height,
                rt->output.c_str(), out.width, out.height, static_cast<long long>(vae->config().latent_channels),
                static_cast<long long>(out.height / vae->downscale_factor()),
                static_cast<long long>(out.width / vae->downscale_factor()));
  });
}

}  // namespace luminars::cli

// Writes a model folder at the published sizes with random weights — CLIP ViT-L/14 text tower,
// the SD3/Flux 16-channel VAE, the default denoiser — to measure `luminars generate` (time and
// peak memory) without downloading anything: bench/generate_memory.sh.
// Usage: make_random_pipeline OUT_DIR TOKENIZER_DIR
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/module_state.h"
#include "core/tensor_io.h"
#include "model/checkpoint.h"
#include "pipeline/model_folder.h"
#include "text/clip_text_model.h"
#include "vae/autoencoder_kl.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_random_pipeline OUT_DIR TOKENIZER_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);

  // Text encoder: CLIPTextModelWithProjection, ViT-L/14.
  auto clip_cfg = luminars::ClipTextConfig::vit_l14();
  luminars::ClipTextModel clip(clip_cfg);
  clip->init_weights(0);
  fs::create_directories(out / "text_encoder");
  nlohmann::json cj{{"architectures", {"CLIPTextModelWithProjection"}},
                    {"vocab_size", clip_cfg.vocab_size},
                    {"hidden_size", clip_cfg.hidden_size},
                    {"intermediate_size", clip_cfg.intermediate_size},
                    {"num_hidden_layers", clip_cfg.num_hidden_layers},
                    {"num_attention_heads", clip_cfg.num_attention_heads},
                    {"max_position_embeddings", clip_cfg.max_position_embeddings},
                    {"projection_dim", clip_cfg.projection_dim},
                    {"hidden_act", clip_cfg.hidden_act},
                    {"layer_norm_eps", clip_cfg.layer_norm_eps},
                    {"bos_token_id", clip_cfg.bos_token_id},
                    {"eos_token_id", clip_cfg.eos_token_id},
                    {"pad_token_id", clip_cfg.pad_token_id}};
  std::ofstream(out / "text_encoder" / "config.json") << cj.dump(2);
  luminars::save_tensors((out / "text_encoder" / "model.safetensors").string(), luminars::module_state(*clip));

  // VAE: SD3/Flux layout.
  auto vae_cfg = luminars::VaeConfig::preset("sd3");
  luminars::AutoencoderKL vae(vae_cfg);
  fs::create_directories(out / "vae");
  std::ofstream(out / "vae" / "config.json") << vae_cfg.to_json(2);
  luminars::save_tensors((out / "vae" / "diffusion_pytorch_model.safetensors").string(), luminars::module_state(*vae));

  // Denoiser: the default preset, with its zero-initialised layers made non-zero.
  luminars::LuminaRS model(luminars::Config::preset("default"));
  for (auto& p : model->parameters())
    if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.02);
  fs::create_directories(out / "denoiser");
  luminars::save_denoiser(model, (out / "denoiser" / "model.safetensors").string());

  luminars::ModelFolder folder;
  folder.dir = out.string();
  folder.tokenizer = fs::absolute(argv[2]).string();
  folder.save();
  std::cout << "wrote " << out.string() << "\n";
  return 0;
}

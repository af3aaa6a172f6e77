// luminars train-vae: an AutoencoderKL from nothing on a folder of images, or a trained one's decoder
// fine-tuned with its latents unchanged (train/vae_trainer.h).
#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "loop_flags.h"
#include "train/vae_trainer.h"

namespace luminars::cli {

void register_train_vae(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<VaeTrainOptions>();
  auto f = std::make_shared<LoopFlags>();
  f->steps = 3000;
  f->lr = 2e-4;
  f->batch = 16;
  f->loop.warmup = 200;
  f->loop.checkpoint_every = 500;
  f->loop.validate_every = 250;
  f->loop.sample_every = 500;
  auto no_attention = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("train-vae", "train a VAE (diffusers AutoencoderKL layout) from nothing on an image folder, or fine-tune a trained one's decoder (--init --decoder-only)");
  cmd->add_option("--data", o->data_dir, "image folder: imagefolder (metadata.jsonl) or .txt captions")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--caption-column", o->caption_column, "metadata.jsonl caption column")->capture_default_str();
  cmd->add_option("--resolution", o->resolution, "training resolution in pixels")->capture_default_str()->check(CLI::Range(8, 4096));
  cmd->add_option("--widths", o->vae.block_out_channels, "channels per level (levels-1 halvings of the image side)")->capture_default_str()->expected(1, 8);
  cmd->add_option("--layers-per-block", o->vae.layers_per_block, "resnets per encoder level")->capture_default_str()->check(CLI::Range(1, 8));
  cmd->add_option("--latent-channels", o->vae.latent_channels, "latent channels")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--norm-groups", o->vae.norm_num_groups, "GroupNorm groups (must divide every width)")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_flag("--no-attention", *no_attention, "no self-attention in the middle block");
  cmd->add_option("--kl-weight", o->kl_weight, "weight of the per-element KL term")->capture_default_str()->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--edge-weight", o->edge_weight, "weight of the image-gradient L1 term")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_flag("--no-flip", [o](int64_t) { o->flip = false; }, "no random left-right mirroring");
  cmd->add_option("--init", o->init_dir, "start from this trained VAE folder (its config.json replaces --widths and the other shape flags)")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--decoder-only", o->decoder_only,
                "with --init: train the decoder only; the encoder, its latents and scaling stay as they were, so denoisers "
                "trained on them keep working");
  add_loop_flags(cmd, f);
  cmd->callback([o, f, no_attention, &g] {
    apply_global(g);
    o->vae.mid_block_add_attention = !*no_attention;
    o->batch_size = f->batch;
    o->val_fraction = f->val_fraction;
    if (launch_local_ranks(f->dist, g)) return;
    o->loop = loop_options_of(*f);
    o->loop.group = join_run(f->dist, g, o->loop.device);
    auto r = train_vae(*o);
    if (!r.run.finished || !writes_files(o->loop.group.get())) return;
    std::printf("trained the VAE%s %lld steps: held-out PSNR %.2f dB; scaling_factor %.5f, shift_factor %.5f; written to %s\n",
                o->decoder_only ? "'s decoder" : "", static_cast<long long>(r.run.global_step), r.psnr, r.scaling_factor, r.shift_factor, r.vae_dir.c_str());
  });
}

}  // namespace luminars::cli

// luminars train-clip: a CLIP from nothing on a captioned image folder (train/clip_trainer.h).
#include <cstdio>

#include "commands.h"
#include "loop_flags.h"
#include "train/clip_trainer.h"

namespace luminars::cli {

void register_train_clip(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<ClipTrainOptions>();
  auto f = std::make_shared<LoopFlags>();
  f->steps = 3000;
  f->lr = 5e-4;
  f->batch = 64;
  f->loop.warmup = 200;
  f->loop.weight_decay = 0.1;
  f->loop.checkpoint_every = 500;
  f->loop.validate_every = 250;
  f->loop.sample_every = 0;
  auto* cmd = app.add_subcommand("train-clip", "train a CLIP (text and image towers, Hugging Face layout) from nothing");
  cmd->add_option("--data", o->data_dir, "captioned image folder: imagefolder (metadata.jsonl) or .txt captions")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", o->tokenizer_dir, "tokenizer/ folder (vocab.json, merges.txt), e.g. from train-tokenizer")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--caption-column", o->caption_column, "metadata.jsonl caption column")->capture_default_str();
  cmd->add_option("--resolution", o->resolution, "image side for the image tower")->capture_default_str()->check(CLI::Range(8, 1024));
  cmd->add_option("--text-width", o->text_width, "text tower width")->capture_default_str()->check(CLI::Range(16, 4096));
  cmd->add_option("--text-layers", o->text_layers, "text tower layers")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--text-heads", o->text_heads, "text tower attention heads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--vision-width", o->vision_width, "image tower width")->capture_default_str()->check(CLI::Range(16, 4096));
  cmd->add_option("--vision-layers", o->vision_layers, "image tower layers")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--vision-heads", o->vision_heads, "image tower attention heads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--patch-size", o->patch_size, "image tower patch side")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--projection-dim", o->projection_dim, "shared embedding width")->capture_default_str()->check(CLI::Range(8, 4096));
  add_loop_flags(cmd, f);
  cmd->callback([o, f, &g] {
    apply_global(g);
    o->batch_size = f->batch;
    o->val_fraction = f->val_fraction;
    if (launch_local_ranks(f->dist, g)) return;
    o->loop = loop_options_of(*f);
    o->loop.group = join_run(f->dist, g, o->loop.device);
    auto r = train_clip(*o);
    if (!r.run.finished || !writes_files(o->loop.group.get())) return;
    const auto& m = r.heldout;
    std::printf("trained CLIP %lld steps; held-out retrieval over %lld images and %lld captions: image->text top-1 %.1f%% top-5 %.1f%%, "
                "text->image top-1 %.1f%% top-5 %.1f%% (chance %.1f%% / %.1f%%); written to %s, %s, %s\n",
                static_cast<long long>(r.run.global_step), static_cast<long long>(m.images), static_cast<long long>(m.captions),
                100 * m.image_to_text_top1, 100 * m.image_to_text_top5, 100 * m.text_to_image_top1, 100 * m.text_to_image_top5,
                100 * m.chance_text_to_image_top1, 100 * m.chance_text_to_image_top5, r.clip_dir.c_str(),
                r.text_encoder_dir.c_str(), r.tokenizer_dir.c_str());
  });
}

}  // namespace luminars::cli

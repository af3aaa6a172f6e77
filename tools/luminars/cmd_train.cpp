// luminars prepare / train: the latent cache, then the staged trainer (DESIGN §5).
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli_validators.h"
#include "commands.h"
#include "core/device.h"
#include "distributed_flags.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "pipeline/model_folder.h"
#include "pipeline/prepare.h"
#include "train/latent_cache.h"
#include "train/run_checkpoint.h"
#include "train/trainer.h"
#include "vae/vae.h"

namespace luminars::cli {

namespace fs = std::filesystem;

void register_prepare(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<PrepareOptions>();
  auto device = std::make_shared<std::string>("auto");
  auto* cmd = app.add_subcommand("prepare", "encode a captioned image folder once into a training cache");
  cmd->add_option("--data", o->data_dir, "image folder: imagefolder (metadata.jsonl) or .txt captions")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--vae", o->vae, "diffusers vae/ folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--text-encoder", o->text_encoder, "transformers text_encoder/ folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer/ folder (vocab.json, merges.txt)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out_dir, "cache folder to write (resumes when it exists)")->required();
  cmd->add_option("--resolution", o->resolution, "training resolution in pixels")->capture_default_str()->check(CLI::Range(16, 4096));
  cmd->add_option("--caption-column", o->caption_column, "metadata.jsonl caption column")->capture_default_str();
  cmd->add_option("--shard-size", o->shard_size, "images per shard")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch", o->batch_size, "images per VAE call")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--sample-prompts", o->sample_prompts, "captions kept for training sample grids")->capture_default_str();
  cmd->add_flag("--penultimate", o->penultimate, "use CLIP's penultimate hidden state as ctx");
  cmd->add_flag("--random-crop", o->random_crop, "crop a random square (seeded) instead of the centre");
  cmd->add_flag("--flip", o->flip, "also cache every image mirrored left-right");
  cmd->add_flag("--buckets", o->buckets,
                "aspect-ratio buckets: each picture trained near its own shape (sizes of about resolution², sides from "
                "resolution/2 to 2·resolution) instead of a square crop");
  cmd->add_option("--bucket-step", o->bucket_step, "bucket sides: multiples of this (the model's size step)")
      ->capture_default_str()
      ->check(CLI::Range(8, 1024));
  cmd->add_option("--extra-sizes", o->extra_sizes,
                  "further square sizes to cache every picture at, so that one denoiser trains at --resolution and at "
                  "these (e.g. --resolution 64 --extra-sizes 128); not with --buckets")
      ->check(CLI::Range(16, 4096))
      ->excludes("--buckets");
  cmd->add_option("--device", *device, "auto, cpu or cuda")->capture_default_str();
  cmd->callback([o, device, &g] {
    apply_global(g);
    o->device = device_from_name(*device);
    auto s = prepare(*o);
    std::cout << s.text << "\n";
  });
}

void register_train(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<TrainOptions>();
  struct Extra {
    std::string preset = "default", config, stage = "1", device = "auto", decay = "constant", time_sampling = "logit-normal";
    std::vector<int64_t> steps{1000};
    std::vector<double> lr;
    bool no_bf16 = false;
  };
  auto x = std::make_shared<Extra>();
  auto dist = std::make_shared<DistFlags>();
  auto* cmd = app.add_subcommand("train", "train the denoiser on a prepared cache, in stages");
  cmd->add_option("--cache", o->cache_dir, "cache folder from `luminars prepare`")->required();
  cmd->add_option("--out", o->loop.out_dir, "run folder: checkpoints, log.jsonl, loss.png, samples/, model/")->required();
  auto* preset = cmd->add_option("--preset", x->preset, "model configuration: default, small, tiny")->capture_default_str();
  cmd->add_option("--config", x->config, "model configuration JSON file")->check(CLI::ExistingFile)->excludes(preset);
  cmd->add_option("--stage", x->stage, "1, 2, 3 or all (1 then 2 then 3)")->capture_default_str();
  cmd->add_option("--steps", x->steps, "optimizer steps; with --stage all, one count per stage")->capture_default_str();
  cmd->add_option("--lr", x->lr, "learning rate(s), one per stage (default 1e-4, 1e-5, 1e-6)");
  cmd->add_option("--init", o->init, "denoiser .safetensors to start from")->check(CLI::ExistingFile);
  cmd->add_option("--batch", o->batch_size, "images per micro-batch")->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--grad-accum", o->loop.grad_accum, "micro-batches per optimizer step")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--beta1", o->loop.beta1, "AdamW beta1")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--beta2", o->loop.beta2, "AdamW beta2")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--adam-eps", o->loop.adam_eps, "AdamW epsilon")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--weight-decay", o->loop.weight_decay, "AdamW weight decay")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--warmup", o->loop.warmup, "linear warm-up steps per stage")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--lr-schedule", x->decay, "after warm-up: constant or cosine")->capture_default_str();
  cmd->add_option("--clip-grad", o->loop.clip_grad, "max gradient norm (0 = off)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--ema", o->loop.ema_decay, "EMA decay of the weights")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--caption-dropout", o->caption_dropout, "probability of the empty prompt")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--time-sampling", x->time_sampling, "logit-normal or uniform")->capture_default_str();
  cmd->add_option("--time-shift", o->time_shift, "shift of the training times' sigma = 1 - t, as the sampler's (>1: more near the noise)")
      ->capture_default_str()->check(CLI::Range(0.01, 100.0));
  cmd->add_flag("--grad-last-recursion", o->grad_last_recursion_only, "backpropagate through the last recursion only");
  cmd->add_option("--checkpoint-every", o->loop.checkpoint_every, "steps between checkpoints")->capture_default_str();
  cmd->add_option("--keep-checkpoints", o->loop.keep_checkpoints, "checkpoints kept")->capture_default_str();
  cmd->add_option("--validate-every", o->loop.validate_every, "steps between validation losses (0 = off)")->capture_default_str();
  cmd->add_option("--sample-every", o->loop.sample_every, "steps between sample grids (0 = off)")->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "held-out fraction of the images")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--seed", o->loop.seed, "seed of data order, noise and t")->capture_default_str()->check(fixed_seed());
  cmd->add_option("--device", x->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_flag("--no-bf16", x->no_bf16, "no bf16 autocast on CUDA");
  cmd->add_flag("--cpu-bf16", o->loop.cpu_bf16, "bf16 autocast on the CPU too, where it has native bf16 (AVX-512 BF16, AMX)");
  auto* resume = cmd->add_flag("--resume", o->loop.resume, "continue from the run's latest checkpoint");
  cmd->add_flag("--overwrite", o->loop.overwrite, "start afresh in a run folder that holds an earlier run")->excludes(resume);
  cmd->add_option("--stop-after", o->loop.stop_after, "stop (with a checkpoint) after this many steps");
  cmd->add_option("--skip-nonfinite", o->loop.skip_nonfinite,
                  "steps in a row with a NaN or infinite loss to skip (no update) before stopping; 0: stop at the first")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  add_distributed_flags(cmd, *dist);
  cmd->callback([o, x, dist, &g] {
    apply_global(g);
    if (launch_local_ranks(*dist, g)) return;
    o->loop.device = device_from_name(x->device);
    o->loop.group = join_run(*dist, g, o->loop.device);
    const bool writer = writes_files(o->loop.group.get());  // rank 0 of a data-parallel run
    o->loop.bf16 = !x->no_bf16;
    o->loop.decay = lr_decay_from_name(x->decay);
    o->time_sampling = time_sampling_from_name(x->time_sampling);
    o->config = x->config.empty() ? Config::preset(x->preset) : Config::from_file(x->config);
    if (x->stage == "all") {
      o->stages = {1, 2, 3};
    } else if (x->stage == "1" || x->stage == "2" || x->stage == "3") {
      o->stages = {std::stoi(x->stage)};
    } else {
      throw Error("--stage must be 1, 2, 3 or all, got '" + x->stage + "'");
    }
    o->steps = x->steps;
    if (o->stages.size() == 3 && o->steps.size() == 1) o->steps = {x->steps[0], x->steps[0], x->steps[0]};
    o->lr = x->lr;
    const bool has_checkpoint = writer && latest_checkpoint(o->loop.out_dir).has_value();
    if (writer && o->loop.resume && !has_checkpoint) std::cerr << "no checkpoint in " << o->loop.out_dir << ": starting fresh\n";
    if (writer && o->stages.front() != 1 && o->init.empty() && !(o->loop.resume && has_checkpoint))
      std::cerr << "warning: stage " << o->stages.front()
                << " starts from random weights; pass --init with the previous stage's denoiser (RUN/model/denoiser/model.safetensors)\n";
    const auto info = CacheInfo::load(o->cache_dir);  // the VAE the cache was made with renders sample grids
    TrainHooks hooks;
    std::shared_ptr<Vae> vae;
    if (writer && o->loop.sample_every > 0 && !info.vae.empty() && fs::exists(info.vae)) {
      VaeLoadOptions vo;
      vo.part = VaePart::Decoder;
      vo.device = o->loop.device;
      vae = load_vae(info.vae, vo);
      hooks.decode = [vae](const torch::Tensor& latents) { return vae->decode(vae->from_denoiser(latents)).clamp(-1, 1); };
    }
    auto r = train(*o, hooks);
    if (!r.finished || !writer) return;
    // The final model folder: EMA weights, pointing at the cache's encoders and VAE.
    ModelFolder m;
    m.dir = (fs::path(o->loop.out_dir) / "model").string();
    m.text_encoder = info.text_encoder;
    m.tokenizer = info.tokenizer;
    m.vae = info.vae;
    m.penultimate = info.penultimate;  // generation conditions on the layer training saw
    m.resolution = info.resolution;
    m.trained_sizes = {info.resolution};
    for (const auto& b : info.buckets)  // aspect-ratio buckets: their sides are trained sizes too
      for (int64_t side : {b.width, b.height})
        if (std::find(m.trained_sizes.begin(), m.trained_sizes.end(), side) == m.trained_sizes.end()) m.trained_sizes.push_back(side);
    std::sort(m.trained_sizes.begin(), m.trained_sizes.end());
    fs::create_directories(fs::path(m.dir) / "denoiser");
    export_ema_denoiser(r.checkpoint, m.path_of(m.denoiser));
    m.save();
    std::cout << "trained " << r.global_step << " steps, final loss " << r.last_loss << "; model folder: " << m.dir << "\n";
  });
}

}  // namespace luminars::cli

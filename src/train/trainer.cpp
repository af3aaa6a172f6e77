#include "train/trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "train/adamw.h"
#include "core/autocast.h"
#include "train/batch_prefetch.h"
#include "train/batch_sampler.h"
#include "train/dataset.h"
#include "train/ema.h"
#include "train/latent_cache.h"
#include "train/run_checkpoint.h"
#include "train/stages.h"
#include "train/training_log.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop_requested{false};
void on_signal(int) { g_stop_requested = true; }

// SIGINT/SIGTERM finish the current step, save a checkpoint and return.
struct StopOnSignal {
  StopOnSignal() {
    g_stop_requested = false;
    old_int = std::signal(SIGINT, on_signal);
    old_term = std::signal(SIGTERM, on_signal);
  }
  ~StopOnSignal() {
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
  }
  void (*old_int)(int);
  void (*old_term)(int);
};

void check_options(const TrainOptions& o) {
  if (o.stages.empty() || o.stages.size() != o.steps.size())
    throw Error("give one step count per stage (" + std::to_string(o.stages.size()) + " stages, " +
                std::to_string(o.steps.size()) + " step counts)");
  for (int s : o.stages) default_stage_lr(s);  // validates the stage number
  for (auto n : o.steps)
    if (n < 0) throw Error("step counts must not be negative");
  if (!o.lr.empty() && o.lr.size() != o.stages.size()) throw Error("give one learning rate per stage");
  if (o.batch_size < 1) throw Error("batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (o.grad_accum < 1) throw Error("gradient accumulation must be at least 1");
  if (o.caption_dropout < 0 || o.caption_dropout > 1) throw Error("caption dropout must be in [0, 1]");
  if (o.warmup < 0) throw Error("warm-up steps must not be negative");
  if (o.clip_grad < 0) throw Error("gradient clipping norm must not be negative");
}

Config config_for_cache(Config cfg, const LatentCache& cache) {
  cfg.text_dim = cache.info.text_dim;
  cfg.latent_channels = cache.info.latent_channels;
  cfg.validate();
  cfg.validate_latent_size(cache.info.latent_size, cache.info.latent_size);
  return cfg;
}

}  // namespace

std::vector<double> validation_times() { return {0.1, 0.3, 0.5, 0.7, 0.9}; }

namespace {

// Mean flow-matching loss over the held-out images, at fixed t and fixed noise, first caption.
double validation_loss(LuminaRS& model, const LatentCache& cache, const std::vector<int64_t>& val, torch::Device device,
                       int64_t batch_size) {
  if (val.empty()) return std::nan("");
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  double total = 0;
  int64_t count = 0;
  for (std::size_t start = 0; start < val.size(); start += static_cast<std::size_t>(batch_size)) {
    std::vector<int64_t> idx(val.begin() + static_cast<std::ptrdiff_t>(start),
                             val.begin() + static_cast<std::ptrdiff_t>(std::min(val.size(), start + static_cast<std::size_t>(batch_size))));
    std::vector<int64_t> rows;
    for (auto i : idx) rows.push_back(cache.captions_of[static_cast<std::size_t>(i)].empty() ? -1 : cache.captions_of[static_cast<std::size_t>(i)][0]);
    auto x = cache.mean.index_select(0, torch::tensor(idx, torch::kInt64));
    auto ctx = torch::empty({x.size(0), cache.ctx.size(1), cache.ctx.size(2)});
    auto pooled = torch::empty({x.size(0), cache.pooled.size(1)});
    for (std::size_t j = 0; j < rows.size(); ++j) {
      ctx[static_cast<int64_t>(j)].copy_(rows[j] < 0 ? cache.empty_ctx[0] : cache.ctx[rows[j]]);
      pooled[static_cast<int64_t>(j)].copy_(rows[j] < 0 ? cache.empty_pooled[0] : cache.pooled[rows[j]]);
    }
    const auto x_d = x.to(device), ctx_d = ctx.to(device), pooled_d = pooled.to(device);
    int k = 0;
    for (double tv : validation_times()) {
      auto gen = seeded_generator({0x7A11D, static_cast<uint64_t>(start), static_cast<uint64_t>(k++)});
      auto noise = torch::randn(x.sizes(), gen).to(device);
      auto t = torch::full({x.size(0)}, static_cast<float>(tv), torch::TensorOptions().device(device));
      auto loss = flow_matching_loss(model, x_d, noise, t, ctx_d, pooled_d);
      total += loss.item<double>() * static_cast<double>(x.size(0));
      count += x.size(0);
    }
  }
  if (was_training) model->train();
  return total / static_cast<double>(count);
}

// A grid of the cache's sample prompts, EMA weights, fixed noise, 12 Euler steps, guidance 4.
void write_sample_grid(LuminaRS& model, const Ema& ema, const LatentCache& cache, const TrainHooks& hooks,
                       const std::string& path, torch::Device device) {
  if (!hooks.decode || !cache.sample_ctx.defined() || cache.sample_ctx.size(0) == 0) return;
  torch::NoGradGuard no_grad;
  // Swap the EMA weights in, sample, swap back.
  std::vector<torch::Tensor> saved;
  for (const auto& p : model->parameters()) saved.push_back(p.detach().clone());
  ema.copy_to(model);
  const bool was_training = model->is_training();
  model->eval();
  const int64_t k = cache.sample_ctx.size(0), s = cache.info.latent_size;
  auto gen = seeded_generator({0x5A3B1E});
  auto noise = torch::randn({k, cache.info.latent_channels, s, s}, gen).to(device);
  SampleOptions o;
  o.steps = 12;
  o.guidance.scale = 4.0;
  o.guidance.null_ctx = cache.empty_ctx.expand({k, -1, -1}).contiguous().to(device);
  o.guidance.null_pooled = cache.empty_pooled.expand({k, -1}).contiguous().to(device);
  auto latents = sample_flow(model, noise, cache.sample_ctx.to(device), cache.sample_pooled.to(device), o);
  auto images = hooks.decode(latents);
  fs::create_directories(fs::path(path).parent_path());
  save_png(path, make_grid(images));
  auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(saved[i]);
  if (was_training) model->train();
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%07lld", static_cast<long long>(step));
  return buf;
}

}  // namespace

TrainResult train(const TrainOptions& o, const TrainHooks& hooks) {
  check_options(o);
  // 1. Data: the cache, split into training and held-out images.
  LatentCache cache = LatentCache::load(o.cache_dir);
  auto [train_items, val_items] = split_indices(cache.size(), o.val_fraction, o.seed);
  BatchSampler sampler(cache, train_items, o.seed, o.caption_dropout, o.time_sampling);
  BatchPrefetch batches(sampler, o.batch_size);
  fs::create_directories(o.out_dir);

  // 2. Model, EMA, and where to start: a checkpoint of this run, an initial file, or fresh weights.
  const Config cfg = config_for_cache(o.config, cache);
  torch::manual_seed(o.seed);
  LuminaRS model(cfg);
  model->to(o.device);
  Ema ema(model, o.ema_decay);
  RunState state;
  state.seed = o.seed;
  std::optional<std::string> resume_dir;
  if (o.resume) resume_dir = latest_checkpoint(o.out_dir);
  TrainResult result;
  if (resume_dir) {
    state = load_training_checkpoint(*resume_dir, model, ema).state;
    result.checkpoint = *resume_dir;
    if (state.seed != o.seed) throw Error(*resume_dir + ": checkpoint was made with seed " + std::to_string(state.seed));
  } else if (!o.init.empty()) {
    load_denoiser_weights(model, o.init);
    ema = Ema(model, o.ema_decay);
  }
  if (state.stage_index < static_cast<int64_t>(o.stages.size()) &&
      state.stage_step >= o.steps[static_cast<std::size_t>(state.stage_index)]) {
    ++state.stage_index;  // the checkpoint closed its stage: the next one starts fresh
    state.stage_step = 0;
    resume_dir.reset();
  }
  model->train();

  TrainingLog log(o.out_dir);
  StopOnSignal stop_on_signal;
  result.global_step = state.global_step;
  int64_t steps_this_run = 0;
  int64_t total_left = 0;
  for (std::size_t si = static_cast<std::size_t>(state.stage_index); si < o.stages.size(); ++si)
    total_left += o.steps[si] - (si == static_cast<std::size_t>(state.stage_index) ? state.stage_step : 0);

  // 3. The stages.
  for (std::size_t si = static_cast<std::size_t>(state.stage_index); si < o.stages.size(); ++si) {
    const int stage = o.stages[si];
    const int64_t total = o.steps[si];
    const double base_lr = o.lr.empty() ? default_stage_lr(stage) : o.lr[si];
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();  // no stale gradients of the last stage
    AdamW opt(apply_stage(model, stage), {base_lr, o.beta1, o.beta2, o.adam_eps, o.weight_decay});
    if (resume_dir && static_cast<int64_t>(si) == state.stage_index) load_optimizer_state(*resume_dir, opt);
    if (!o.quiet)
      std::fprintf(stderr, "stage %d: %zu of %zu parameter tensors train, lr %.1e, %lld steps\n", stage,
                   opt.parameters().size(), model->parameters().size(), base_lr, static_cast<long long>(total));
    std::vector<torch::Tensor> trainable;
    for (const auto& [name, p] : opt.parameters()) trainable.push_back(p);

    for (int64_t step = state.stage_step; step < total; ++step) {
      const auto t0 = std::chrono::steady_clock::now();
      opt.options().lr = scheduled_lr(base_lr, step, total, o.warmup, o.decay, o.min_lr_ratio);
      opt.zero_grad();
      double loss_sum = 0;
      for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
        Batch b = batches.get(state.global_step * o.grad_accum + micro);
        ForwardOptions fo;
        fo.grad_last_recursion_only = o.grad_last_recursion_only;
        torch::Tensor loss;
        {
          AutocastGuard autocast(o.bf16, o.device);
          loss = flow_matching_loss(model, b.x_clean.to(o.device), b.noise.to(o.device), b.t.to(o.device),
                                    b.ctx.to(o.device), b.pooled.to(o.device), fo);
        }
        (loss / static_cast<double>(o.grad_accum)).backward();
        loss_sum += loss.item<double>();
      }
      const double loss = loss_sum / static_cast<double>(o.grad_accum);
      if (!std::isfinite(loss))
        throw Error("loss is " + std::to_string(loss) + " at step " + std::to_string(state.global_step + 1) +
                    " (try a lower learning rate or gradient clipping)");
      double grad_norm = 0;
      if (o.clip_grad > 0) grad_norm = torch::nn::utils::clip_grad_norm_(trainable, o.clip_grad);
      opt.step();
      ema.update(model);
      ++state.global_step;
      ++state.stage_step;
      ++steps_this_run;
      result.global_step = state.global_step;
      result.last_loss = loss;

      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double img_s = static_cast<double>(o.batch_size * o.grad_accum) / std::max(secs, 1e-9);
      log.train_step(state.global_step, stage, loss, opt.options().lr, grad_norm, img_s);
      if (!o.quiet) log.progress(stage, state.global_step, steps_this_run, total_left, loss, img_s);
      const bool last = step + 1 == total;
      if (o.validate_every > 0 && (state.global_step % o.validate_every == 0 || (last && si + 1 == o.stages.size())))
        log.validation(state.global_step, stage, validation_loss(model, cache, val_items, o.device, o.batch_size));
      if (o.sample_every > 0 && (state.global_step % o.sample_every == 0 || (last && si + 1 == o.stages.size())))
        write_sample_grid(model, ema, cache, hooks, (fs::path(o.out_dir) / "samples" / (step_name(state.global_step) + ".png")).string(), o.device);
      const bool run_done = last && si + 1 == o.stages.size();
      const bool stop = !run_done && (g_stop_requested || (o.stop_after > 0 && steps_this_run >= o.stop_after));
      if (last || stop || (o.checkpoint_every > 0 && state.global_step % o.checkpoint_every == 0)) {
        RunState saved = state;
        saved.stage_index = static_cast<int64_t>(si);
        result.checkpoint = save_training_checkpoint(o.out_dir, model, ema, opt, saved, o.keep_checkpoints);
        log.plot();
      }
      if (stop) {
        if (!o.quiet) std::fprintf(stderr, "\nstopped at step %lld; resume with --resume\n", static_cast<long long>(state.global_step));
        return result;
      }
    }
    state.stage_step = 0;
    resume_dir.reset();
  }
  log.finish();
  result.finished = true;
  return result;
}

}  // namespace luminars

#include "train/trainer.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "train/batch_prefetch.h"
#include "train/batch_sampler.h"
#include "data/dataset.h"
#include "train/heldout_loss.h"
#include "train/latent_cache.h"
#include "train/sample_grid.h"
#include "train/stages.h"

namespace luminars {

namespace fs = std::filesystem;

void check_cache_latents(const Config& cfg, const CacheInfo& info) {
  cfg.validate_latent_size(info.latent_size, info.latent_size);
  const int64_t factor = info.latent_factor();
  for (const auto& b : info.buckets) {
    try {
      cfg.validate_latent_size(b.height / factor, b.width / factor);
    } catch (const Error& e) {
      throw Error("aspect-ratio bucket " + std::to_string(b.width) + "x" + std::to_string(b.height) + " of the cache: " + e.what() +
                  " (prepare it again with another --bucket-step or --extra-sizes)");
    }
  }
}

namespace {

void check_options(const TrainOptions& o) {
  if (o.stages.empty() || o.stages.size() != o.steps.size())
    throw Error("give one step count per stage (" + std::to_string(o.stages.size()) + " stages, " +
                std::to_string(o.steps.size()) + " step counts)");
  for (int s : o.stages) default_stage_lr(s);  // validates the stage number
  if (!o.lr.empty() && o.lr.size() != o.stages.size()) throw Error("give one learning rate per stage");
  if (o.batch_size < 1) throw Error("batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (o.caption_dropout < 0 || o.caption_dropout > 1) throw Error("caption dropout must be in [0, 1]");
  if (!(o.time_shift > 0 && o.time_shift <= 100)) throw Error("time shift must be in (0, 100], got " + std::to_string(o.time_shift));
}

Config config_for_cache(Config cfg, const LatentCache& cache) {
  cfg.text_dim = cache.info.text_dim;
  cfg.latent_channels = cache.info.latent_channels;
  cfg.validate();
  check_cache_latents(cfg, cache.info);
  return cfg;
}

// Held-out images: by source picture where the cache names them (its sizes and mirrored copies
// stay together), else by index (caches whose shards lack paths).
IndexSplit held_out_split(const LatentCache& cache, double val_fraction, uint64_t seed) {
  const bool named = std::none_of(cache.paths.begin(), cache.paths.end(), [](const std::string& p) { return p.empty(); });
  if (!named || static_cast<int64_t>(cache.paths.size()) != cache.size()) return split_indices(cache.size(), val_fraction, seed);
  return split_groups(cache.paths, val_fraction, seed);
}

// The denoiser's part of training: latent-cache batches (drawn ahead), the flow-matching loss,
// held-out loss at fixed t and noise, and grids of the cache's sample prompts.
class DenoiserTask : public TrainTask {
 public:
  DenoiserTask(const TrainOptions& o, const TrainHooks& hooks)
      : o_(o),
        hooks_(hooks),
        cache_(LatentCache::load(o.cache_dir)),
        cache_key_(cache_content_key(o.cache_dir)),
        split_(held_out_split(cache_, o.val_fraction, o.loop.seed)),
        sampler_(cache_, split_.train, o.loop.seed, o.caption_dropout, o.time_sampling, o.time_shift),
        batches_(sampler_, o.batch_size, o.loop.group ? batch_part(o.batch_size, o.loop.group->rank(), o.loop.group->size()) : BatchPart{}),
        model_(nullptr) {
    const Config cfg = config_for_cache(o.config, cache_);
    torch::manual_seed(o.loop.seed);
    model_ = LuminaRS(cfg);
    if (!o.init.empty()) load_denoiser_weights(model_, o.init);
  }

  std::string name() const override { return "denoiser"; }
  torch::nn::Module& module() override { return *model_; }
  std::map<std::string, std::string> weights_metadata() const override {
    return {{kConfigMetadataKey, model_->config().to_json()}};
  }
  NamedTensors trainable(int stage) override { return apply_stage(model_, stage); }
  int64_t batch_size() const override { return o_.batch_size; }
  nlohmann::json contract() const override {
    nlohmann::json c = {{"config", nlohmann::json::parse(model_->config().to_json())},
                        {"cache", cache_key_},
                        {"caption-dropout", o_.caption_dropout},
                        {"val-fraction", o_.val_fraction},
                        {"time-sampling", o_.time_sampling == TimeSampling::LogitNormal ? "logit-normal" : "uniform"},
                        {"grad-last-recursion", o_.grad_last_recursion_only}};
    if (o_.time_shift != 1) c["time-shift"] = o_.time_shift;  // absent in runs from before the option
    return c;
  }

  StepLoss loss(int64_t index) override {
    Batch b = batches_.get(index);
    ForwardOptions fo;
    fo.grad_last_recursion_only = o_.grad_last_recursion_only;
    const auto d = o_.loop.device;
    return {flow_matching_loss(model_, b.x_clean.to(d), b.noise.to(d), b.t.to(d), b.ctx.to(d), b.pooled.to(d), fo), {}};
  }

  // Mean flow-matching loss over the held-out images, at fixed t and fixed noise, first caption.
  std::optional<Validation> validate() override {
    if (split_.validation.empty()) return std::nullopt;
    return Validation{heldout_flow_loss(model_, cache_, split_.validation, o_.batch_size, o_.loop.device), {}};
  }

  // A grid of the cache's sample prompts, fixed noise, 12 Euler steps, guidance 4.
  void write_samples(const std::string& path) override {
    if (!hooks_.decode || !has_sample_prompts(cache_)) return;
    const auto in = sample_grid_inputs(cache_, o_.loop.device);
    auto latents = sample_flow(model_, in.noise, in.ctx, in.pooled, in.options);
    fs::create_directories(fs::path(path).parent_path());
    save_png(path, make_grid(hooks_.decode(latents)));
  }

 private:
  const TrainOptions& o_;
  const TrainHooks& hooks_;
  LatentCache cache_;
  std::string cache_key_;  // what the cache holds, wherever it is (cache_content_key)
  IndexSplit split_;
  BatchSampler sampler_;
  BatchPrefetch batches_;
  LuminaRS model_;
};

}  // namespace

LoopOptions loop_options(const TrainOptions& o) {
  LoopOptions l = o.loop;
  l.stages.clear();
  for (std::size_t i = 0; i < o.stages.size(); ++i)
    l.stages.push_back({o.stages[i], o.steps[i], o.lr.empty() ? default_stage_lr(o.stages[i]) : o.lr[i]});
  return l;
}

TrainResult train(const TrainOptions& o, const TrainHooks& hooks) {
  check_options(o);
  const LoopOptions loop = loop_options(o);
  check_loop_options(loop);
  DenoiserTask task(o, hooks);
  return run_training(task, loop);
}

}  // namespace luminars

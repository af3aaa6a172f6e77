#include "pipeline/lora_trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/lora_file.h"
#include "pipeline/model_folder.h"
#include "pipeline/prepare.h"
#include "train/batch_prefetch.h"
#include "train/batch_sampler.h"
#include "train/latent_cache.h"
#include "train/sample_grid.h"
#include "train/train_loop.h"
#include "pipeline/text_lora.h"
#include "text/text_encoder.h"
#include "train/trainer.h"
#include "vae/vae.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMinImages = 4;

// The adapters' part of training: batches of the cache through the frozen base with the adapters
// attached, the flow-matching loss, and grids of fixed prompts with and without the adapters.
class LoraTask : public TrainTask {
 public:
  // `text`: the model's text encoder when its adapters train (group text), else null.
  LoraTask(const LoraTrainOptions& o, LuminaRS base, const std::string& cache_dir, std::string cache_key, std::string base_hash,
           std::shared_ptr<Vae> vae, std::shared_ptr<TextEncoder> text)
      : o_(o),
        base_(std::move(base)),
        cache_(LatentCache::load(cache_dir)),
        cache_key_(std::move(cache_key)),
        base_hash_(std::move(base_hash)),
        items_(all_items(cache_.size())),
        sampler_(cache_, items_, o.seed, o.caption_dropout, TimeSampling::LogitNormal),
        batches_(sampler_, o.batch_size),
        network_(nullptr),
        vae_(std::move(vae)),
        text_(std::move(text)) {
    freeze_base(base_);
    targets_ = lora_targets(base_);
    if (text_) {
      if (cache_.caption_text.empty())
        throw Error("the cache " + cache_dir + " does not hold its captions' texts (prepared by an older version), which " +
                    "adapters on the text encoder train on: prepare it again, or give the image folder");
      for (auto& p : text_->model()->parameters()) p.set_requires_grad(false);
      auto t = text_lora_targets(text_->model());
      targets_.insert(targets_.end(), t.begin(), t.end());
    }
    torch::manual_seed(o.seed);
    network_ = LoraNetwork(targets_, o.lora);
    attach_lora(targets_, network_);
  }

  std::string name() const override { return "lora"; }
  torch::nn::Module& module() override { return *network_; }
  int64_t batch_size() const override { return o_.batch_size; }
  nlohmann::json contract() const override {
    return {{"base", base_hash_},
            {"cache", cache_key_},
            {"rank", o_.lora.rank},
            {"alpha", o_.lora.alpha},
            {"dropout", o_.lora.dropout},
            {"targets", o_.lora.groups},
            {"caption-dropout", o_.caption_dropout}};
  }

  StepLoss loss(int64_t index) override {
    Batch b = batches_.get(index);
    if (o_.lora.dropout > 0) torch::manual_seed(o_.seed * 1000003u + static_cast<uint64_t>(index));  // resumable dropout
    const auto d = o_.device;
    if (text_) {  // the captions through the adapted text encoder (the cache's embeddings are the base's)
      std::vector<std::string> prompts;
      for (int64_t row : b.captions) prompts.push_back(row < 0 ? "" : cache_.caption_text[static_cast<std::size_t>(row)]);
      const auto enc = text_->forward(prompts, cache_.info.penultimate);
      b.ctx = enc.ctx;
      b.pooled = enc.pooled;
    }
    return {flow_matching_loss(base_, b.x_clean.to(d), b.noise.to(d), b.t.to(d), b.ctx.to(d), b.pooled.to(d)), {}};
  }

  // Top row: the cache's sample prompts with the adapters; bottom row: the same without them.
  void write_samples(const std::string& path) override {
    if (!vae_ || !has_sample_prompts(cache_)) return;
    const int64_t k = cache_.sample_ctx.size(0);
    const auto in = sample_grid_inputs(cache_, o_.device);
    torch::NoGradGuard no_grad;
    auto with_in = in;
    if (text_) {  // the prompts through the adapted text encoder
      auto prompts = cache_.sample_prompts;
      prompts.resize(static_cast<std::size_t>(k));
      prompts.push_back("");
      const auto enc = text_->encode(prompts, cache_.info.penultimate);
      with_in.ctx = enc.ctx.narrow(0, 0, k).to(o_.device);
      with_in.pooled = enc.pooled.narrow(0, 0, k).to(o_.device);
      auto& g = with_in.options.guidance;
      if (g.null_ctx.defined()) {
        g.null_ctx = enc.ctx.narrow(0, k, 1).expand_as(g.null_ctx).contiguous().to(o_.device);
        g.null_pooled = enc.pooled.narrow(0, k, 1).expand_as(g.null_pooled).contiguous().to(o_.device);
      }
    }
    auto with = sample_flow(base_, with_in.noise, with_in.ctx, with_in.pooled, with_in.options);
    detach_lora(targets_);
    auto without = sample_flow(base_, in.noise, in.ctx, in.pooled, in.options);
    attach_lora(targets_, network_);
    auto images = vae_->decode(vae_->from_denoiser(torch::cat({with, without}))).clamp(-1, 1).to(torch::kCPU, torch::kFloat32);
    fs::create_directories(fs::path(path).parent_path());
    save_png(path, make_grid(images, static_cast<int>(k)));
  }

  LoraNetwork& network() { return network_; }
  const LatentCache& cache() const { return cache_; }

 private:
  static std::vector<int64_t> all_items(int64_t n) {
    std::vector<int64_t> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
  }

  const LoraTrainOptions& o_;
  LuminaRS base_;
  LatentCache cache_;
  std::string cache_key_, base_hash_;
  std::vector<int64_t> items_;
  BatchSampler sampler_;
  BatchPrefetch batches_;
  LoraNetwork network_;
  std::shared_ptr<Vae> vae_;
  std::shared_ptr<TextEncoder> text_;
  std::vector<LoraTarget> targets_;  // the denoiser's, then the text encoder's
};

// A checksum of every base weight: equal before and after training, or training wrote to them.
double weights_checksum(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t i = 1;
  for (const auto& p : model.parameters()) sum += p.to(torch::kFloat64).abs().sum().item<double>() * static_cast<double>(i++);
  return sum;
}

}  // namespace

int64_t default_lora_steps(int64_t images) { return std::clamp<int64_t>(images * 4, 200, 1000); }

LoraTrainResult train_lora(const LoraTrainOptions& o) {
  if (o.out_dir.empty()) throw Error("no output folder given (--out)");
  if (o.batch_size < 1) throw Error("batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (!(o.caption_dropout >= 0 && o.caption_dropout <= 1)) throw Error("caption dropout must be in [0, 1]");
  if (!(o.lr > 0 && std::isfinite(o.lr))) throw Error("learning rate must be a positive number");
  if (o.steps < 0) throw Error("steps must be positive");
  if (!fs::is_directory(o.data_dir)) throw Error("data folder " + o.data_dir + " does not exist");
  const ModelFolder folder = ModelFolder::load(o.model_dir);
  const std::string denoiser_path = folder.path_of(folder.denoiser);
  const std::string model_name = fs::path(folder.dir).filename().string();
  const fs::path out = fs::path(o.out_dir);
  const std::string run_dir = (out / "run").string();

  // 1. The run folder checked before any work; then the data, encoded once by the model's encoders.
  LoopOptions loop;
  loop.out_dir = run_dir;
  loop.resume = o.resume;
  loop.overwrite = o.overwrite;
  prepare_run_folder(loop);
  std::string cache_dir = o.data_dir;
  if (!fs::exists(fs::path(o.data_dir) / kCacheIndex)) {
    cache_dir = (out / "cache").string();
    PrepareOptions po;
    po.data_dir = o.data_dir;
    po.vae = folder.path_of(folder.vae);
    po.text_encoder = folder.path_of(folder.text_encoder);
    po.tokenizer = folder.path_of(folder.tokenizer);
    po.out_dir = cache_dir;
    po.resolution = folder.resolution;
    po.penultimate = folder.penultimate;
    po.flip = o.flip;
    po.buckets = o.buckets;
    po.bucket_step = read_vae_geometry(po.vae).downscale_factor * read_denoiser_config(denoiser_path).size_multiple();
    po.trigger = o.trigger;
    po.sample_prompts = o.sample_prompts;
    po.device = o.device;
    po.progress = !o.quiet;
    auto summary = prepare(po);
    if (!o.quiet) std::fprintf(stderr, "%s\n", summary.text.c_str());
  }
  const CacheInfo info = CacheInfo::load(cache_dir);
  const int64_t images = o.flip ? info.items / 2 : info.items;
  if (images < kMinImages)
    throw Error(o.data_dir + " holds " + std::to_string(images) + " usable picture" + (images == 1 ? "" : "s") +
                "; a LoRA needs at least " + std::to_string(kMinImages));
  const Config cfg = read_denoiser_config(denoiser_path);
  check_cache_latents(cfg, info);
  if (info.text_dim != cfg.text_dim || info.latent_channels != cfg.latent_channels)
    throw Error("the cache " + cache_dir + " was made with other encoders than " + o.model_dir + " (text_dim " +
                std::to_string(info.text_dim) + " vs " + std::to_string(cfg.text_dim) + ", latent channels " +
                std::to_string(info.latent_channels) + " vs " + std::to_string(cfg.latent_channels) + ")");

  // 2. The frozen base, its identity and checksum; the VAE decoder for sample grids.
  const std::string base_hash = denoiser_lora_identity(denoiser_path);
  LuminaRS base = load_denoiser(denoiser_path, o.device);
  const double checksum = weights_checksum(*base);
  VaeLoadOptions vo;
  vo.part = VaePart::Decoder;
  vo.device = o.device;
  std::shared_ptr<Vae> vae = load_vae(folder.path_of(folder.vae), vo);

  // 3. The loop.
  const int64_t steps = o.steps > 0 ? o.steps : default_lora_steps(info.items);
  loop.stages = {StagePlan{1, steps, o.lr}};
  loop.warmup = o.warmup >= 0 ? o.warmup : std::min<int64_t>(100, steps / 10);
  loop.weight_decay = 0;
  loop.clip_grad = o.clip_grad;
  loop.ema_decay = 0;  // the adapters' last weights (an average lags far behind over a few hundred steps)
  loop.checkpoint_every = o.checkpoint_every;
  loop.keep_checkpoints = o.keep_checkpoints;
  loop.validate_every = 0;
  loop.sample_every = o.sample_every > 0 ? o.sample_every : steps;
  loop.seed = o.seed;
  loop.device = o.device;
  loop.stop_after = o.stop_after;
  loop.quiet = o.quiet;
  check_loop_options(loop);
  std::shared_ptr<TextEncoder> text;
  if (std::find(o.lora.groups.begin(), o.lora.groups.end(), "text") != o.lora.groups.end())
    text = std::make_shared<TextEncoder>(
        TextEncoder::load(folder.path_of(folder.text_encoder), folder.path_of(folder.tokenizer), o.device));
  const double text_checksum = text ? weights_checksum(*text->model()) : 0;
  LoraTask task(o, base, cache_dir, cache_content_key(cache_dir), base_hash, vae, text);
  const TrainResult r = run_training(task, loop);
  if (weights_checksum(*base) != checksum || (text && weights_checksum(*text->model()) != text_checksum))
    throw Error("internal error: training changed the base model's weights");

  LoraTrainResult result;
  result.steps = r.global_step;
  result.images = images;
  result.last_loss = r.last_loss;
  result.finished = r.finished;
  if (!r.finished) return result;

  // 4. The LoRA file, with what it was made from.
  LoraFileInfo fi;
  fi.dropout = o.lora.dropout;
  fi.targets = o.lora.groups;
  fi.base_model = model_name;
  fi.base_hash = base_hash;
  if (!o.trigger.empty()) fi.trigger_words = {o.trigger};
  fi.steps = r.global_step;
  nlohmann::json training_data{{"images", images},
                               {"captions", info.captions},
                               {"resolution", info.resolution},
                               {"flip", o.flip},
                               {"folder", fs::path(o.data_dir).filename().string()},
                               {"batch", o.batch_size},
                               {"lr", o.lr},
                               {"caption_dropout", o.caption_dropout}};
  if (!info.buckets.empty()) {
    auto sizes = nlohmann::json::array();
    for (const auto& b : info.buckets) sizes.push_back({b.width, b.height});
    training_data["buckets"] = sizes;
  }
  fi.training_data = training_data.dump();
  const std::string name = o.name.empty() ? fs::absolute(out).lexically_normal().filename().string() : o.name;
  result.lora_path = (out / (name + ".safetensors")).string();
  write_lora_file(result.lora_path, lora_tensors(task.network()), fi);
  return result;
}

}  // namespace luminars

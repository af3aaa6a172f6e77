#include "train/clip_trainer.h"

#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/tensor_io.h"
#include "text/clip_tokenizer.h"
#include "train/batch_sampler.h"
#include "train/image_set.h"
#include "train/prefetch.h"
#include "train/run_checkpoint.h"

namespace luminars {

namespace fs = std::filesystem;

ClipConfig ClipTrainOptions::model_config(int64_t vocab_size, int64_t context_length, int64_t bos_id, int64_t eos_id,
                                          int64_t pad_id) const {
  ClipConfig c;
  c.projection_dim = projection_dim;
  c.text.vocab_size = vocab_size;
  c.text.hidden_size = text_width;
  c.text.intermediate_size = 4 * text_width;
  c.text.num_hidden_layers = text_layers;
  c.text.num_attention_heads = text_heads;
  c.text.max_position_embeddings = context_length;
  c.text.projection_dim = projection_dim;
  c.text.hidden_act = "gelu";
  c.text.bos_token_id = bos_id;
  c.text.eos_token_id = eos_id;
  c.text.pad_token_id = pad_id;
  c.text.with_projection = true;
  c.vision.hidden_size = vision_width;
  c.vision.intermediate_size = 4 * vision_width;
  c.vision.num_hidden_layers = vision_layers;
  c.vision.num_attention_heads = vision_heads;
  c.vision.image_size = resolution;
  c.vision.patch_size = patch_size;
  c.vision.projection_dim = projection_dim;
  c.vision.hidden_act = "gelu";
  return c;
}

namespace {

struct ClipBatch {
  torch::Tensor pixels, ids, image_ids;  // [B,3,S,S] preprocessed, [B,L] int64, [B] int64
};

// CLIP's part of training: one random caption for each image of a batch, the contrastive loss
// with every caption of the same image a positive, and held-out retrieval.
class ClipTask : public TrainTask {
 public:
  ClipTask(const ClipTrainOptions& o, const ImageSet& images, const ClipTokenizer& tokenizer, std::vector<int64_t> train,
           std::vector<int64_t> val)
      : o_(o), images_(images), val_(std::move(val)), model_(nullptr), epochs_(std::move(train), o.loop.seed),
        part_(o.loop.group ? batch_part(o.batch_size, o.loop.group->rank(), o.loop.group->size()) : BatchPart{0, o.batch_size}),
        batches_([this](int64_t i) { return draw(i); }) {
    model_ = ClipModel(o.model_config(tokenizer.vocab_size(), tokenizer.context_length, tokenizer.bos_id,
                                      tokenizer.eos_id, tokenizer.pad_id));
    model_->init_weights(o.loop.seed);
    // Every caption tokenised once: rows of `ids_`, captions of image i at caption_rows_[i].
    std::vector<std::string> all;
    for (int64_t i = 0; i < images.size(); ++i) {
      caption_rows_.emplace_back();
      for (const auto& c : images.captions[static_cast<std::size_t>(i)]) {
        caption_rows_.back().push_back(static_cast<int64_t>(all.size()));
        all.push_back(c);
      }
    }
    ids_ = model_->tokenize(tokenizer, all);
  }

  std::string name() const override { return "clip"; }
  torch::nn::Module& module() override { return *model_; }
  std::map<std::string, std::string> weights_metadata() const override { return {{"clip_config", model_->config().to_json()}}; }
  int64_t batch_size() const override { return o_.batch_size; }
  nlohmann::json contract() const override {
    return {{"clip-config", nlohmann::json::parse(model_->config().to_json())},
            {"data", images_.content_key()},
            {"resolution", o_.resolution},
            {"val-fraction", o_.val_fraction},
            {"max-validation-images", o_.max_validation_images}};
  }
  ClipModel& model() { return model_; }

  // The contrastive loss over the whole batch. In a data-parallel run each rank embeds its part;
  // every rank then holds every embedding (gathered, without gradients) with its own part live, and
  // computes the whole batch's loss: its gradient through this rank's part is exactly that part's
  // share, so backward_scale = W makes the ranks' averaged gradients the batch's. The temperature's
  // own gradient is counted once, on rank 0.
  StepLoss loss(int64_t index) override {
    const auto d = o_.loop.device;
    ClipBatch b = batches_.get(index);
    auto image_embeds = model_->encode_image(b.pixels.to(d)).to(torch::kFloat32);
    auto text_embeds = model_->encode_text(b.ids.to(d)).to(torch::kFloat32);
    auto logit_scale = model_->logit_scale;
    double backward_scale = 1.0;
    if (auto* group = o_.loop.group.get()) {
      image_embeds = with_other_ranks(*group, image_embeds);
      text_embeds = with_other_ranks(*group, text_embeds);
      if (group->rank() != 0) logit_scale = logit_scale.detach();
      backward_scale = group->size();
    }
    auto loss = clip_contrastive_loss(image_embeds, text_embeds, logit_scale, b.image_ids.to(d));
    return {loss, {{"temperature", 1.0 / model_->logit_scale.detach().exp().item<double>()}}, backward_scale};
  }

  std::optional<Validation> validate() override {
    if (val_.empty()) return std::nullopt;
    auto [metrics, loss] = heldout();
    return Validation{loss,
                      {{"i2t_top1", metrics.image_to_text_top1}, {"i2t_top5", metrics.image_to_text_top5},
                       {"t2i_top1", metrics.text_to_image_top1}, {"t2i_top5", metrics.text_to_image_top5}}};
  }

  // Retrieval over the held-out images and all their captions, and the contrastive loss of
  // each image with its first caption.
  std::pair<RetrievalMetrics, double> heldout() {
    const auto d = o_.loop.device;
    std::vector<int64_t> imgs(val_.begin(), val_.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(
                                                             val_.size(), static_cast<std::size_t>(o_.max_validation_images))));
    std::vector<torch::Tensor> image_embeds, text_embeds;
    std::vector<int64_t> rows, caption_image, first_rows;
    for (std::size_t k = 0; k < imgs.size(); ++k)
      for (std::size_t c = 0; c < caption_rows_[static_cast<std::size_t>(imgs[k])].size(); ++c) {
        rows.push_back(caption_rows_[static_cast<std::size_t>(imgs[k])][c]);
        caption_image.push_back(static_cast<int64_t>(k));
        if (c == 0) first_rows.push_back(static_cast<int64_t>(rows.size()) - 1);
      }
    const auto bs = static_cast<std::size_t>(o_.batch_size);
    for (std::size_t s = 0; s < imgs.size(); s += bs) {
      std::vector<int64_t> part(imgs.begin() + static_cast<std::ptrdiff_t>(s), imgs.begin() + static_cast<std::ptrdiff_t>(std::min(imgs.size(), s + bs)));
      image_embeds.push_back(model_->encode_image(model_->preprocess(images_.batch(part)).to(d)).to(torch::kFloat32).cpu());
    }
    for (std::size_t s = 0; s < rows.size(); s += bs) {
      std::vector<int64_t> part(rows.begin() + static_cast<std::ptrdiff_t>(s), rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), s + bs)));
      text_embeds.push_back(model_->encode_text(ids_.index_select(0, torch::tensor(part)).to(d)).to(torch::kFloat32).cpu());
    }
    auto img = torch::cat(image_embeds), txt = torch::cat(text_embeds);
    auto metrics = retrieval_metrics(img, txt, torch::tensor(caption_image, torch::kInt64));
    auto first = txt.index_select(0, torch::tensor(first_rows, torch::kInt64));
    const double loss = clip_contrastive_loss(img, first, model_->logit_scale.detach().cpu()).item<double>();
    return {metrics, loss};
  }

 private:
  // The whole batch's images and caption choices are drawn, this rank's part of them embedded;
  // image_ids covers the whole batch (the loss sees every rank's pairs).
  ClipBatch draw(int64_t index) {
    auto idx = epochs_.batch(index, o_.batch_size);
    std::mt19937_64 rng(fnv_mix(index));
    std::vector<int64_t> rows;
    for (auto i : idx) {
      const auto& r = caption_rows_[static_cast<std::size_t>(i)];
      rows.push_back(r[std::uniform_int_distribution<std::size_t>(0, r.size() - 1)(rng)]);
    }
    const auto first = static_cast<std::ptrdiff_t>(part_.begin), last = first + static_cast<std::ptrdiff_t>(part_.size);
    const std::vector<int64_t> my_idx(idx.begin() + first, idx.begin() + last), my_rows(rows.begin() + first, rows.begin() + last);
    torch::NoGradGuard no_grad;
    return {model_->preprocess(images_.batch(my_idx)), ids_.index_select(0, torch::tensor(my_rows, torch::kInt64)),
            torch::tensor(idx, torch::kInt64)};
  }

  // [B, P]: every rank's rows of `mine` ([B/W, P]) in batch order, this rank's own (with gradients).
  at::Tensor with_other_ranks(ProcessGroup& group, const torch::Tensor& mine) const {
    auto all = torch::zeros({o_.batch_size, mine.size(1)}, mine.options().requires_grad(false));
    {
      torch::NoGradGuard no_grad;
      all.narrow(0, part_.begin, part_.size).copy_(mine);
      std::vector<torch::Tensor> one{all};
      group.all_reduce_sum(one, "gathering CLIP embeddings");  // exact: every element is one rank's value plus zeros
    }
    return torch::cat({all.narrow(0, 0, part_.begin), mine, all.narrow(0, part_.begin + part_.size, o_.batch_size - part_.begin - part_.size)});
  }

  uint64_t fnv_mix(int64_t index) const { return (o_.loop.seed * 0x9E3779B97F4A7C15ULL) ^ (static_cast<uint64_t>(index) + 0xC11F); }

  const ClipTrainOptions& o_;
  const ImageSet& images_;
  std::vector<int64_t> val_;
  ClipModel model_;
  std::vector<std::vector<int64_t>> caption_rows_;
  torch::Tensor ids_;
  EpochBatches epochs_;
  BatchPart part_;  // of every batch, this rank's (all of it for one process)
  Prefetch<ClipBatch> batches_;
};

}  // namespace

ClipTrainResult train_clip(const ClipTrainOptions& o) {
  // 1. Check inputs.
  if (o.batch_size < 2) throw Error("batch size must be at least 2 for a contrastive loss, got " + std::to_string(o.batch_size));
  if (o.patch_size < 1 || o.resolution % o.patch_size != 0)
    throw Error("resolution " + std::to_string(o.resolution) + " is not a multiple of the patch size " + std::to_string(o.patch_size));
  check_loop_options(o.loop);
  const ClipTokenizer tokenizer = ClipTokenizer::from_dir(o.tokenizer_dir);
  o.model_config(tokenizer.vocab_size(), tokenizer.context_length, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id).validate();
  const bool writer = writes_files(o.loop.group.get());  // rank 0 of a data-parallel run
  if (writer) prepare_run_folder(o.loop);

  // 2. Captioned images only, held out by image.
  Dataset data = Dataset::scan(o.data_dir, {o.caption_column});
  std::erase_if(data.items, [](const DatasetItem& item) { return item.captions.empty(); });
  if (data.items.empty()) throw Error("no captions in " + o.data_dir + ": CLIP learns from captioned images");
  if (o.progress && writer) std::fprintf(stderr, "%s\n", data.summary().c_str());
  const ImageSet images = ImageSet::load(data, o.resolution, o.progress && writer);
  auto split = split_indices(images.size(), o.val_fraction, o.loop.seed);

  // 3. Train.
  ClipTask task(o, images, tokenizer, split.train, split.validation);
  ClipTrainResult result;
  result.run = run_training(task, o.loop);
  if (!result.run.finished || !writer) return result;

  // 4. The EMA weights: held-out retrieval, then OUT/clip, OUT/text_encoder, OUT/tokenizer.
  auto& model = task.model();
  load_ema_weights(result.run.checkpoint, *model);
  {
    torch::NoGradGuard no_grad;
    model->eval();
    if (!split.validation.empty()) result.heldout = task.heldout().first;
  }
  const fs::path out(o.loop.out_dir);
  result.tokenizer_dir = (out / "tokenizer").string();
  fs::create_directories(result.tokenizer_dir);
  for (const auto& e : fs::directory_iterator(o.tokenizer_dir))
    if (e.is_regular_file()) fs::copy_file(e.path(), out / "tokenizer" / e.path().filename(), fs::copy_options::overwrite_existing);
  result.clip_dir = (out / "clip").string();
  result.text_encoder_dir = (out / "text_encoder").string();
  model->to(torch::kCPU);
  save_clip_model(result.clip_dir, model, result.tokenizer_dir);
  save_clip_text_encoder(result.text_encoder_dir, model);
  return result;
}

}  // namespace luminars

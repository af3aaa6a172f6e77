#include "train/vae_trainer.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "train/batch_sampler.h"
#include "train/image_set.h"
#include "train/prefetch.h"
#include "train/run_checkpoint.h"
#include "vae/autoencoder_kl.h"

namespace luminars {

namespace fs = std::filesystem;

VaeConfig vae_train_config() {
  VaeConfig c;
  c.block_out_channels = {32, 64, 128, 128};
  c.layers_per_block = 1;
  c.latent_channels = 16;
  c.norm_num_groups = 32;
  c.scaling_factor = 1.0;
  c.shift_factor = 0.0;
  return c;
}

double mean_psnr(const torch::Tensor& images, const torch::Tensor& reference) {
  auto diff = (images.clamp(-1, 1) - reference).to(torch::kFloat64) / 2.0;  // [0,1] scale
  auto mse = diff.pow(2).flatten(1).mean(1).clamp_min(1e-10);
  return (-10.0 * torch::log10(mse)).mean().item<double>();
}

namespace {

constexpr double kInitialLogvar = -6.0;

// The parameters that make the latents: frozen by decoder-only fine-tuning.
bool in_encoder(const std::string& name) { return name.starts_with("encoder.") || name.starts_with("quant_conv."); }

struct VaeBatch {
  torch::Tensor images, noise;  // [B,3,R,R] in [-1,1]; ε for the posterior sample [B,L,h,w]
};

// The VAE's part of training: image batches (mirrored at random, drawn ahead), the posterior
// sample, and the reconstruction, KL and edge losses; held-out PSNR; reconstruction grids.
class VaeTask : public TrainTask {
 public:
  VaeTask(const VaeTrainOptions& o, const ImageSet& images, std::vector<int64_t> train, std::vector<int64_t> val)
      : o_(o),
        images_(images),
        val_(std::move(val)),
        epochs_(std::move(train), o.loop.seed),
        part_(o.loop.group ? batch_part(o.batch_size, o.loop.group->rank(), o.loop.group->size()) : BatchPart{0, o.batch_size}),
        batches_([this](int64_t i) { return draw(i); }),
        model_(nullptr) {
    torch::manual_seed(o.loop.seed);
    if (!o.init_dir.empty()) {
      model_ = AutoencoderKL::from_dir(o.init_dir);
      return;
    }
    model_ = AutoencoderKL(o.vae);
    // The posterior starts narrow (σ ≈ 0.05 instead of 1): with unit noise on a freshly
    // initialised mean no picture information reaches the decoder and reconstruction stalls.
    torch::NoGradGuard no_grad;
    auto& last = model_->quant_conv ? model_->quant_conv : model_->encoder->conv_out;
    last->bias.narrow(0, o.vae.latent_channels, o.vae.latent_channels).fill_(kInitialLogvar);
  }

  // Decoder-only fine-tuning: the encoder (and quant_conv) frozen, the rest trained.
  NamedTensors trainable(int stage) override {
    if (!o_.decoder_only) return TrainTask::trainable(stage);
    NamedTensors decoder;
    for (auto& p : model_->named_parameters()) {
      const bool train = !in_encoder(p.key());
      p.value().set_requires_grad(train);
      if (train) decoder.emplace_back(p.key(), p.value());
    }
    return decoder;
  }

  std::string name() const override { return "vae"; }
  torch::nn::Module& module() override { return *model_; }
  std::map<std::string, std::string> weights_metadata() const override { return {{"vae_config", model_->config().to_json()}}; }
  int64_t batch_size() const override { return o_.batch_size; }
  nlohmann::json contract() const override {
    return {{"vae-config", nlohmann::json::parse(model_->config().to_json())},
            {"data", images_.content_key()},
            {"resolution", o_.resolution},
            {"kl-weight", o_.kl_weight},
            {"edge-weight", o_.edge_weight},
            {"charbonnier-eps", o_.charbonnier_eps},
            {"flip", o_.flip},
            {"val-fraction", o_.val_fraction},
            {"init", o_.init_dir},
            {"decoder-only", o_.decoder_only}};
  }
  AutoencoderKL& model() { return model_; }

  StepLoss loss(int64_t index) override {
    const auto d = o_.loop.device;
    VaeBatch b = batches_.get(index);
    auto x = b.images.to(d);
    auto [mean, logvar] = o_.decoder_only ? frozen_posterior(x) : posterior(x);
    auto z = mean + torch::exp(0.5 * logvar) * b.noise.to(d);
    auto rec = decode(z).to(torch::kFloat32);
    auto rec_loss = torch::sqrt((rec - x).pow(2) + o_.charbonnier_eps * o_.charbonnier_eps).mean();
    auto kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).to(torch::kFloat32).mean();
    auto edge = edge_loss(rec, x);
    auto total = rec_loss + o_.kl_weight * kl + o_.edge_weight * edge;
    return {total, {{"rec", rec_loss.item<double>()}, {"kl", kl.item<double>()}, {"edge", edge.item<double>()}}};
  }

  std::optional<Validation> validate() override {
    if (val_.empty()) return std::nullopt;
    double loss = 0, psnr = 0;
    const auto n = std::min<std::size_t>(val_.size(), 512);
    for (std::size_t s = 0; s < n; s += static_cast<std::size_t>(o_.batch_size)) {
      std::vector<int64_t> idx(val_.begin() + static_cast<std::ptrdiff_t>(s),
                               val_.begin() + static_cast<std::ptrdiff_t>(std::min(n, s + static_cast<std::size_t>(o_.batch_size))));
      auto x = images_.batch(idx).to(o_.loop.device);
      auto rec = decode(posterior(x).first).to(torch::kFloat32);
      const double w = static_cast<double>(idx.size()) / static_cast<double>(n);
      loss += w * torch::sqrt((rec - x).pow(2) + o_.charbonnier_eps * o_.charbonnier_eps).mean().item<double>();
      psnr += w * mean_psnr(rec, x);
    }
    return Validation{loss, {{"psnr", psnr}}};
  }

  // Up to 8 held-out images (training images when none is held out) over their reconstructions.
  void write_samples(const std::string& path) override {
    std::vector<int64_t> idx;
    const auto& from = val_.empty() ? std::vector<int64_t>{0} : val_;
    for (std::size_t i = 0; i < from.size() && idx.size() < 8; ++i) idx.push_back(from[i]);
    auto x = images_.batch(idx).to(o_.loop.device);
    auto rec = decode(posterior(x).first).to(torch::kFloat32).clamp(-1, 1);
    fs::create_directories(fs::path(path).parent_path());
    save_png(path, make_grid(torch::cat({x, rec}).cpu(), static_cast<int>(idx.size())));
  }

  // Encoder moments -> (mean, clamped logvar), with gradients.
  std::pair<torch::Tensor, torch::Tensor> posterior(const torch::Tensor& x) {
    auto moments = model_->encoder(x);
    if (model_->quant_conv) moments = model_->quant_conv(moments);
    auto parts = moments.chunk(2, 1);
    return {parts[0], parts[1].clamp(-30.0, 20.0)};
  }
  std::pair<torch::Tensor, torch::Tensor> frozen_posterior(const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    return posterior(x);
  }
  torch::Tensor decode(torch::Tensor z) {
    if (model_->post_quant_conv) z = model_->post_quant_conv(z);
    return model_->decoder(z);
  }

 private:
  static torch::Tensor edge_loss(const torch::Tensor& a, const torch::Tensor& b) {
    auto dx = [](const torch::Tensor& t) { return t.narrow(3, 1, t.size(3) - 1) - t.narrow(3, 0, t.size(3) - 1); };
    auto dy = [](const torch::Tensor& t) { return t.narrow(2, 1, t.size(2) - 1) - t.narrow(2, 0, t.size(2) - 1); };
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean();
  }

  // The whole batch's images, mirroring and noise are drawn; this rank's part of them kept.
  VaeBatch draw(int64_t index) {
    auto idx = epochs_.batch(index, o_.batch_size);
    auto gen = seeded_generator({o_.loop.seed, 0x7AE, static_cast<uint64_t>(index)});
    std::vector<bool> flip(idx.size(), false);
    if (o_.flip) {
      auto coin = torch::rand({static_cast<int64_t>(idx.size())}, gen);
      for (std::size_t i = 0; i < idx.size(); ++i) flip[i] = coin[static_cast<int64_t>(i)].item<float>() < 0.5f;
    }
    const int64_t h = o_.resolution / o_.vae.downscale_factor();
    auto noise = torch::randn({static_cast<int64_t>(idx.size()), o_.vae.latent_channels, h, h}, gen);
    const auto first = static_cast<std::ptrdiff_t>(part_.begin), last = first + static_cast<std::ptrdiff_t>(part_.size);
    return {images_.batch(std::vector<int64_t>(idx.begin() + first, idx.begin() + last), std::vector<bool>(flip.begin() + first, flip.begin() + last)),
            noise.narrow(0, part_.begin, part_.size)};
  }

  const VaeTrainOptions& o_;
  const ImageSet& images_;
  std::vector<int64_t> val_;
  EpochBatches epochs_;
  BatchPart part_;  // of every batch, this rank's (all of it for one process)
  Prefetch<VaeBatch> batches_;
  AutoencoderKL model_;
};

// Mean and standard deviation of posterior samples over up to `limit` images: the shift and
// 1/scale that give the denoiser zero-mean, unit-variance latents.
std::pair<double, double> latent_statistics(VaeTask& task, const ImageSet& images, int64_t limit, int64_t batch,
                                            torch::Device device) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min(images.size(), limit);
  double sum = 0, sum_sq = 0, count = 0;
  auto gen = seeded_generator({0x57A75});
  for (int64_t s = 0; s < n; s += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = s; i < std::min(n, s + batch); ++i) idx.push_back(i);
    auto [mean, logvar] = task.posterior(images.batch(idx).to(device));
    auto z = (mean + torch::exp(0.5 * logvar) * torch::randn(mean.sizes(), gen).to(device)).to(torch::kFloat64);
    sum += z.sum().item<double>();
    sum_sq += z.pow(2).sum().item<double>();
    count += static_cast<double>(z.numel());
  }
  const double mu = sum / count, var = std::max(sum_sq / count - mu * mu, 1e-12);
  return {mu, std::sqrt(var)};
}

// The encoder's weights as training left them: frozen, so the init's bit for bit.
NamedTensors encoder_weights(AutoencoderKLImpl& model) {
  NamedTensors w;
  for (const auto& p : model.named_parameters())
    if (in_encoder(p.key())) w.emplace_back(p.key(), p.value().detach().clone());
  return w;
}

}  // namespace

VaeTrainResult train_vae(const VaeTrainOptions& options) {
  // 1. Check inputs; a VAE to start from brings its own configuration.
  VaeTrainOptions o = options;
  if (o.decoder_only && o.init_dir.empty())
    throw Error("--decoder-only fine-tunes a trained VAE's decoder: name the VAE folder with --init");
  if (!o.init_dir.empty()) o.vae = VaeConfig::from_file((fs::path(o.init_dir) / "config.json").string());
  o.vae.validate();
  const int64_t f = o.vae.downscale_factor();
  if (o.resolution < f || o.resolution % f != 0)
    throw Error("resolution " + std::to_string(o.resolution) + " is not a multiple of the VAE's downscale factor " + std::to_string(f));
  if (o.batch_size < 1) throw Error("batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (o.kl_weight < 0 || o.edge_weight < 0) throw Error("loss weights must not be negative");
  check_loop_options(o.loop);
  const bool writer = writes_files(o.loop.group.get());  // rank 0 of a data-parallel run
  if (writer) prepare_run_folder(o.loop);

  // 2. Data, held out by image.
  DatasetOptions scan;
  scan.caption_column = o.caption_column;
  scan.captions_required = false;  // the VAE needs pictures only
  Dataset data = Dataset::scan(o.data_dir, scan);
  if (o.progress && writer) std::fprintf(stderr, "%s\n", data.summary().c_str());
  const ImageSet images = ImageSet::load(data, o.resolution, o.progress && writer);
  auto split = split_indices(images.size(), o.val_fraction, o.loop.seed);

  // 3. Train.
  VaeTask task(o, images, split.train, split.validation);
  VaeTrainResult result;
  result.run = run_training(task, o.loop);
  if (!result.run.finished || !writer) return result;

  // 4. The EMA weights, their latent statistics and held-out PSNR; OUT/vae/.
  auto& model = task.model();
  // Decoder-only: the encoder goes back after the EMA weights, since averaging a frozen weight with
  // itself can move its last bit and the latents must not move at all.
  const NamedTensors frozen = o.decoder_only ? encoder_weights(*model) : NamedTensors{};
  load_ema_weights(result.run.checkpoint, *model);
  {
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    for (const auto& [name, w] : frozen) params[name].copy_(w);
  }
  model->eval();
  if (o.decoder_only) {  // the latents are the init's: so are their scaling and shift
    result.shift_factor = o.vae.shift_factor;
    result.scaling_factor = o.vae.scaling_factor;
  } else {
    auto [mu, sigma] = latent_statistics(task, images, o.stats_images, o.batch_size, o.loop.device);
    result.shift_factor = mu;
    result.scaling_factor = 1.0 / sigma;
  }
  {
    torch::NoGradGuard no_grad;
    if (auto v = task.validate()) result.psnr = v->metrics.front().second;
  }
  VaeConfig cfg = model->config();
  cfg.scaling_factor = result.scaling_factor;
  cfg.shift_factor = result.shift_factor;
  result.vae_dir = (fs::path(o.loop.out_dir) / "vae").string();
  fs::create_directories(result.vae_dir);
  save_tensors((fs::path(result.vae_dir) / "diffusion_pytorch_model.safetensors").string(), module_state(*model), {},
               torch::kFloat32);
  write_file_atomic((fs::path(result.vae_dir) / "config.json").string(), [&](std::ostream& out) { out << cfg.to_json(2) << "\n"; });
  return result;
}

}  // namespace luminars

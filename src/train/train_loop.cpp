#include "train/train_loop.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/autocast.h"
#include "core/error.h"
#include "train/ema.h"
#include "train/gradient_buckets.h"
#include "train/run_checkpoint.h"
#include "train/run_contract.h"
#include "train/training_log.h"

namespace luminars {

namespace fs = std::filesystem;

NamedTensors TrainTask::trainable(int /*stage*/) {
  NamedTensors all;
  for (auto& p : module().named_parameters()) {
    p.value().set_requires_grad(true);
    all.emplace_back(p.key(), p.value());
  }
  return all;
}

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

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%07lld", static_cast<long long>(step));
  return buf;
}

// What a run writes into its folder; everything else there is left alone.
const char* const kRunFiles[] = {"checkpoints", "samples", "log.jsonl", "loss.png"};

}  // namespace

void check_loop_options(const LoopOptions& o) {
  if (o.stages.empty()) throw Error("no stages to train");
  for (const auto& s : o.stages) {
    if (s.steps < 0) throw Error("step counts must not be negative, got " + std::to_string(s.steps));
    if (!(s.lr > 0 && s.lr < 1)) throw Error("learning rate must be in (0, 1), got " + std::to_string(s.lr));
  }
  if (o.grad_accum < 1) throw Error("gradient accumulation must be at least 1");
  if (o.warmup < 0) throw Error("warm-up steps must not be negative");
  if (o.clip_grad < 0) throw Error("gradient clipping norm must not be negative");
  if (o.resume && o.overwrite) throw Error("--resume and --overwrite exclude each other");
  if (o.out_dir.empty()) throw Error("no run folder given (--out)");
}

void prepare_run_folder(const LoopOptions& o) {
  const fs::path dir(o.out_dir);
  if (fs::exists(dir) && !fs::is_directory(dir)) throw Error(o.out_dir + " exists and is not a folder");
  if (fs::exists(dir) && !fs::is_empty(dir) && !o.resume) {
    if (!o.overwrite)
      throw Error(o.out_dir + " already holds files (an earlier run?): pass --resume to continue it or --overwrite to start afresh");
    for (const char* name : kRunFiles) fs::remove_all(dir / name);
  }
  fs::create_directories(dir);
}

nlohmann::json training_contract(const TrainTask& task, const LoopOptions& o) {
  std::vector<int> stages;
  std::vector<int64_t> steps;
  std::vector<double> lrs;
  for (const auto& st : o.stages) {
    stages.push_back(st.stage);
    steps.push_back(st.steps);
    lrs.push_back(st.lr);
  }
  const bool autocast = o.device.is_cuda() ? o.bf16 : (o.cpu_bf16 && cpu_has_fast_bf16());
  nlohmann::json c{{"stage", stages},
                   {"steps", steps},
                   {"lr", lrs},
                   {"batch", task.batch_size()},
                   {"grad-accum", o.grad_accum},
                   {"beta1", o.beta1},
                   {"beta2", o.beta2},
                   {"adam-eps", o.adam_eps},
                   {"weight-decay", o.weight_decay},
                   {"warmup", o.warmup},
                   {"lr-schedule", o.decay == LrDecay::Cosine ? "cosine" : "constant"},
                   {"min-lr-ratio", o.min_lr_ratio},
                   {"clip-grad", o.clip_grad},
                   {"ema", o.ema_decay},
                   {"seed", o.seed},
                   {"device", o.device.is_cuda() ? "cuda" : "cpu"},
                   {"autocast", autocast ? "bf16" : "off"},
                   {"checkpoint-every", o.checkpoint_every},
                   {"keep-checkpoints", o.keep_checkpoints},
                   {"validate-every", o.validate_every},
                   {"sample-every", o.sample_every},
                   {"stop-after", o.stop_after},
                   {"skip-nonfinite", o.skip_nonfinite},
                   {"threads", at::get_num_threads()}};
  const nlohmann::json own = task.contract();
  for (const auto& [key, value] : own.items()) c[key] = value;
  return flat_contract(c);
}

TrainResult run_training(TrainTask& task, const LoopOptions& o) {
  check_loop_options(o);
  ProcessGroup* group = o.group.get();
  const bool writer = writes_files(group);  // rank 0 alone reads and writes the run folder
  const int world = group ? group->size() : 1;
  if (group) batch_part(task.batch_size(), group->rank(), world);  // the batch must split evenly
  const nlohmann::json contract = training_contract(task, o);
  if (group) check_ranks_agree(*group, contract);  // before rank 0 touches the run folder
  // Work of rank 0 alone; the other ranks wait for it under the longer --dist-rank0-timeout.
  auto on_rank0 = [group](const std::string& what, const std::function<void()>& work) {
    if (group)
      group->rank0_section(what, work);
    else
      work();
  };
  torch::nn::Module& module = task.module();
  module.to(o.device);
  const CheckpointedModule checkpointed{module, task.name(), task.weights_metadata()};

  // 1. Where to start: the run's latest checkpoint, or the module as it is; in a data-parallel
  //    run, rank 0's weights, EMA and place in the run on every rank.
  Ema ema(module, o.ema_decay);
  RunState state;
  state.seed = o.seed;
  state.contract = contract;
  std::optional<std::string> resume_dir;
  TrainResult result;
  on_rank0("preparing the run folder", [&] {
    prepare_run_folder(o);
    if (const int stale = remove_stale_checkpoint_temporaries(o.out_dir); stale > 0 && !o.quiet)
      std::fprintf(stderr, "%s: removed %d unfinished checkpoint folder(s) (.tmp-*) of an interrupted save\n", task.name().c_str(), stale);
    if (o.resume) resume_dir = latest_checkpoint(o.out_dir);
    if (!resume_dir) return;
    auto loaded = load_training_checkpoint(*resume_dir, checkpointed, ema).state;
    if (loaded.contract.is_null()) {
      if (loaded.seed != o.seed)
        throw Error("cannot resume " + *resume_dir + ": --seed was " + std::to_string(loaded.seed) + ", now " + std::to_string(o.seed));
      if (!o.quiet)
        std::fprintf(stderr, "%s: %s records no options (written by an earlier version): resuming without comparing them\n",
                     task.name().c_str(), resume_dir->c_str());
    } else {
      check_resume_contract(loaded.contract, contract, *resume_dir);
    }
    state.global_step = loaded.global_step;
    state.stage_index = loaded.stage_index;
    state.stage_step = loaded.stage_step;
    result.checkpoint = *resume_dir;
  });
  bool resumed = resume_dir.has_value();
  if (group) {
    auto place = torch::tensor({int64_t{resumed}, state.global_step, state.stage_index, state.stage_step}, torch::kInt64);
    group->broadcast({place}, "starting (rank 0's place in the run)");
    resumed = place[0].item<int64_t>() != 0;
    state.global_step = place[1].item<int64_t>();
    state.stage_index = place[2].item<int64_t>();
    state.stage_step = place[3].item<int64_t>();
    std::vector<torch::Tensor> weights;
    for (const auto& p : module.parameters()) weights.push_back(p);
    for (const auto& b : module.buffers()) weights.push_back(b);
    for (const auto& [name, w] : ema.weights()) weights.push_back(w);
    group->broadcast(weights, "starting (rank 0's weights)");
  }
  if (state.stage_index < static_cast<int64_t>(o.stages.size()) &&
      state.stage_step >= o.stages[static_cast<std::size_t>(state.stage_index)].steps) {
    ++state.stage_index;  // the checkpoint closed its stage: the next one starts fresh
    state.stage_step = 0;
    resumed = false;
  }
  module.train();

  std::optional<TrainingLog> log;
  if (writer) log.emplace(o.out_dir, task.name());
  const bool progress = writer && !o.quiet;
  StopOnSignal stop_on_signal;
  result.global_step = state.global_step;
  int64_t steps_this_run = 0, total_left = 0, nonfinite_in_a_row = 0;
  for (std::size_t si = static_cast<std::size_t>(state.stage_index); si < o.stages.size(); ++si)
    total_left += o.stages[si].steps - (si == static_cast<std::size_t>(state.stage_index) ? state.stage_step : 0);

  auto validate = [&](int stage) {
    torch::NoGradGuard no_grad;
    module.eval();
    auto v = task.validate();
    // The same figures for the averaged weights, the ones a model folder holds: over a short run
    // the average can lag far behind the trained weights ("ema_val_loss", "ema_<metric>").
    if (v && o.ema_decay > 0) {
      std::optional<Validation> averaged;
      with_ema_weights(module, ema, [&] { averaged = task.validate(); });
      if (averaged) {
        v->metrics.emplace_back("ema_val_loss", averaged->loss);
        for (const auto& [name, value] : averaged->metrics) v->metrics.emplace_back("ema_" + name, value);
      }
    }
    module.train();
    if (v) log->validation(state.global_step, stage, v->loss, v->metrics);
  };
  auto samples = [&] {
    torch::NoGradGuard no_grad;
    module.eval();
    with_ema_weights(module, ema, [&] { task.write_samples((fs::path(o.out_dir) / "samples" / (step_name(state.global_step) + ".png")).string()); });
    module.train();
  };

  // 2. The stages.
  for (std::size_t si = static_cast<std::size_t>(state.stage_index); si < o.stages.size(); ++si) {
    const StagePlan plan = o.stages[si];
    for (auto& p : module.parameters()) p.mutable_grad() = torch::Tensor();  // no stale gradients of the last stage
    AdamW opt(task.trainable(plan.stage), {plan.lr, o.beta1, o.beta2, o.adam_eps, o.weight_decay});
    if (resumed && static_cast<int64_t>(si) == state.stage_index) {
      if (writer) load_optimizer_state(*resume_dir, opt);
      if (group) {
        auto opt_state = opt.state();
        std::vector<torch::Tensor> tensors;
        for (const auto& [name, t] : opt_state) tensors.push_back(t);
        group->broadcast(tensors, "starting (rank 0's optimizer state)");
        if (!writer) opt.load_state(std::map<std::string, torch::Tensor>(opt_state.begin(), opt_state.end()), "rank 0's optimizer state");
      }
    }
    // Gradients averaged over the ranks in buckets, during the backward pass of each step's last micro-batch.
    std::unique_ptr<GradientBuckets> buckets;
    if (group) buckets = std::make_unique<GradientBuckets>(*group, opt.parameters());
    if (progress) {
      std::fprintf(stderr, "%s stage %d: %zu of %zu parameter tensors train, lr %.1e, %lld steps\n", task.name().c_str(),
                   plan.stage, opt.parameters().size(), module.parameters().size(), plan.lr,
                   static_cast<long long>(plan.steps));
      if (group)
        std::fprintf(stderr, "%s: data-parallel over %d ranks (%s), %lld images each per micro-batch, gradients in %lld buckets\n",
                     task.name().c_str(), world, group->backend().c_str(), static_cast<long long>(task.batch_size() / world),
                     static_cast<long long>(buckets->bucket_count()));
    }
    std::vector<torch::Tensor> trainable;
    for (const auto& [name, p] : opt.parameters()) trainable.push_back(p);

    for (int64_t step = state.stage_step; step < plan.steps; ++step) {
      const auto t0 = std::chrono::steady_clock::now();
      if (group) distributed_fault_hook(group->rank(), state.global_step + 1);
      opt.options().lr = scheduled_lr(plan.lr, step, plan.steps, o.warmup, o.decay, o.min_lr_ratio);
      opt.zero_grad();
      double loss_sum = 0;
      Metrics parts;
      for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
        StepLoss l;
        {
          AutocastGuard autocast(o.bf16, o.device, o.cpu_bf16);
          l = task.loss(state.global_step * o.grad_accum + micro);
        }
        if (buckets && micro + 1 == o.grad_accum) buckets->arm();
        if (l.backward_scale == 1.0)
          (l.loss / static_cast<double>(o.grad_accum)).backward();
        else
          (l.loss * (l.backward_scale / static_cast<double>(o.grad_accum))).backward();
        loss_sum += l.loss.item<double>();
        for (std::size_t k = 0; k < l.parts.size(); ++k) {
          if (micro == 0) parts.emplace_back(l.parts[k].first, 0.0);
          parts[k].second += l.parts[k].second / static_cast<double>(o.grad_accum);
        }
      }
      double loss = loss_sum / static_cast<double>(o.grad_accum);
      bool stop_requested = g_stop_requested;
      if (group) {
        buckets->finish();
        // One collective: the loss and its parts averaged over the ranks (what is logged, and
        // what the NaN check sees, alike everywhere), and whether any rank was asked to stop.
        std::vector<double> figures{loss};
        for (const auto& [name, v] : parts) figures.push_back(v);
        figures.push_back(stop_requested ? 1.0 : 0.0);
        auto t = torch::tensor(figures, torch::kFloat64);
        std::vector<torch::Tensor> one{t};
        group->all_reduce_sum(one, "averaging the loss");
        auto f = t.accessor<double, 1>();
        loss = f[0] / world;
        for (std::size_t k = 0; k < parts.size(); ++k) parts[k].second = f[static_cast<int64_t>(k) + 1] / world;
        stop_requested = f[static_cast<int64_t>(parts.size()) + 1] > 0;
      }
      const bool finite = std::isfinite(loss);
      double grad_norm = 0;
      if (finite) {
        nonfinite_in_a_row = 0;
        // After the all-reduce every rank holds the same gradients, so the same norm and update.
        if (o.clip_grad > 0) grad_norm = torch::nn::utils::clip_grad_norm_(trainable, o.clip_grad);
        opt.step();
        ema.update(module);
        result.last_loss = loss;
      } else if (++nonfinite_in_a_row <= o.skip_nonfinite) {
        // A NaN or infinite loss never reaches the weights: the step is skipped (when allowed),
        // counted as done, and the checkpoints due at it are written all the same.
        opt.zero_grad();
        ++result.skipped_steps;
      } else {
        throw Error(task.name() + " loss is " + std::to_string(loss) + " at step " + std::to_string(state.global_step + 1) +
                    ": training stopped; " +
                    (result.checkpoint.empty() ? std::string("no checkpoint was written yet")
                                               : "the last checkpoint, " + result.checkpoint + ", is intact (--resume continues from it)") +
                    ". Try a lower learning rate, or --skip-nonfinite N to skip such steps");
      }
      ++state.global_step;
      ++state.stage_step;
      ++steps_this_run;
      result.global_step = state.global_step;

      if (!finite && progress) {
        std::fprintf(stderr, "\n%s: loss is %g at step %lld: step skipped (%lld of %lld in a row allowed)\n", task.name().c_str(), loss,
                     static_cast<long long>(state.global_step), static_cast<long long>(nonfinite_in_a_row),
                     static_cast<long long>(o.skip_nonfinite));
      } else if (finite && writer) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double img_s = static_cast<double>(task.batch_size() * o.grad_accum) / std::max(secs, 1e-9);
        log->train_step(state.global_step, plan.stage, loss, opt.options().lr, grad_norm, img_s, parts);
        if (progress) log->progress(plan.stage, state.global_step, steps_this_run, total_left, loss, img_s);
      }
      // What is due after this step is decided alike on every rank (from the step and the
      // all-reduced stop request); rank 0 does it while the others wait.
      const bool last = step + 1 == plan.steps;  // the stage ends with a checkpoint of its last weights
      const bool run_done = last && si + 1 == o.stages.size();
      const bool stop = !run_done && (stop_requested || (o.stop_after > 0 && steps_this_run >= o.stop_after));
      const bool validate_now = o.validate_every > 0 && (state.global_step % o.validate_every == 0 || run_done);
      const bool samples_now = o.sample_every > 0 && (state.global_step % o.sample_every == 0 || run_done);
      const bool checkpoint_now = last || stop || (o.checkpoint_every > 0 && state.global_step % o.checkpoint_every == 0);
      if (validate_now || samples_now || checkpoint_now)
        on_rank0("validating, drawing samples or writing the checkpoint of step " + std::to_string(state.global_step), [&] {
          if (validate_now) validate(plan.stage);
          if (samples_now) samples();
          if (!checkpoint_now) return;
          RunState saved = state;
          saved.stage_index = static_cast<int64_t>(si);
          result.checkpoint = save_training_checkpoint(o.out_dir, checkpointed, ema, opt, saved, o.keep_checkpoints);
          log->plot();
        });
      if (stop) {
        if (progress) std::fprintf(stderr, "\nstopped at step %lld; resume with --resume\n", static_cast<long long>(state.global_step));
        return result;
      }
    }
    state.stage_step = 0;
    resumed = false;
  }
  if (writer) log->finish();
  result.finished = true;
  return result;
}

}  // namespace luminars

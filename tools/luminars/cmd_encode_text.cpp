// luminars encode-text: run the frozen CLIP text encoder on prompts and summarise its outputs.
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "model_components.h"
#include "text/text_encoder.h"

namespace luminars::cli {

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream o;
  o << "[";
  for (int64_t i = 0; i < t.dim(); ++i) o << (i ? ", " : "") << t.size(i);
  o << "]";
  return o.str();
}

void print_row(const char* name, const torch::Tensor& t) {
  if (!t.defined()) {
    std::printf("%-10s (none: the model has no text_projection)\n", name);
    return;
  }
  auto f = t.to(torch::kCPU, torch::kFloat64);
  std::printf("%-10s %-14s norm %.6f  mean %+.6f  std %.6f\n", name, shape_of(t).c_str(), f.norm().item<double>(),
              f.mean().item<double>(), f.std().item<double>());
}

}  // namespace

void register_encode_text(CLI::App& app, GlobalOptions& g) {
  struct Opts {
    std::string text_encoder, tokenizer, model;
    std::vector<std::string> texts;
    bool penultimate = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("encode-text", "encode prompts with the CLIP text encoder; print shapes and norms");
  cmd->add_option("--text-encoder", o->text_encoder, "folder with config.json and model.safetensors (default: the model's)")
      ->envname("LUMINARS_TEXT_ENCODER");
  cmd->add_option("--tokenizer", o->tokenizer, "folder with vocab.json and merges.txt (default: the model's)")
      ->envname("LUMINARS_TOKENIZER");
  cmd->add_option("--model", o->model, "model folder whose text encoder and tokenizer to use (default: the shipped models/emoji)");
  cmd->add_flag("--penultimate", o->penultimate, "ctx from the penultimate layer instead of the last hidden state");
  cmd->add_option("text", o->texts, "one or more prompts (one batch)")->required();
  cmd->callback([o, &g] {
    apply_global(g);
    if (o->text_encoder.empty()) o->text_encoder = model_component(o->model, &ModelFolder::text_encoder);
    if (o->tokenizer.empty()) o->tokenizer = model_component(o->model, &ModelFolder::tokenizer);
    auto encoder = TextEncoder::load(o->text_encoder, o->tokenizer);
    const auto& cfg = encoder.model()->config();
    auto out = encoder.encode_all(o->texts);
    std::printf("text encoder %s: hidden %lld, %lld layers, %s, projection %s\n", o->text_encoder.c_str(),
                static_cast<long long>(cfg.hidden_size), static_cast<long long>(cfg.num_hidden_layers),
                cfg.hidden_act.c_str(), cfg.with_projection ? std::to_string(cfg.projection_dim).c_str() : "none");
    for (std::size_t b = 0; b < o->texts.size(); ++b) {
      const auto n = encoder.tokenizer().encode(o->texts[b], /*pad=*/false).size();
      std::printf("prompt %zu: %zu tokens (BOS and EOS included)\n", b, n);
    }
    print_row(o->penultimate ? "ctx(pen)" : "ctx", o->penultimate ? out.penultimate_hidden_state : out.last_hidden_state);
    print_row("pooled", out.pooler_output);
    print_row("projected", out.text_embeds);
  });
}

}  // namespace luminars::cli

// The `luminars` program: one register_* function per subcommand, each in cmd_<name>.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace luminars::cli {

struct GlobalOptions {
  int threads = 0;                // 0 = every available core (its share of them, for one of several ranks)
  std::vector<std::string> argv;  // the command line, for --nproc-per-node to start its ranks with
};

// Applies the global options (thread count) before a subcommand runs.
void apply_global(const GlobalOptions& g);

void register_info(CLI::App& app, GlobalOptions& g);
void register_prepare(CLI::App& app, GlobalOptions& g);
void register_train(CLI::App& app, GlobalOptions& g);
void register_train_lora(CLI::App& app, GlobalOptions& g);
void register_generate(CLI::App& app, GlobalOptions& g);
void register_vae(CLI::App& app, GlobalOptions& g);
void register_tokenize(CLI::App& app, GlobalOptions& g);
void register_encode_text(CLI::App& app, GlobalOptions& g);
void register_train_tokenizer(CLI::App& app, GlobalOptions& g);
void register_score(CLI::App& app, GlobalOptions& g);
void register_train_vae(CLI::App& app, GlobalOptions& g);
void register_train_clip(CLI::App& app, GlobalOptions& g);
void register_export(CLI::App& app, GlobalOptions& g);
void register_evaluate(CLI::App& app, GlobalOptions& g);
void register_serve(CLI::App& app, GlobalOptions& g);

}  // namespace luminars::cli

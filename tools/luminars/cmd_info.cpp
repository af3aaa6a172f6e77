// luminars info: the configuration and its parameter budget beside the original's figures.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "core/blas_kernels.h"
#include "core/threads.h"
#include "model/checkpoint.h"
#include "model/luminars.h"

#define LUMINARS_STR2(x) #x
#define LUMINARS_STR(x) LUMINARS_STR2(x)
#define TORCH_VERSION_STR LUMINARS_STR(TORCH_VERSION_MAJOR) "." LUMINARS_STR(TORCH_VERSION_MINOR)

namespace luminars::cli {

void register_info(CLI::App& app, GlobalOptions& g) {
  struct Opts {
    std::string preset = "default", config, checkpoint;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("info", "print a configuration and its parameter budget per component");
  auto* p = cmd->add_option("--preset", o->preset, "named configuration (default, small, tiny)");
  auto* c = cmd->add_option("--config", o->config, "JSON configuration file")->check(CLI::ExistingFile);
  auto* k = cmd->add_option("--checkpoint", o->checkpoint, "denoiser .safetensors (config from its metadata)")
                ->check(CLI::ExistingFile);
  p->excludes(c)->excludes(k);
  c->excludes(k);
  cmd->add_flag("--json", o->json, "print the configuration as JSON only");
  cmd->callback([o, &g] {
    apply_global(g);
    Config cfg = !o->config.empty()       ? Config::from_file(o->config)
                 : !o->checkpoint.empty() ? read_denoiser_config(o->checkpoint)
                                          : Config::preset(o->preset);
    if (o->json) {
      std::cout << cfg.to_json(1) << "\n";
      return;
    }
    torch::NoGradGuard no_grad;
    LuminaRS model(cfg);
    auto budget = parameter_budget(model);
    std::printf("LuminaRS denoiser (%s)\n", !o->config.empty() ? o->config.c_str()
                                            : !o->checkpoint.empty() ? o->checkpoint.c_str()
                                                                     : ("preset " + o->preset).c_str());
    std::printf("config  %s\n\n", cfg.to_json().c_str());
    std::printf("%-12s %14s %10s %10s\n", "component", "parameters", "", "original");
    const std::pair<const char*, const char*> rows[] = {
        {"encoder", "~35M"}, {"bottleneck", "~15M"}, {"decoder", "~35M"}, {"embeds", "~5M"}, {"total", "~90M"}};
    for (const auto& [name, seed] : rows) {
      const int64_t n = budget.at(name);
      std::printf("%-12s %14lld %9.2fM %10s\n", name, static_cast<long long>(n), n / 1e6, seed);
    }
    std::printf("\nweights: %.1f MB as float32, %.1f MB as bf16\n", budget.at("total") * 4 / 1e6,
                budget.at("total") * 2 / 1e6);
    std::printf("threads: %d (LibTorch %s)\n", torch::get_num_threads(), TORCH_VERSION_STR);
    if (const auto kernels = blas_kernels(); !kernels.empty()) std::printf("BLAS: OpenBLAS, %s kernels\n", kernels.c_str());
  });
}

}  // namespace luminars::cli

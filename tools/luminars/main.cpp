// luminars: command-line entry point. Subcommands live in cmd_*.cpp; errors end here as one line.
#include <c10/util/Exception.h>

#include <csignal>
#include <iostream>

#include "cli_validators.h"
#include "commands.h"
#include "core/blas_kernels.h"
#include "core/error.h"
#include "core/threads.h"
#include "suggestions.h"

namespace luminars::cli {

void apply_global(const GlobalOptions& g) { configure_threads(g.threads); }

}  // namespace luminars::cli

int main(int argc, char** argv) {
  using namespace luminars::cli;
  luminars::reexec_with_better_blas_kernels(argv);  // before anything else runs (core/blas_kernels.h)
  // Past a file-size limit (ulimit -f) writes fail with EFBIG and a clear error, instead of the
  // process being killed mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"LuminaRS: a small text-to-image model (flow matching, recursive ConvNeXt U-Net)", "luminars"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--threads) also after the subcommand
  GlobalOptions g;
  g.argv.assign(argv, argv + argc);
  app.add_option("--threads", g.threads, "intra-op threads (default: every available core)")
      ->check(CLI::Range(0, 1024));
  register_info(app, g);
  register_prepare(app, g);
  register_train(app, g);
  register_train_lora(app, g);
  register_generate(app, g);
  register_vae(app, g);
  register_tokenize(app, g);
  register_encode_text(app, g);
  register_train_tokenizer(app, g);
  register_score(app, g);
  register_evaluate(app, g);
  register_train_vae(app, g);
  register_train_clip(app, g);
  register_export(app, g);
#ifdef LUMINARS_HAVE_SERVE
  register_serve(app, g);
#endif
  refuse_non_finite_numbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A misspelled subcommand or flag: name it and the nearest known one (help and version exit 0).
    if (e.get_exit_code() != 0)
      if (const auto why = explain_unknown_names(app, {argv + 1, argv + argc}); !why.empty()) {
        std::cerr << "luminars: error: " << why << "\n";
        return e.get_exit_code();
      }
    if (e.get_exit_code() != 0) {  // one line, as every other error
      std::cerr << "luminars: error: " << e.what() << "\n";
      return e.get_exit_code();
    }
    return app.exit(e);
  } catch (const luminars::Error& e) {
    std::cerr << "luminars: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "luminars: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "luminars: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

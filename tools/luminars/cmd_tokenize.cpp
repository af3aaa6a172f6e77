// luminars tokenize: the CLIP token ids of texts, one line per text, space separated.
#include <iostream>

#include "commands.h"
#include "model_components.h"
#include "text/clip_tokenizer.h"

namespace luminars::cli {

void register_tokenize(CLI::App& app, GlobalOptions& g) {
  struct Opts {
    std::string tokenizer, model;
    std::vector<std::string> texts;
    bool no_pad = false, no_truncate = false, tokens = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("tokenize", "print the CLIP token ids of texts, one line each (BOS ... EOS, padded to the context)");
  cmd->add_option("--tokenizer", o->tokenizer, "folder with vocab.json and merges.txt (default: the model's tokenizer)")
      ->envname("LUMINARS_TOKENIZER");
  cmd->add_option("--model", o->model, "model folder whose tokenizer to use (default: the shipped models/emoji)");
  cmd->add_flag("--no-pad", o->no_pad, "stop at EOS instead of padding to the context length");
  cmd->add_flag("--no-truncate", o->no_truncate, "keep every token of a long text (implies --no-pad)");
  cmd->add_flag("--tokens", o->tokens, "print the token strings on a line after each line of ids");
  cmd->add_option("text", o->texts, "one or more texts")->required();
  cmd->callback([o, &g] {
    apply_global(g);
    auto tok = ClipTokenizer::from_dir(o->tokenizer.empty() ? model_component(o->model, &ModelFolder::tokenizer) : o->tokenizer);
    const bool pad = !o->no_pad && !o->no_truncate;
    for (const auto& text : o->texts) {
      const auto ids = tok.encode(text, pad, /*truncate=*/!o->no_truncate);
      for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
      if (o->tokens) {
        for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << tok.id_to_token(ids[i]);
        std::cout << "\n";
      }
    }
  });
}

}  // namespace luminars::cli

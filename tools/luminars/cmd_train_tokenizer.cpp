// luminars train-tokenizer: learn CLIP-style byte-level BPE from a captioned image folder's
// captions and write a tokenizer folder (vocab.json, merges.txt, configs) for --tokenizer.
#include <iostream>

#include "commands.h"
#include "text/bpe_trainer.h"

namespace luminars::cli {

void register_train_tokenizer(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<TrainTokenizerOptions>();
  auto* cmd = app.add_subcommand("train-tokenizer", "learn a CLIP-style byte-level BPE tokenizer from the captions of an image folder");
  cmd->add_option("--data", o->data_dir, "image folder: imagefolder (metadata.jsonl) or .txt captions")->required();
  cmd->add_option("--vocab-size", o->bpe.vocab_size, "tokens in all: 512 byte symbols, one per merge, BOS and EOS (at least 514)")->required();
  cmd->add_option("--out", o->out_dir, "tokenizer folder to write (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json)")->required();
  cmd->add_option("--caption-column", o->caption_column, "metadata.jsonl caption column")->capture_default_str();
  cmd->add_option("--context-length", o->context_length, "model_max_length written to tokenizer_config.json")->capture_default_str();
  cmd->add_option("--min-frequency", o->bpe.min_frequency, "pairs seen fewer times are not merged")->capture_default_str();
  cmd->callback([o, &g] {
    apply_global(g);
    o->bpe.progress = true;
    const auto r = train_tokenizer(*o);
    std::cout << r.summary() << "\n";
  });
}

}  // namespace luminars::cli

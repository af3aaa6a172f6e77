// A component folder (tokenizer, text encoder, …) of a model folder, for subcommands that use one
// part of a model: the --model given, else the default model `generate` uses.
#pragma once
#include <string>

#include "pipeline/export_model.h"
#include "pipeline/model_folder.h"

namespace luminars::cli {

// The absolute path of `component` (e.g. &ModelFolder::tokenizer) in `model_dir`, or in
// default_model_dir() when `model_dir` is empty.
inline std::string model_component(const std::string& model_dir, std::string ModelFolder::*component) {
  const ModelFolder folder = ModelFolder::load(model_dir.empty() ? default_model_dir() : model_dir);
  return folder.path_of(folder.*component);
}

}  // namespace luminars::cli

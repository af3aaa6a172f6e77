#include "pipeline/generate.h"

#include <torch/torch.h>

#include <filesystem>

#include "core/image_tensor.h"
#include "pipeline/pipeline.h"

namespace luminars {

namespace fs = std::filesystem;

GenerateResult generate(const GenerateOptions& o) {
  if (o.out.empty()) throw Error("no output path given (--out)");
  PipelineOptions po;
  po.model_dir = o.model_dir;
  po.denoiser = o.denoiser;
  po.text_encoder = o.text_encoder;
  po.tokenizer = o.tokenizer;
  po.vae = o.vae;
  po.device = o.device;
  po.bf16 = o.bf16;
  po.keep_loaded = false;
  po.vae_tile = o.vae_tile;
  po.progress = o.progress;
  Pipeline pipeline(po);
  Generation g = pipeline.generate(o.request);

  GenerateResult r;
  r.path = o.out;
  r.count = static_cast<int64_t>(g.images.size());
  r.width = g.images.front().width;
  r.height = g.images.front().height;
  r.parameters = format_parameters(g.parameters.front());
  Image picture = g.images.front();
  if (g.images.size() > 1) {
    std::vector<torch::Tensor> batch;
    for (const auto& image : g.images) batch.push_back(image_to_tensor(image));
    picture = make_grid(torch::stack(batch));
  }
  if (auto parent = fs::path(o.out).parent_path(); !parent.empty()) fs::create_directories(parent);
  save_png(o.out, picture, {{"parameters", r.parameters}});
  return r;
}

void apply_png_parameters(const std::string& png_path, GenerationRequest& request) {
  const auto chunks = read_png_text(png_path);
  const auto it = chunks.find("parameters");
  if (it == chunks.end()) throw Error(png_path + " has no 'parameters' text (not written by LuminaRS or AUTOMATIC1111)");
  GenerationParameters p;
  try {
    p = parse_parameters(it->second);
  } catch (const Error& e) {
    throw Error(png_path + ": " + e.what());
  }
  request.prompt = p.prompt;
  request.negative = p.negative;
  request.steps = p.steps;
  request.sampler = p.sampler;
  request.cfg_scale = p.cfg_scale;
  request.seed = p.seed;
  request.shift = p.shift;
  if (p.width > 0) request.width = p.width;
  if (p.height > 0) request.height = p.height;
  if (p.strength) request.strength = *p.strength;
}

}  // namespace luminars

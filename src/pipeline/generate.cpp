#include "pipeline/generate.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "core/image_file.h"
#include "core/image_tensor.h"
#include "pipeline/pipeline.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

PipelineOptions pipeline_options(const GenerateOptions& o) {
  PipelineOptions po = o.pipeline;
  po.keep_loaded = false;
  return po;
}

}  // namespace

SizeRule model_size_rule(const GenerateOptions& o) { return Pipeline(pipeline_options(o)).size_rule(o.request); }

GenerateResult generate(const GenerateOptions& o) {
  if (o.out.empty()) throw Error("no output path given (--out)");
  image_format_for(o.out);  // refused before any work
  Pipeline pipeline(pipeline_options(o));
  if (const SizeRule rule = pipeline.size_rule(o.request); !o.any_size && !rule.trained.empty()) {
    const auto [width, height] = pipeline.output_size(o.request);
    const std::string allow = "give --size " + std::to_string(rule.trained.front()) + ", or --any-size to draw it anyway";
    for (auto [name, v] : {std::pair<const char*, int64_t>{"width", width}, {"height", height}})
      if (auto error = untrained_size_error(name, v, rule, allow); !error.empty()) throw Error(error);
  }
  GenerationRequest request = o.request;
  request.hires_any_size = o.any_size;
  Generation g = pipeline.generate(request);

  GenerateResult r;
  r.path = o.out;
  r.count = static_cast<int64_t>(g.images.size());
  r.width = g.images.front().width;
  r.height = g.images.front().height;
  GenerationParameters recorded = g.parameters.front();
  if (g.parameters.size() > 1)
    for (const auto& p : g.parameters) recorded.batch_seeds.push_back(p.seed);
  r.parameters = format_parameters(recorded);
  Image picture = g.images.front();
  if (g.images.size() > 1) {
    std::vector<torch::Tensor> batch;
    for (const auto& image : g.images) batch.push_back(image_to_tensor(image));
    picture = make_grid(torch::stack(batch));
  }
  if (auto parent = fs::path(o.out).parent_path(); !parent.empty()) fs::create_directories(parent);
  save_image(o.out, picture, {{"parameters", r.parameters}});
  return r;
}

}  // namespace luminars

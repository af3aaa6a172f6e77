// include/luminars.h over luminars::Pipeline: arguments checked here, every exception turned into a
// status and a per-thread message, calls on one model serialised by its mutex.
#include "luminars.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include "core/threads.h"
#include "pipeline/lora_prompt.h"
#include "pipeline/pipeline.h"

struct luminars_model {
  std::mutex mutex;
  std::unique_ptr<luminars::Pipeline> pipeline;
};

namespace {

constexpr uint64_t kMaxSeed = 4294967295u;  // LibTorch's CPU generator keeps a seed's low 32 bits
constexpr size_t kMaxBatch = 64;
constexpr int kMaxSide = 4096;

thread_local std::string last_error;

luminars_status fail(luminars_status status, std::string message) {
  last_error = std::move(message);
  return status;
}

// Runs `body`, turning what it throws into a status and last_error.
template <typename Body>
luminars_status guarded(Body&& body) {
  try {
    return body();
  } catch (const luminars::Cancelled& e) {
    return fail(LUMINARS_ERROR_CANCELLED, e.what());
  } catch (const luminars::Error& e) {
    return fail(LUMINARS_ERROR_FAILED, e.what());
  } catch (const std::bad_alloc&) {
    return fail(LUMINARS_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    // LibTorch's errors (c10::Error, its out-of-memory error among them) carry a backtrace after
    // the first line.
    std::string what = e.what();
    if (auto eol = what.find('\n'); eol != std::string::npos) what.resize(eol);
    if (what.find("out of memory") != std::string::npos) return fail(LUMINARS_ERROR_OUT_OF_MEMORY, what);
    return fail(LUMINARS_ERROR_INTERNAL, what);
  } catch (...) {
    return fail(LUMINARS_ERROR_INTERNAL, "unknown error");
  }
}

// An input picture as a luminars::Image; errors name `what`.
luminars::Image to_image(const luminars_image& in, const char* what) {
  if (!in.data || in.width <= 0 || in.height <= 0 || in.width > 16384 || in.height > 16384)
    throw std::invalid_argument(std::string(what) + ": needs data and a width and height from 1 to 16384, got " +
                                std::to_string(in.width) + "x" + std::to_string(in.height));
  luminars::Image image;
  image.width = in.width;
  image.height = in.height;
  image.rgb.assign(in.data, in.data + static_cast<size_t>(in.width) * in.height * 3);
  return image;
}

}  // namespace

extern "C" {

const char* luminars_version(void) { return "0.2.0"; }

const char* luminars_error_message(luminars_status status) {
  switch (status) {
    case LUMINARS_OK: return "ok";
    case LUMINARS_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case LUMINARS_ERROR_FAILED: return "failed";
    case LUMINARS_ERROR_CANCELLED: return "cancelled";
    case LUMINARS_ERROR_OUT_OF_MEMORY: return "out of memory";
    case LUMINARS_ERROR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* luminars_last_error(void) { return last_error.c_str(); }

void luminars_model_params_defaults(luminars_model_params* params) {
  if (!params) return;
  params->device = "auto";
  params->precision = LUMINARS_PRECISION_AUTO;
  params->threads = 0;
  params->low_memory = 0;
  params->vae_tile = 320;
  params->lora_dir = nullptr;
}

luminars_status luminars_model_load(const char* model_dir, const luminars_model_params* params, luminars_model** model) {
  if (!model) return fail(LUMINARS_ERROR_INVALID_ARGUMENT, "luminars_model_load: model is NULL");
  *model = nullptr;
  if (!model_dir || !*model_dir) return fail(LUMINARS_ERROR_INVALID_ARGUMENT, "luminars_model_load: no model folder given");
  luminars_model_params p;
  luminars_model_params_defaults(&p);
  if (params) p = *params;
  if (p.precision != LUMINARS_PRECISION_AUTO && p.precision != LUMINARS_PRECISION_FLOAT32)
    return fail(LUMINARS_ERROR_INVALID_ARGUMENT, "precision must be LUMINARS_PRECISION_AUTO or _FLOAT32, got " +
                                                     std::to_string(static_cast<int>(p.precision)));
  if (p.threads < 0 || p.threads > 1024)
    return fail(LUMINARS_ERROR_INVALID_ARGUMENT, "threads must be between 0 and 1024, got " + std::to_string(p.threads));
  if (p.vae_tile < 0 || p.vae_tile > 65536)
    return fail(LUMINARS_ERROR_INVALID_ARGUMENT, "vae_tile must be between 0 and 65536, got " + std::to_string(p.vae_tile));
  return guarded([&] {
    luminars::configure_threads(p.threads);
    luminars::PipelineOptions options;
    options.model_dir = model_dir;
    options.device = p.device ? p.device : "auto";
    options.bf16 = p.precision == LUMINARS_PRECISION_AUTO;
    options.keep_loaded = !p.low_memory;
    options.vae_tile = p.vae_tile;
    options.progress = false;
    options.lora_dir = p.lora_dir ? std::string(p.lora_dir) : luminars::default_lora_dir(model_dir);
    auto m = std::make_unique<luminars_model>();
    m->pipeline = std::make_unique<luminars::Pipeline>(options);
    *model = m.release();
    return LUMINARS_OK;
  });
}

void luminars_model_free(luminars_model* model) { delete model; }

int luminars_model_resolution(const luminars_model* model) {
  return model ? static_cast<int>(model->pipeline->resolution()) : 0;
}

int luminars_model_size_multiple(const luminars_model* model) {
  return model ? static_cast<int>(model->pipeline->size_multiple()) : 0;
}

void luminars_generate_params_defaults(luminars_generate_params* params) {
  if (!params) return;
  std::memset(params, 0, sizeof *params);
  params->prompt = "";
  params->guidance = -1;
  params->shift = 0;
  params->strength = 0;
  params->mask_blur = 4;
  params->hires_from = -1;
  params->hires_strength = 0;
}

luminars_status luminars_generate(luminars_model* model, const luminars_generate_params* params, luminars_image* images,
                                  size_t count) {
  constexpr auto bad = LUMINARS_ERROR_INVALID_ARGUMENT;
  if (!model) return fail(bad, "luminars_generate: model is NULL");
  if (!params) return fail(bad, "luminars_generate: params is NULL");
  if (!params->prompt) return fail(bad, "luminars_generate: prompt is NULL (give \"\" for none)");
  if (!images) return fail(bad, "luminars_generate: images is NULL");
  if (count < 1 || count > kMaxBatch)
    return fail(bad, "the number of images must be between 1 and 64, got " + std::to_string(count));
  const int width = images[0].width, height = images[0].height;
  for (size_t i = 0; i < count; ++i) {
    const auto& im = images[i];
    if (!im.data) return fail(bad, "image " + std::to_string(i) + " has no data");
    if (im.width != width || im.height != height)
      return fail(bad, "image " + std::to_string(i) + " is " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                           " but image 0 is " + std::to_string(width) + "x" + std::to_string(height) +
                           ": a batch has one size");
  }
  if (width <= 0 || height <= 0 || width > kMaxSide || height > kMaxSide)
    return fail(bad, "the output size must be from 1 to 4096 a side, got " + std::to_string(width) + "x" + std::to_string(height));
  if (params->seed > kMaxSeed || params->seed + (count - 1) > kMaxSeed)
    return fail(bad, "seeds go from 0 to 4294967295; seed " + std::to_string(params->seed) + " and " + std::to_string(count) +
                         " image(s) reach past it");
  if (params->steps < 0) return fail(bad, "steps must be 0 (the model's default) or from 1 to 1000, got " + std::to_string(params->steps));
  if (params->strength < 0 || params->strength > 1)
    return fail(bad, "strength must be 0 (the default) or in (0, 1], got " + std::to_string(params->strength));
  if (params->mask && !params->init_image) return fail(bad, "a mask needs an init image (inpainting)");
  if (params->hires_from < -1 || params->hires_from > kMaxSide)
    return fail(bad, "hires_from must be -1 (the folder's default), 0 (one pass) or a side up to 4096, got " + std::to_string(params->hires_from));
  if (!(params->hires_strength >= 0 && params->hires_strength <= 1))
    return fail(bad, "hires_strength must be 0 (the folder's default) or in (0, 1], got " + std::to_string(params->hires_strength));
  if (params->lora_count > 0 && !params->loras) return fail(bad, "lora_count is " + std::to_string(params->lora_count) + " but loras is NULL");
  for (size_t i = 0; i < params->lora_count; ++i) {
    const auto& l = params->loras[i];
    if (!l.path || !*l.path) return fail(bad, "loras[" + std::to_string(i) + "]: no path");
    if (!std::isfinite(l.weight)) return fail(bad, "loras[" + std::to_string(i) + "] (" + l.path + "): the weight is not a finite number");
  }

  return guarded([&] {
    luminars::GenerationRequest r;
    r.prompt = params->prompt;
    r.negative = params->negative ? params->negative : "";
    r.seed = params->seed;
    r.batch = static_cast<int64_t>(count);
    r.width = width;
    r.height = height;
    if (params->steps > 0) r.steps = params->steps;
    if (params->guidance >= 0) r.cfg_scale = params->guidance;
    if (params->shift > 0) r.shift = params->shift;
    if (params->sampler) r.sampler = params->sampler;
    try {
      if (params->init_image) r.init_image = to_image(*params->init_image, "init_image");
      if (params->mask) r.mask = to_image(*params->mask, "mask");
    } catch (const std::invalid_argument& e) {
      return fail(bad, e.what());
    }
    r.strength = params->strength > 0 ? params->strength : params->mask ? 1.0 : 0.75;
    r.mask_blur = params->mask_blur;
    if (params->hires_from >= 0) r.hires_from = params->hires_from;
    if (params->hires_strength > 0) r.hires_strength = params->hires_strength;
    for (size_t i = 0; i < params->lora_count; ++i) {
      luminars::LoraSpec spec;
      spec.path = params->loras[i].path;
      spec.weight = params->loras[i].weight;
      r.loras.push_back(spec);
    }
    bool cancel = false;
    if (params->progress) {
      r.on_step = [&](int64_t step, int64_t steps) {
        if (!cancel) cancel = params->progress(static_cast<int>(step), static_cast<int>(steps), params->progress_user_data) != 0;
      };
      r.cancelled = [&] { return cancel; };
    }
    std::lock_guard lock(model->mutex);
    luminars::Generation g = model->pipeline->generate(r);
    if (g.images.size() != count) return fail(LUMINARS_ERROR_INTERNAL, "the pipeline drew " + std::to_string(g.images.size()) +
                                                                           " images for " + std::to_string(count));
    for (size_t i = 0; i < count; ++i) {
      const auto& im = g.images[i];
      if (im.width != width || im.height != height)
        return fail(LUMINARS_ERROR_INTERNAL, "the pipeline drew " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                                                 " for " + std::to_string(width) + "x" + std::to_string(height));
      std::memcpy(images[i].data, im.rgb.data(), im.rgb.size());
    }
    return LUMINARS_OK;
  });
}

}  // extern "C"

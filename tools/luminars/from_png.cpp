#include "from_png.h"

#include "core/error.h"
#include "core/number_text.h"
#include "pipeline/png_recipe.h"

namespace luminars::cli {

namespace {

bool consecutive(const std::vector<uint64_t>& seeds) {
  for (std::size_t i = 1; i < seeds.size(); ++i)
    if (seeds[i] != seeds[0] + i) return false;
  return true;
}

}  // namespace

bool apply_from_png(const std::string& png, const std::function<bool(const std::string&)>& given, const std::string& model_name,
                    GenerationRequest& r, std::ostream& notes) {
  const PngRecipe recipe = read_png_recipe(png);
  const GenerationParameters& p = recipe.parameters;
  const auto note = [&](const std::string& line) { notes << "luminars: note: " << png << ": " << line << "\n"; };

  // What it cannot be drawn again without.
  if (!recipe.unread.sampler.empty() && !given("--sampler"))
    throw Error("sampler '" + recipe.unread.sampler + "' from " + png + " is not available (have: euler, heun); pass --sampler");
  if (recipe.inpainting() && !(given("--init-image") && given("--mask")))
    throw Error(png + " was inpainted (Mask blur " + std::to_string(*p.mask_blur) +
                "): pass --init-image and --mask with the picture and the mask it repainted");
  if (recipe.image_to_image() && !given("--init-image"))
    throw Error(png + " was drawn image-to-image (Denoising strength " + format_number(*p.strength) +
                "): pass --init-image with the picture it started from");

  r.prompt = p.prompt;
  r.negative = p.negative;
  r.steps = p.steps;
  if (recipe.unread.sampler.empty()) r.sampler = p.sampler;
  r.cfg_scale = p.cfg_scale;
  r.seed = p.seed;
  r.shift = p.shift;
  if (p.width > 0) r.width = p.width;
  if (p.height > 0) r.height = p.height;
  if (recipe.hires_fix()) {  // two passes, as recorded; a picture drawn in one pass is redrawn in one
    r.hires_from = std::max(p.first_width, p.first_height);
    if (p.strength) r.hires_strength = *p.strength;
  } else {
    r.hires_from = 0;
    if (p.strength) r.strength = *p.strength;
  }
  if (p.mask_blur) r.mask_blur = *p.mask_blur;
  if (p.batch_seeds.size() > 1 && !given("--batch")) {
    r.batch = static_cast<int64_t>(p.batch_seeds.size());
    r.seed = p.batch_seeds.front();
    if (!consecutive(p.batch_seeds))
      note("its " + std::to_string(p.batch_seeds.size()) + " seeds are not consecutive; drawing seeds " + std::to_string(r.seed) +
           " to " + std::to_string(r.seed + p.batch_seeds.size() - 1));
  }

  // What is not restored, said once each.
  if (recipe.unread.ancestral && !given("--sampler"))
    note("sampler 'Euler a' is drawn with euler (no ancestral noise here), so the picture will differ");
  if (!recipe.unread.keys.empty()) {
    std::string keys;
    for (const auto& k : recipe.unread.keys) keys += (keys.empty() ? "" : ", ") + k;
    note("not restored (no such setting here): " + keys);
  }
  if (!p.model.empty() && p.model != model_name) note("drawn with model '" + p.model + "'; drawing with '" + model_name + "'");
  return recipe.image_to_image();
}

}  // namespace luminars::cli

#include "pipeline/png_recipe.h"

#include <algorithm>

#include "core/error.h"
#include "core/image.h"

namespace luminars {

PngRecipe read_png_recipe(const std::string& png_path) {
  const auto chunks = read_png_text(png_path);
  const auto it = chunks.find("parameters");
  if (it == chunks.end()) throw Error(png_path + " has no 'parameters' text (not written by LuminaRS or AUTOMATIC1111)");
  PngRecipe recipe;
  try {
    recipe.parameters = parse_parameters(it->second, recipe.unread);
  } catch (const Error& e) {
    throw Error(png_path + ": " + e.what());
  }
  recipe.hires_fix = std::any_of(recipe.unread.keys.begin(), recipe.unread.keys.end(),
                                 [](const std::string& key) { return key.starts_with("Hires"); });
  if (recipe.hires_fix) recipe.parameters.strength.reset();
  return recipe;
}

}  // namespace luminars

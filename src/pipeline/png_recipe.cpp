#include "pipeline/png_recipe.h"

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
  return recipe;
}

}  // namespace luminars

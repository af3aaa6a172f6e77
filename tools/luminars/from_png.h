// `generate --from-png`: a picture's recorded settings put back into a request where the command
// line gives none, a note on stderr for each thing that cannot be restored, and an error naming
// what is missing when the picture cannot be drawn again without more (its init image, its mask,
// a sampler the project has).
#pragma once
#include <functional>
#include <ostream>
#include <string>

#include "pipeline/generation.h"

namespace luminars::cli {

// `given(flag)`: whether the command line gave that flag. `model_name`: the folder drawn with.
// Returns whether the picture recorded a strength (image-to-image, inpainting).
bool apply_from_png(const std::string& png_path, const std::function<bool(const std::string&)>& given,
                    const std::string& model_name, GenerationRequest& request, std::ostream& notes);

}  // namespace luminars::cli

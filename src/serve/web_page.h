// The web page served at `/`: src/serve/web/index.html, built into the program (no files to find
// at run time, no CDN).
#pragma once
#include <string_view>

namespace luminars::serve {

std::string_view index_html();

}  // namespace luminars::serve

// The layers of src/, read from the #include lines: a folder includes only itself and folders of
// lower layers, so core/ builds alone, text/ without train/, and so on up to the C API. The public
// header include/luminars.h includes nothing but C's standard headers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace luminars {
namespace {

namespace fs = std::filesystem;

const fs::path kSource = fs::path(LUMINARS_SOURCE_DIR);

// Lower numbers are lower layers; folders of one layer do not include each other.
const std::map<std::string, int> kLayer = {
    {"core", 0},                              // files, images, safetensors, tensors, threads, UTF-8
    {"data", 1},                              // captioned image folders
    {"text", 2}, {"vae", 2}, {"model", 2},    // CLIP, the autoencoder, the denoiser
    {"flow", 3},                              // flow matching and samplers over the denoiser
    {"train", 4},                             // training loops, caches, checkpoints
    {"pipeline", 5},                          // model folders, generation, prepare, export
    {"serve", 6}, {"capi", 6},                // the HTTP server; the C API (include/luminars.h)
};

TEST(Layers, NoFolderIncludesAHigherOrASiblingOne) {
  const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+)/)");
  std::set<std::string> folders;
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kSource / "src")) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
    const std::string folder = fs::relative(entry.path(), kSource / "src").begin()->string();
    ASSERT_TRUE(kLayer.count(folder)) << "src/" << folder << " has no layer in tests/test_layers.cpp";
    folders.insert(folder);
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      std::smatch m;
      if (!std::regex_search(line, m, include)) continue;
      const std::string target = m[1];
      if (target == folder) continue;
      ASSERT_TRUE(kLayer.count(target)) << entry.path() << ":" << n << " includes an unknown folder " << target;
      EXPECT_LT(kLayer.at(target), kLayer.at(folder))
          << fs::relative(entry.path(), kSource).string() << ":" << n << " (" << folder << ", layer " << kLayer.at(folder)
          << ") includes " << target << "/ (layer " << kLayer.at(target) << ")";
      ++checked;
    }
  }
  EXPECT_EQ(folders.size(), kLayer.size());  // every layer named here exists
  EXPECT_GT(checked, 100);
}

TEST(Layers, ThePublicHeaderIncludesOnlyCStandardHeaders) {
  std::ifstream in(kSource / "include" / "luminars.h");
  ASSERT_TRUE(in) << "include/luminars.h is missing";
  const std::regex include(R"(^\s*#\s*include\s*(\S+))");
  std::set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, include)) seen.insert(m[1]);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"<stddef.h>", "<stdint.h>"}));
  EXPECT_FALSE(fs::exists(kSource / "include" / "luminars")) << "include/ holds only luminars.h";
}

}  // namespace
}  // namespace luminars

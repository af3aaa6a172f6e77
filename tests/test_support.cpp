#include "test_support.h"

#include "core/error.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

namespace luminars::test {

std::string default_fixtures_path() {
  return (std::filesystem::path(LUMINARS_SOURCE_DIR) / ".." / "shared" / "fixtures").lexically_normal().string();
}

std::string fixtures_dir() {
  if (const char* env = std::getenv("LUMINARS_FIXTURES"); env && *env) {
    if (std::filesystem::is_directory(env)) return env;
    return "";
  }
  auto p = default_fixtures_path();
  return std::filesystem::is_directory(p) ? p : "";
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

double rel_error(const torch::Tensor& out, const torch::Tensor& ref) {
  auto o = out.detach().to(torch::kCPU, torch::kFloat64), r = ref.detach().to(torch::kCPU, torch::kFloat64);
  EXPECT_EQ(o.sizes(), r.sizes());
  if (o.sizes() != r.sizes()) return 1e30;
  return (o - r).norm().item<double>() / std::max(r.norm().item<double>(), 1e-30);
}

TempDir::TempDir() {
  std::random_device rd;
  path = std::filesystem::temp_directory_path() / ("luminars-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

RunResult run(const std::string& command) {
  RunResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), pipe)) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

RunResult run_cli(const std::string& args) { return run(std::string(LUMINARS_CLI_PATH) + " --threads 2 " + args); }

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

Image gradient_image(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(255 * x / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(255 * y / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>((x * 7 + y * 3) % 256);
    }
  return img;
}

}  // namespace luminars::test

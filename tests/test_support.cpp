#include "test_support.h"

#include "core/error.h"
#include "core/tensor_io.h"
#include "flow/flow_matching.h"
#include "text/bpe_trainer.h"
#include "train/latent_cache.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

namespace luminars::test {

std::string shipped_model_dir() {
  return (std::filesystem::path(LUMINARS_SOURCE_DIR) / "models" / "emoji").string();
}

std::string default_fixtures_path() {
  return (std::filesystem::path(LUMINARS_SOURCE_DIR) / ".." / "shared" / "fixtures").lexically_normal().string();
}

double mean_abs_difference(const Image& a, const Image& b, int x0, int x1) {
  if (a.width != b.width || a.height != b.height || a.rgb.size() != b.rgb.size()) return 255.0;
  if (x1 < 0) x1 = a.width;
  double sum = 0;
  std::size_t n = 0;
  for (int y = 0; y < a.height; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c, ++n) {
        const std::size_t i = (static_cast<std::size_t>(y) * a.width + x) * 3 + c;
        sum += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
      }
  return n ? sum / static_cast<double>(n) : 0.0;
}

bool in_ci() {
  const char* ci = std::getenv("LUMINARS_CI");
  return ci && std::string(ci) == "1";
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

void expect_same_tensor_file(const std::string& a, const std::string& b) {
  auto x = load_tensors(a), y = load_tensors(b);
  ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
  for (const auto& [name, t] : x) {
    ASSERT_TRUE(y.count(name)) << name << " missing from " << b;
    EXPECT_TRUE(torch::equal(t, y.at(name))) << a << ": " << name;
  }
}

namespace {
const char* const kShapeColours[] = {"red", "green", "blue", "yellow", "purple", "orange"};
const uint8_t kShapeRgb[][3] = {{220, 30, 30}, {30, 170, 50}, {30, 60, 220}, {235, 210, 30}, {140, 40, 170}, {245, 140, 20}};
const char* const kShapes[] = {"circle", "square", "triangle"};
}  // namespace

std::string shape_caption(int i) { return std::string("a ") + kShapeColours[i % 6] + " " + kShapes[(i / 6) % 3]; }

void write_shapes_dataset(const std::string& dir, int n, int size) {
  std::filesystem::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    const int colour = i % 6, shape = (i / 6) % 3;
    const bool grey = (i / 18) % 2 == 1;
    const double r = size * (0.22 + 0.08 * ((i / 36) % 3)), cx = size * (0.4 + 0.2 * ((i * 7) % 5) / 4.0),
                 cy = size * (0.4 + 0.2 * ((i * 3) % 5) / 4.0);
    Image img;
    img.width = img.height = size;
    img.rgb.resize(static_cast<std::size_t>(size) * size * 3);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        bool in = false;
        if (shape == 0) in = dx * dx + dy * dy < r * r;
        if (shape == 1) in = std::abs(dx) < r * 0.85 && std::abs(dy) < r * 0.85;
        if (shape == 2) in = dy < r * 0.8 && dy > -r && std::abs(dx) < (dy + r) * 0.55;
        uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * size + x) * 3];
        for (int c = 0; c < 3; ++c) p[c] = in ? kShapeRgb[colour][c] : (grey ? 205 : 250);
      }
    const std::string stem = dir + "/shape" + std::to_string(i);
    save_png(stem + ".png", img);
    write_text(stem + ".txt", shape_caption(i) + "\n" + kShapeColours[colour] + " " + kShapes[shape] + " on a " +
                                  (grey ? "grey" : "white") + " background\n");
  }
}

void write_latent_cache(const std::string& dir, int64_t n, LatentCacheShape shape) {
  std::filesystem::create_directories(dir);
  auto gen = make_generator(99);
  CacheInfo info;
  info.resolution = 16;
  info.latent_channels = shape.channels;
  info.latent_size = shape.side;
  info.text_dim = 40;
  info.context_length = 7;
  const int64_t per_shard = shape.per_shard;
  for (int64_t s = 0, start = 0; start < n; ++s, start += per_shard) {
    const int64_t k = std::min(per_shard, n - start);
    CacheShard sh;
    sh.mean = torch::randn({k, shape.channels, shape.side, shape.side}, gen);
    sh.std = torch::rand({k, shape.channels, shape.side, shape.side}, gen) * 0.1;
    std::vector<int64_t> item;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t c = 0; c < 1 + (start + i) % 2; ++c) item.push_back(i);  // 1 or 2 captions
    sh.caption_item = torch::tensor(item, torch::kInt64);
    sh.ctx = torch::randn({sh.caption_item.size(0), 7, 40}, gen);
    sh.pooled = torch::randn({sh.caption_item.size(0), 40}, gen);
    for (int64_t i = 0; i < k; ++i) sh.paths.push_back("img" + std::to_string(start + i) + ".png");
    write_cache_shard(dir, s, sh);
    info.shards.push_back(shard_name(s));
    info.items += k;
    info.captions += sh.caption_item.size(0);
  }
  write_cache_prompts(dir + "/empty.safetensors", torch::randn({1, 7, 40}, gen), torch::randn({1, 40}, gen), {""});
  write_cache_prompts(dir + "/samples.safetensors", torch::randn({2, 7, 40}, gen), torch::randn({2, 40}, gen), {"a", "b"});
  write_cache_index(dir, info);
}

void write_tokenizer(const std::string& dir) {
  TrainTokenizerOptions t;
  t.data_dir = dir + "/data";
  t.out_dir = dir + "/tokenizer";
  t.context_length = 16;
  t.bpe.vocab_size = 600;
  train_tokenizer(t);
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace luminars::test

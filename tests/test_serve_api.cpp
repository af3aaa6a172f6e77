// `luminars serve` over loopback: the APIs with the shipped model (pictures, img2img at strength → 0,
// inpainting), the jobs API, validation (400/404/413), a full queue (429 + Retry-After),
// cancellation, graceful shutdown, a bounded load test with flat memory, and the program itself
// stopped by SIGTERM.
#include <httplib.h>
#include <signal.h>
#include <stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/base64.h"
#include "core/image.h"
#include "pipeline/pipeline.h"
#include "serve/server.h"
#include "sanitizer.h"
#include "test_support.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_image.h"

namespace luminars::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kModel = test::shipped_model_dir();
const std::string kHeart = (fs::path(LUMINARS_SOURCE_DIR) / "docs" / "emoji" / "reference-red-heart-noto-seed1.png").string();

double mad(const Image& a, const Image& b, int x0 = 0, int x1 = -1) { return test::mean_abs_difference(a, b, x0, x1); }

Image from_b64(const std::string& b64) { return decode_image(base64_decode(b64, "image"), "image"); }

// Resident memory of this process in kB.
long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// A server on a free loopback port, run on its own thread.
struct TestServer {
  TestServer(ServerOptions o, ModelInfo m, GenerateFn g) : server(std::move(o), std::move(m), std::move(g)) {
    port = server.bind();
    thread = std::thread([this] { server.run(); });
  }
  ~TestServer() {
    server.stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300);
    return c;
  }
  ImageServer server;
  int port = 0;
  std::thread thread;
};

ModelInfo small_model() {
  ModelInfo m;
  m.name = "emoji";
  m.resolution = 64;
  m.size_multiple = 32;
  return m;
}

// ---------------------------------------------------------------------------------------------
// With the shipped model.
// ---------------------------------------------------------------------------------------------
class ServeWithModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PipelineOptions po;
    po.model_dir = kModel;
    po.bf16 = false;
    pipeline_ = new Pipeline(po);
    ModelInfo m = small_model();
    m.path = kModel;
    m.size_multiple = pipeline_->size_multiple();
    ServerOptions so;
    so.port = 0;
    so.queue = 4;
    server_ = new TestServer(so, m, [](const GenerationRequest& r) { return pipeline_->generate(r); });
  }
  static void TearDownTestSuite() {
    delete server_;
    delete pipeline_;
  }
  static Pipeline* pipeline_;
  static TestServer* server_;
};
Pipeline* ServeWithModel::pipeline_ = nullptr;
TestServer* ServeWithModel::server_ = nullptr;

TEST_F(ServeWithModel, OpenAiGenerationDrawsTheReferencePicture) {
  auto c = server_->client();
  auto res = c.Post("/v1/images/generations", json{{"prompt", "a red heart, noto style"}, {"n", 1}, {"size", "64x64"}, {"seed", 1}}.dump(),
                    "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = json::parse(res->body);
  ASSERT_EQ(j["data"].size(), 1u);
  const std::string png = base64_decode(j["data"][0]["b64_json"].get<std::string>(), "b64_json");
  EXPECT_LE(mad(decode_image(png, "png"), load_image(kHeart)), 2.0);
  // The PNG carries its parameters, as AUTOMATIC1111 writes them.
  const auto text = png_text_chunks(png);
  ASSERT_TRUE(text.count("parameters"));
  EXPECT_NE(text.at("parameters").find("Seed: 1, Size: 64x64, Model: emoji"), std::string::npos) << text.at("parameters");
}

TEST_F(ServeWithModel, Automatic1111TextToImageAndImageToImageAtStrengthNearZero) {
  auto c = server_->client();
  auto res = c.Post("/sdapi/v1/txt2img",
                    json{{"prompt", "a blue heart, twemoji style"}, {"steps", 6}, {"cfg_scale", 4}, {"seed", 11}, {"batch_size", 2},
                         {"width", 64}, {"height", 64}, {"sampler_name", "Euler"}}
                        .dump(),
                    "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = json::parse(res->body);
  ASSERT_EQ(j["images"].size(), 2u);
  auto info = json::parse(j["info"].get<std::string>());
  EXPECT_EQ(info["all_seeds"], (json{11, 12}));
  EXPECT_EQ(j["parameters"]["steps"], 6);
  const Image init = from_b64(j["images"][0].get<std::string>());
  EXPECT_EQ(init.width, 64);

  // img2img at strength → 0 gives the init image back, within the VAE's round-trip error.
  res = c.Post("/sdapi/v1/img2img",
               json{{"prompt", "a cat face"}, {"init_images", {j["images"][0]}}, {"denoising_strength", 0.001}, {"seed", 1},
                    {"width", 64}, {"height", 64}}
                   .dump(),
               "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Image back = from_b64(json::parse(res->body)["images"][0].get<std::string>());
  AutoencoderKL vae = AutoencoderKL::from_dir(kModel + "/vae");
  const double roundtrip_error = mad(vae_roundtrip(vae, init), init);
  EXPECT_LE(mad(back, init), roundtrip_error + 0.5);
  EXPECT_LT(roundtrip_error, 12.0);
}

TEST_F(ServeWithModel, InpaintingThroughOpenAiEditsKeepsTheUnmaskedRegion) {
  const Image init = load_image(kHeart);
  // Transparent left half: OpenAI's "edit here".
  std::vector<uint8_t> rgba(64 * 64 * 4, 255);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 32; ++x) rgba[(y * 64 + x) * 4 + 3] = 0;
  std::string mask;
  stbi_write_png_to_func([](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), n); },
                         &mask, 64, 64, 4, rgba.data(), 64 * 4);
  httplib::MultipartFormDataItems form = {{"image", encode_png(init), "heart.png", "image/png"},
                                          {"mask", mask, "mask.png", "image/png"},
                                          {"prompt", "a green apple, noto style", "", ""},
                                          {"seed", "4", "", ""},
                                          {"steps", "8", "", ""}};
  auto c = server_->client();
  auto res = c.Post("/v1/images/edits", form);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Image out = from_b64(json::parse(res->body)["data"][0]["b64_json"].get<std::string>());
  EXPECT_EQ(mad(out, init, 32 + 8, 64), 0.0);  // kept beyond the soft edge (blur 4, two passes)
  EXPECT_GT(mad(out, init, 0, 32 - 8), 3.0);  // repainted
}

TEST_F(ServeWithModel, JobsApiQueuesPollsDownloadsAndRefusesBadFields) {
  auto c = server_->client();
  auto res = c.Post("/api/jobs", json{{"prompt", "rocket, twemoji style"}, {"steps", 4}, {"seed", 2}, {"n", 2}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const std::string id = json::parse(res->body)["id"];
  json status;
  for (int i = 0; i < 600; ++i) {
    status = json::parse(c.Get("/api/jobs/" + id)->body);
    if (status["status"] == "done" || status["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(status["status"], "done") << status.dump();
  EXPECT_EQ(status["step"], 4);
  EXPECT_EQ(status["seeds"], (json{2, 3}));
  auto png = c.Get(status["images"][1].get<std::string>());
  ASSERT_EQ(png->status, 200);
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(decode_image(png->body, "png").width, 64);
  EXPECT_EQ(c.Delete("/api/jobs/" + id)->status, 409);
  EXPECT_EQ(c.Get("/api/jobs/0123456789abcdef")->status, 404);
  EXPECT_EQ(c.Get("/api/jobs/" + id + "/images/2.png")->status, 404);

  // Bad fields: 400 with the field named; malformed JSON; unknown endpoints.
  for (const auto& [body, param] : std::vector<std::pair<std::string, std::string>>{
           {R"({"steps": 1000})", "steps"},
           {R"({"n": 0})", "n"},
           {R"({"width": 100})", "width"},
           {R"({"cfg_scale": "x"})", "cfg_scale"},
           {R"({"init_image": "@@@"})", "init_image"},
           {R"({"prompt": )", "body"}}) {
    res = c.Post("/api/jobs", body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body;
    EXPECT_EQ(json::parse(res->body)["error"]["param"], param) << res->body;
  }
  res = c.Get("/no/such/thing");
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("no such endpoint"), std::string::npos);
  // The page, health and model lists.
  res = c.Get("/");
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("LuminaRS"), std::string::npos);
  EXPECT_EQ(json::parse(c.Get("/health")->body)["status"], "ok");
  EXPECT_EQ(json::parse(c.Get("/v1/models")->body)["data"][0]["id"], "emoji");
  EXPECT_EQ(json::parse(c.Get("/sdapi/v1/sd-models")->body)[0]["model_name"], "emoji");
  const auto config = json::parse(c.Get("/api/config")->body);
  EXPECT_EQ(config["size_multiple"], 32);
  EXPECT_EQ(config["trained_sizes"], json::array());  // this server was given none: every valid size
  EXPECT_EQ(config["any_size"], false);
  EXPECT_EQ(config["defaults"]["hires_from"], 0);  // this server's model info names no two-pass default
}

// 64 requests from 8 clients against a queue of 4: every answer is 200 or 429, the server stays
// up, and its memory stays flat.
// ctest-labels: slow
TEST_F(ServeWithModel, BoundedLoadTest) {
  auto one_round = [&](std::atomic<int>& ok, std::atomic<int>& busy, std::atomic<int>& other) {
    std::vector<std::thread> clients;
    for (int k = 0; k < 8; ++k)
      clients.emplace_back([&, k] {
        auto c = server_->client();
        for (int i = 0; i < 8; ++i) {
          auto res = c.Post("/v1/images/generations",
                            json{{"prompt", "cat face, noto style"}, {"steps", 2}, {"seed", k * 8 + i}}.dump(), "application/json");
          if (res && res->status == 200) ++ok;
          else if (res && res->status == 429 && !res->get_header_value("Retry-After").empty()) ++busy;
          else ++other;
        }
      });
    for (auto& t : clients) t.join();
  };
  std::atomic<int> ok{0}, busy{0}, other{0};
  one_round(ok, busy, other);  // warm-up: allocator pools, thread stacks
  const long before = resident_kb();
  ok = busy = other = 0;
  one_round(ok, busy, other);
  const long after = resident_kb();
  EXPECT_EQ(ok + busy, 64);
  EXPECT_EQ(other, 0);
  EXPECT_GE(ok, 5);
  EXPECT_EQ(json::parse(server_->client().Get("/health")->body)["status"], "ok");
  if (!test::kAddressSanitizer) {
    EXPECT_LT(after - before, 48 * 1024) << "resident memory grew from " << before << " kB to " << after << " kB";
  }
}

// ---------------------------------------------------------------------------------------------
// With a stand-in generator the test holds: a full queue, cancellation, shutdown, body limits.
// ---------------------------------------------------------------------------------------------
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int started = 0;
  void wait_started(int n) {
    std::unique_lock l(m);
    cv.wait(l, [&] { return started >= n; });
  }
  void release() {
    std::lock_guard l(m);
    open = true;
    cv.notify_all();
  }
};

// Steps until the gate opens (or it is cancelled), then a plain picture.
GenerateFn gated(Gate& gate) {
  return [&gate](const GenerationRequest& r) {
    {
      std::lock_guard l(gate.m);
      ++gate.started;
      gate.cv.notify_all();
    }
    for (int64_t step = 1;; ++step) {
      {
        std::unique_lock l(gate.m);
        if (gate.cv.wait_for(l, std::chrono::milliseconds(5), [&] { return gate.open; })) break;
      }
      if (r.on_step) r.on_step(std::min<int64_t>(step, 12), 12);
      if (r.cancelled && r.cancelled()) throw Cancelled();
    }
    Generation g;
    Image img;
    img.width = img.height = 64;
    img.rgb.assign(64 * 64 * 3, 200);
    g.images.push_back(img);
    GenerationParameters p;
    p.prompt = r.prompt;
    p.seed = r.seed;
    g.parameters.push_back(p);
    return g;
  };
}

TEST(ServeQueue, FullQueueAnswers429WithRetryAfterAndCancelWorks) {
  Gate gate;
  ServerOptions so;
  so.port = 0;
  so.queue = 1;
  TestServer s(so, small_model(), gated(gate));
  auto c = s.client();
  const std::string body = json{{"prompt", "x"}}.dump();
  auto first = c.Post("/api/jobs", body, "application/json");
  ASSERT_EQ(first->status, 202);
  gate.wait_started(1);
  auto second = c.Post("/api/jobs", body, "application/json");
  ASSERT_EQ(second->status, 202);
  auto third = c.Post("/api/jobs", body, "application/json");
  ASSERT_EQ(third->status, 429);
  EXPECT_GE(std::stoi(third->get_header_value("Retry-After")), 1);
  EXPECT_EQ(json::parse(third->body)["error"]["type"], "rate_limit_error");
  // Synchronous APIs are refused the same way.
  EXPECT_EQ(c.Post("/sdapi/v1/txt2img", body, "application/json")->status, 429);

  // Cancel the queued job, then the running one.
  const std::string id1 = json::parse(first->body)["id"], id2 = json::parse(second->body)["id"];
  EXPECT_EQ(json::parse(c.Get("/api/jobs/" + id2)->body)["position"], 1);
  EXPECT_EQ(c.Delete("/api/jobs/" + id2)->status, 200);
  EXPECT_EQ(json::parse(c.Get("/api/jobs/" + id2)->body)["status"], "cancelled");
  auto running = json::parse(c.Get("/api/jobs/" + id1)->body);
  EXPECT_EQ(running["status"], "generating");
  EXPECT_EQ(c.Delete("/api/jobs/" + id1)->status, 200);
  json status;
  for (int i = 0; i < 400; ++i) {
    status = json::parse(c.Get("/api/jobs/" + id1)->body);
    if (status["status"] != "generating") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(status["status"], "cancelled");
  gate.release();
}

TEST(ServeQueue, ShutdownAnswersWaitingCallsAndReturns) {
  Gate gate;
  ServerOptions so;
  so.port = 0;
  auto s = std::make_unique<TestServer>(so, small_model(), gated(gate));
  auto waiting = std::async(std::launch::async, [&] {
    auto c = s->client();
    auto res = c.Post("/v1/images/generations", json{{"prompt", "x"}}.dump(), "application/json");
    return res ? res->status : -1;
  });
  gate.wait_started(1);
  const auto t0 = std::chrono::steady_clock::now();
  s->server.stop();  // the running job is cancelled at its next step; its caller gets 503
  EXPECT_EQ(waiting.get(), 503);
  s.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(ServeQueue, OversizedBodiesAre413) {
  Gate gate;
  gate.open = true;
  ServerOptions so;
  so.port = 0;
  so.max_body_bytes = 1000;
  TestServer s(so, small_model(), gated(gate));
  auto c = s.client();
  auto res = c.Post("/api/jobs", json{{"prompt", std::string(2000, 'a')}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "body");
  EXPECT_EQ(c.Get("/health")->status, 200);
}

// ---------------------------------------------------------------------------------------------
// The program: `luminars serve --port 0` prints its address, answers, and stops on SIGTERM.
// ---------------------------------------------------------------------------------------------
TEST(ServeProgram, StartsAnswersAndStopsOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execl(LUMINARS_CLI_PATH, LUMINARS_CLI_PATH, "serve", "--port", "0", "--model", kModel.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  const auto at = line.find("listening on http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << line;
  const int port = std::stoi(line.substr(at + std::string("listening on http://127.0.0.1:").size()));
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  auto res = c.Post("/sdapi/v1/txt2img", json{{"prompt", "red heart"}, {"steps", 2}, {"seed", 5}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  kill(pid, SIGTERM);
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 200 && !ended; ++i) {
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ended) kill(pid, SIGKILL);
  ASSERT_TRUE(ended) << "still running 10 s after SIGTERM";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  close(out[0]);
}

}  // namespace
}  // namespace luminars::serve

// LoRAs in the server: requests name them (prompt syntax or a "loras" field) from the server's LoRA
// folder, and /sdapi/v1/loras lists that folder.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "core/tensor_io.h"
#include "serve/api_requests.h"
#include "serve/server.h"
#include "test_support.h"

namespace luminars::serve {
namespace {

using nlohmann::json;

std::string write_lora(const test::TempDir& dir, const std::string& name) {
  const auto path = dir.file(name + ".safetensors");
  save_tensors(path, {{"unet.out.lora_A.weight", torch::zeros({2, 4})}, {"unet.out.lora_B.weight", torch::zeros({4, 2})}},
               {{"trigger_words", "[\"zzink\"]"}, {"r", "2"}});
  return path;
}

ServeLimits limits(const std::string& lora_dir) {
  ServeLimits l;
  l.size_multiple = 32;
  l.resolution = 64;
  l.lora_dir = lora_dir;
  return l;
}

std::string bad_field(const std::function<void()>& f) {
  try {
    f();
  } catch (const RequestError& e) {
    return e.field() + ": " + e.what();
  }
  return "";
}

TEST(ServeLora, RequestsNameLorasByFieldAndPromptSyntax) {
  test::TempDir dir;
  const auto ink = write_lora(dir, "ink");
  const auto l = limits(dir.path.string());
  auto job = parse_jobs_request(json{{"prompt", "a cat <lora:ink:0.5>"}, {"loras", json::array({{{"name", "ink"}, {"weight", -0.25}}})}}, l);
  ASSERT_EQ(job.request.loras.size(), 1u);
  EXPECT_EQ(job.request.loras[0].path, ink);
  EXPECT_EQ(job.request.loras[0].name, "ink");
  EXPECT_DOUBLE_EQ(job.request.loras[0].weight, -0.25);
  EXPECT_EQ(job.request.prompt, "a cat <lora:ink:0.5>");  // the pipeline reads the tag
  job = parse_a1111_request(json{{"prompt", "x"}, {"loras", {{"ink", 0.75}}}}, l, false);
  ASSERT_EQ(job.request.loras.size(), 1u);
  EXPECT_DOUBLE_EQ(job.request.loras[0].weight, 0.75);

  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a <lora:nope:1>"}}, l); }).find("prompt: LoRA 'nope' is not in"), std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a <lora:ink:nan>"}}, l); }).find("prompt: "), std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a"}, {"loras", {{"nope", 1}}}}, l); }).find("loras: LoRA 'nope'"),
            std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a"}, {"loras", {{"../ink", 1}}}}, l); }).find("not a path"), std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a"}, {"loras", {{"ink", "x"}}}}, l); }).find("loras: the weight"),
            std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a"}, {"loras", 3}}, l); }).find("loras: "), std::string::npos);
  EXPECT_NE(bad_field([&] { parse_jobs_request(json{{"prompt", "a <lora:ink:1>"}}, limits("")); }).find("no LoRA folder"),
            std::string::npos);
}

TEST(ServeLora, ALoraTrainedInBucketsWidensTheTrainedSizesOfItsRequest) {
  test::TempDir dir;
  write_lora(dir, "plain");
  save_tensors(dir.file("wide.safetensors"),
               {{"unet.out.lora_A.weight", torch::zeros({2, 4})}, {"unet.out.lora_B.weight", torch::zeros({4, 2})}},
               {{"r", "2"}, {"training_data", R"({"images": 8, "resolution": 64, "buckets": [[32, 128], [64, 64], [128, 32]]})"}});
  auto l = limits(dir.path.string());
  l.trained_sizes = {64};
  const json wide{{"prompt", "a cat"}, {"width", 128}, {"height", 32}};
  EXPECT_NE(bad_field([&] { parse_jobs_request(wide, l); }).find("width: "), std::string::npos);
  json with = wide;
  with["loras"] = {{"plain", 1}};
  EXPECT_NE(bad_field([&] { parse_jobs_request(with, l); }).find("width: "), std::string::npos);  // no buckets recorded
  with["loras"] = {{"wide", 1}};
  EXPECT_EQ(parse_jobs_request(with, l).request.width, 128);
  json tagged = wide;
  tagged["prompt"] = "a cat <lora:wide:0.8>";
  EXPECT_EQ(parse_a1111_request(tagged, l, false).request.height, 32);
  EXPECT_NE(bad_field([&] { parse_openai_generation(json{{"prompt", "a cat <lora:wide>"}, {"size", "96x32"}}, l); }).find("size: "),
            std::string::npos);  // 96 is no side of its buckets
  EXPECT_EQ(parse_openai_generation(json{{"prompt", "a cat <lora:wide>"}, {"size", "128x32"}}, l).request.width, 128);
}

TEST(ServeLora, ListsTheFolderAndPassesLorasToTheGenerator) {
  test::TempDir dir;
  write_lora(dir, "ink");
  write_lora(dir, "pixel");
  ModelInfo m;
  m.name = "emoji";
  m.resolution = 64;
  m.size_multiple = 32;
  m.lora_dir = dir.path.string();
  ServerOptions so;
  so.port = 0;
  so.log_requests = false;
  std::mutex mu;
  std::vector<LoraSpec> seen;
  ImageServer server(so, m, [&](const GenerationRequest& r) {
    std::lock_guard lock(mu);
    seen = r.loras;
    Generation g;
    Image img;
    img.width = img.height = 64;
    img.rgb.assign(64 * 64 * 3, 200);
    for (int64_t i = 0; i < r.batch; ++i) g.images.push_back(img), g.parameters.emplace_back();
    return g;
  });
  const int port = server.bind();
  std::thread t([&] { server.run(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  auto res = c.Get("/sdapi/v1/loras");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const auto list = json::parse(res->body);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "ink");
  EXPECT_EQ(list[1]["name"], "pixel");
  EXPECT_EQ(list[0]["metadata"]["trigger_words"], "[\"zzink\"]");
  res = c.Post("/sdapi/v1/txt2img", json{{"prompt", "a cat"}, {"loras", {{"pixel", 0.5}}}, {"steps", 2}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].name, "pixel");
  }
  res = c.Post("/sdapi/v1/txt2img", json{{"prompt", "a cat"}, {"loras", {{"missing", 0.5}}}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  server.stop();
  t.join();
}

}  // namespace
}  // namespace luminars::serve

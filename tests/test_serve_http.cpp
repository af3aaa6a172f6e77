// The server's HTTP layer against hostile and careless clients: every request of the hardening
// issue answered with the right status (never a crash, never a 500), bodies bounded after decoding,
// the local-server policy (Host, Origin, Content-Type, API key), pipelining, slow and silent
// connections, clients that hang up, and stopping at any moment.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "serve/server.h"

namespace luminars::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Counters {
  std::atomic<int> started{0}, cancelled{0};
  std::atomic<bool> hold{false};  // the generator waits until cancelled
};

// A grey 32×32 picture per image; with `hold`, steps until cancelled.
GenerateFn stand_in(Counters& c) {
  return [&c](const GenerationRequest& r) {
    ++c.started;
    while (c.hold) {
      if (r.cancelled && r.cancelled()) {
        ++c.cancelled;
        throw Cancelled();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Generation g;
    for (int64_t i = 0; i < r.batch; ++i) {
      Image img;
      img.width = img.height = 32;
      img.rgb.assign(32 * 32 * 3, 128);
      g.images.push_back(img);
      GenerationParameters p;
      p.prompt = r.prompt;
      p.seed = r.seed + static_cast<uint64_t>(i);
      g.parameters.push_back(p);
    }
    return g;
  };
}

ModelInfo tiny_model() {
  ModelInfo m;
  m.name = "stand-in";
  m.resolution = 32;
  m.size_multiple = 32;
  m.steps = 2;
  return m;
}

ServerOptions options() {
  ServerOptions o;
  o.port = 0;
  o.queue = 4;
  o.max_size = 256;
  o.max_body_bytes = 1 << 20;
  o.log_requests = false;
  return o;
}

std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                    std::vector<std::string> headers = {}, const std::string& host = "127.0.0.1:8080") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  bool chunked = false;
  for (const auto& h : headers) {
    r += h + "\r\n";
    chunked = chunked || h.rfind("Transfer-Encoding", 0) == 0;
  }
  if (!body.empty() && !chunked) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

std::string json_post(const std::string& path, const json& body, std::vector<std::string> headers = {}) {
  headers.push_back("Content-Type: application/json");
  return request("POST", path, body.dump(), headers);
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct Answer {
  int status = 0;
  std::string head, body;
  json error_param() const {
    auto j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"]["param"] : json();
  }
};

Answer parse_answer(const std::string& wire) {
  Answer a;
  a.status = std::stoi(wire.substr(9, 3));
  const auto end = wire.find("\r\n\r\n");
  a.head = wire.substr(0, end);
  a.body = wire.substr(end + 4);
  return a;
}

std::vector<Answer> answers(ImageServer& s, const std::string& raw) {
  std::vector<Answer> out;
  for (const auto& w : s.respond_to_bytes(raw)) out.push_back(parse_answer(w));
  return out;
}

Answer one(ImageServer& s, const std::string& raw) {
  auto all = answers(s, raw);
  EXPECT_EQ(all.size(), 1u) << raw.substr(0, 120);
  return all.empty() ? Answer{} : all.front();
}

const json kSmall = {{"prompt", "a red heart"}, {"steps", 2}, {"seed", 3}};

// ---------------------------------------------------------------------------------------------
// The hostile requests of the hardening issue, through the whole HTTP path without a socket.
// ---------------------------------------------------------------------------------------------
TEST(ServeHttp, PathsThatAreNotUtf8Are400NotAnAbort) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  auto a = one(s, request("GET", "/%ff"));
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.error_param(), "path");
  EXPECT_EQ(one(s, request("GET", "/%zz")).status, 400);
  EXPECT_EQ(one(s, request("GET", "/%00")).status, 400);
  auto unknown = one(s, request("GET", "/caf%C3%A9"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("caf\xC3\xA9"), std::string::npos) << unknown.body;  // named, as valid UTF-8
}

TEST(ServeHttp, InvalidUtf8FieldsAre400NamingTheFieldBeforeAnyWork) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  auto raw_json = one(s, request("POST", "/sdapi/v1/txt2img", "{\"prompt\": \"caf\xe9\", \"steps\": 2}", {"Content-Type: application/json"}));
  EXPECT_EQ(raw_json.status, 400);
  const std::string form = "--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n\xff\xfe\r\n--B--\r\n";
  auto multipart = one(s, request("POST", "/v1/images/edits", form, {"Content-Type: multipart/form-data; boundary=B"}));
  EXPECT_EQ(multipart.status, 400);
  EXPECT_EQ(multipart.error_param(), "prompt");
  EXPECT_EQ(c.started, 0) << "nothing may be generated for a refused request";
}

TEST(ServeHttp, BodyLimitsHoldAfterDecodingAndOnChunks) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));  // 1 MiB bodies
  const std::string bomb = gzip(std::string(4 << 20, ' '));
  ASSERT_LT(bomb.size(), 64u << 10);
  auto inflated = one(s, request("POST", "/sdapi/v1/txt2img", bomb, {"Content-Type: application/json", "Content-Encoding: gzip"}));
  EXPECT_EQ(inflated.status, 413);
  EXPECT_EQ(inflated.error_param(), "body");
  auto chunk = one(s, request("POST", "/api/jobs", "200000\r\n" + std::string(100, 'a'),
                              {"Content-Type: application/json", "Transfer-Encoding: chunked"}));
  EXPECT_EQ(chunk.status, 413);
  auto negative = one(s, "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}");
  EXPECT_EQ(negative.status, 400);
  auto huge = one(s, "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100000000000000000000\r\n\r\n{}");
  EXPECT_TRUE(huge.status == 413 || huge.status == 400) << huge.status;
  // A gzip body within the limit is accepted like a plain one.
  auto ok = one(s, request("POST", "/sdapi/v1/txt2img", gzip(kSmall.dump()), {"Content-Type: application/json", "Content-Encoding: gzip"}));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST(ServeHttp, JsonWithTooManyValuesIsRefused) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  std::string members = "{";
  for (int i = 0; i < 20000; ++i) members += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  members += "}";
  auto a = one(s, request("POST", "/api/jobs", gzip(members), {"Content-Type: application/json", "Content-Encoding: gzip"}));
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("more than 10000 values"), std::string::npos) << a.body;
}

TEST(ServeHttp, LocalServerPolicy) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  auto plain = one(s, request("POST", "/api/jobs", kSmall.dump(), {"Content-Type: text/plain"}));
  EXPECT_EQ(plain.status, 415);
  EXPECT_EQ(plain.error_param(), "Content-Type");
  EXPECT_EQ(one(s, request("POST", "/sdapi/v1/txt2img", kSmall.dump())).status, 415);  // no Content-Type
  EXPECT_EQ(one(s, request("POST", "/v1/images/edits", kSmall.dump(), {"Content-Type: application/json"})).status, 415);
  auto cross = one(s, json_post("/api/jobs", kSmall, {"Origin: http://evil.example"}));
  EXPECT_EQ(cross.status, 403);
  EXPECT_EQ(cross.error_param(), "Origin");
  EXPECT_EQ(one(s, json_post("/api/jobs", kSmall, {"Origin: http://127.0.0.1:8080"})).status, 202);  // its own page
  EXPECT_EQ(one(s, request("GET", "/api/config", "", {}, "evil.example:8080")).status, 403);  // DNS rebinding
  auto put = one(s, request("PUT", "/api/jobs", "{}", {"Content-Type: application/json"}));
  EXPECT_EQ(put.status, 405);
  EXPECT_NE(put.head.find("Allow: POST"), std::string::npos) << put.head;
  EXPECT_EQ(one(s, request("POST", "/api/jobs", "x", {"Content-Type: application/json", "Content-Encoding: br"})).status, 415);
}

TEST(ServeHttp, CorsAllowOriginLetsThatPageIn) {
  Counters c;
  auto o = options();
  o.cors_allow_origins = {"http://localhost:3000"};
  ImageServer s(o, tiny_model(), stand_in(c));
  auto preflight = one(s, request("OPTIONS", "/api/jobs", "", {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST"}));
  EXPECT_EQ(preflight.status, 204);
  EXPECT_NE(preflight.head.find("Access-Control-Allow-Origin: http://localhost:3000"), std::string::npos);
  auto post = one(s, json_post("/api/jobs", kSmall, {"Origin: http://localhost:3000"}));
  EXPECT_EQ(post.status, 202);
  EXPECT_NE(post.head.find("Access-Control-Allow-Origin: http://localhost:3000"), std::string::npos);
  EXPECT_EQ(one(s, json_post("/api/jobs", kSmall, {"Origin: http://localhost:3001"})).status, 403);
}

TEST(ServeHttp, ApiKeyGuardsEveryRouteButThePageAndHealth) {
  Counters c;
  auto o = options();
  o.api_key = "s3cret";
  ImageServer s(o, tiny_model(), stand_in(c));
  auto missing = one(s, request("GET", "/api/config"));
  EXPECT_EQ(missing.status, 401);
  EXPECT_NE(missing.head.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(one(s, request("GET", "/api/config", "", {"Authorization: Bearer wrong!"})).status, 401);
  EXPECT_EQ(one(s, request("GET", "/api/config", "", {"Authorization: Bearer s3cret"})).status, 200);
  EXPECT_EQ(one(s, json_post("/sdapi/v1/txt2img", kSmall)).status, 401);
  EXPECT_EQ(one(s, request("GET", "/health")).status, 200);
  EXPECT_EQ(one(s, request("GET", "/")).status, 200);
}

TEST(ServeHttp, PublicAddressNeedsAnApiKeyOrInsecure) {
  Counters c;
  auto o = options();
  o.host = "0.0.0.0";
  ImageServer open(o, tiny_model(), stand_in(c));
  try {
    open.bind();
    ADD_FAILURE() << "bound 0.0.0.0 without an API key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--api-key"), std::string::npos) << e.what();
  }
  o.api_key = "k";
  ImageServer keyed(o, tiny_model(), stand_in(c));
  EXPECT_GT(keyed.bind(), 0);
}

TEST(ServeHttp, WorkPerRequestIsBounded) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  auto a = one(s, json_post("/sdapi/v1/txt2img", {{"prompt", "x"}, {"width", 256}, {"height", 256}, {"steps", 100}, {"batch_size", 8}}));
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.error_param(), "steps");
  EXPECT_EQ(c.started, 0);
}

TEST(ServeHttp, HundredPipelinedRequestsAreAllAnswered) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  std::string raw;
  for (int i = 0; i < 100; ++i) raw += request("GET", "/health");
  auto all = answers(s, raw);
  ASSERT_EQ(all.size(), 100u);
  for (const auto& a : all) EXPECT_EQ(a.status, 200);
}

TEST(ServeHttp, ShuttingDownAnswers503) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  s.stop();
  auto a = one(s, json_post("/api/jobs", kSmall));
  EXPECT_EQ(a.status, 503);
  EXPECT_NE(a.head.find("Retry-After"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Over real sockets.
// ---------------------------------------------------------------------------------------------
int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

// Reads until `done(received)` or the connection ends or `seconds` pass.
std::string receive(int fd, double seconds, const std::function<bool(const std::string&)>& done) {
  std::string got;
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  char buf[8192];
  while (!done(got) && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

struct Running {
  explicit Running(ServerOptions o, GenerateFn g) : server(std::move(o), tiny_model(), std::move(g)) {
    port = server.bind();
    thread = std::thread([this] { server.run(); });
  }
  ~Running() {
    server.stop();
    thread.join();
  }
  ImageServer server;
  int port = 0;
  std::thread thread;
};

TEST(ServeHttp, HealthAnswersWithinASecondWhile64SilentConnectionsAreOpen) {
  Counters c;
  Running r(options(), stand_in(c));
  std::vector<int> silent;
  for (int i = 0; i < 64; ++i) silent.push_back(connect_to(r.port));
  for (int fd : silent) ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  const int fd = connect_to(r.port);
  send_all(fd, request("GET", "/health"));
  const std::string got = receive(fd, 5, [](const std::string& s) { return s.find("\"status\"") != std::string::npos; });
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_LT(seconds, 1.0);
  close(fd);
  for (int s : silent) close(s);
}

TEST(ServeHttp, SlowAndSilentConnectionsAreCutOff) {
  Counters c;
  auto o = options();
  o.http.header_seconds = 0.5;
  o.http.idle_seconds = 0.5;
  Running r(o, stand_in(c));
  const int silent = connect_to(r.port), slow = connect_to(r.port);
  send_all(slow, "GET /health HTTP/1.1\r\nHo");  // and never the rest
  const auto t0 = Clock::now();
  receive(silent, 5, [](const std::string&) { return false; });  // returns when the server closes it
  receive(slow, 5, [](const std::string&) { return false; });
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 3.0);
  close(silent);
  close(slow);
}

TEST(ServeHttp, PipelinedRequestsOverOneConnection) {
  Counters c;
  Running r(options(), stand_in(c));
  const int fd = connect_to(r.port);
  std::string raw;
  for (int i = 0; i < 20; ++i) raw += request("GET", "/health");
  send_all(fd, raw);
  const std::string got = receive(fd, 5, [](const std::string& s) { return count(s, "HTTP/1.1 200") >= 20 && s.back() == '}'; });
  EXPECT_EQ(count(got, "HTTP/1.1 200"), 20u);
  close(fd);
}

TEST(ServeHttp, AClientThatHangsUpCancelsItsSynchronousJob) {
  Counters c;
  c.hold = true;
  Running r(options(), stand_in(c));
  const int fd = connect_to(r.port);
  send_all(fd, json_post("/sdapi/v1/txt2img", kSmall));
  for (int i = 0; i < 200 && c.started == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(c.started, 1);
  close(fd);
  for (int i = 0; i < 300 && c.cancelled == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(c.cancelled, 1) << "the job ran on after its client left";
}

TEST(ServeHttp, StopBeforeRunMakesRunReturnAtOnce) {
  Counters c;
  ImageServer s(options(), tiny_model(), stand_in(c));
  s.bind();
  s.stop();
  const auto t0 = Clock::now();
  s.run();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
}

}  // namespace
}  // namespace luminars::serve

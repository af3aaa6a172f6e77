// `luminars serve`: a local image server (HTTP layer: serve/http_server.h). One model loaded once;
// one worker generating in order from a bounded queue (full → 429 with Retry-After); jobs with ids,
// status, progress and cancellation; a web page at `/`; OpenAI- and AUTOMATIC1111-compatible APIs.
// Local-server security as serve/http_policy.h describes; one log line per request.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/generation.h"
#include "serve/http_server.h"

namespace luminars::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (bind() tells which)
  std::size_t queue = 8;                // jobs waiting behind the running one
  std::size_t history = 64;             // finished jobs kept for status queries and downloads
  int64_t max_size = 1024;              // largest width or height in pixels
  int64_t max_steps = 100, max_count = 8;
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_prompt_bytes = 4000;
  // The most work one request may ask: width × height × images × steps (2^24: e.g. 8 pictures of
  // 128² at 128 steps, or one 512² picture at 64 steps). More: 400 naming the fields.
  int64_t max_work = int64_t{1} << 24;
  double wait_seconds = 900;            // how long a synchronous API call waits for its job
  std::string api_key;                  // when set, `Authorization: Bearer KEY` on every route but / and /health
  bool insecure = false;                // allow listening beyond loopback without an API key
  std::vector<std::string> cors_allow_origins;  // web origins allowed besides the server's own page
  bool log_requests = true;             // one line per request on stderr
  bool log_prompts = false;             // the prompt in that line too
  HttpLimits http;                      // connections, deadlines (max_body_bytes is copied in)
  bool any_size = false;                // accept sizes the model was not trained at
};

// What the server tells clients about its model.
struct ModelInfo {
  std::string name, path;
  int64_t resolution = 64, size_multiple = 8;
  std::vector<int64_t> trained_sizes;   // empty: every valid size
  int64_t steps = 12;
  double cfg_scale = 4;
  std::string sampler = "euler";
  int64_t hires_from = 0;               // the folder's two-pass default (0: one pass), and its strength
  double hires_strength = 0.5;
  std::string lora_dir;                 // LoRAs requests may name; listed at /sdapi/v1/loras
};

// Runs one generation on the worker thread (the Pipeline's generate(), or a stand-in in tests).
using GenerateFn = std::function<Generation(const GenerationRequest&)>;

// Throws when `options` would listen beyond loopback without an API key (and without `insecure`):
// anyone who could reach the machine could use the server.
void check_exposure(const ServerOptions& options);

class ImageServer {
 public:
  ImageServer(ServerOptions options, ModelInfo model, GenerateFn generate);
  ~ImageServer();  // stop()
  ImageServer(const ImageServer&) = delete;
  ImageServer& operator=(const ImageServer&) = delete;

  // Binds host:port and returns the port. Throws luminars::Error naming host:port when it cannot,
  // and when the host is not loopback and there is no API key (unless `insecure`).
  int bind();
  // Serves until stop() (call bind() first).
  void run();
  // The whole HTTP path without a socket: `raw` read as one connection's bytes (pipelined requests)
  // and each answer returned as sent on the wire. For fuzzing and tests.
  std::vector<std::string> respond_to_bytes(std::string_view raw);

  // Graceful: new jobs refused (503), waiting ones cancelled, the running one stopped at its next
  // step, answers sent, then the listener closed. Safe from any thread, more than once, and before
  // run() (which then returns at once).
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace luminars::serve

// `luminars serve`: a local image server on cpp-httplib. One model loaded once; one worker
// generating in order from a bounded queue (full → 429 with Retry-After); jobs with ids, status,
// progress and cancellation; a web page at `/`; OpenAI- and AUTOMATIC1111-compatible APIs.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/generation.h"

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
  int threads = 16;                     // connections served at once
  double wait_seconds = 900;            // how long a synchronous API call waits for its job
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
};

// Runs one generation on the worker thread (the Pipeline's generate(), or a stand-in in tests).
using GenerateFn = std::function<Generation(const GenerationRequest&)>;

class ImageServer {
 public:
  ImageServer(ServerOptions options, ModelInfo model, GenerateFn generate);
  ~ImageServer();  // stop()
  ImageServer(const ImageServer&) = delete;
  ImageServer& operator=(const ImageServer&) = delete;

  // Binds host:port and returns the port. Throws luminars::Error naming host:port when it cannot.
  int bind();
  // Serves until stop() (call bind() first).
  void run();
  // Graceful: new jobs refused, waiting ones cancelled, the running one stopped at its next step,
  // answers sent, then the listener closed. Safe from any thread, more than once.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace luminars::serve

// The server's HTTP/1.1 layer, on Boost.Beast: it cannot be brought down or starved by what a
// client sends.
// - Every request head is read under a deadline (slow or silent clients are cut off), headers are
//   capped, bodies are capped on the bytes received (chunked included) and again after gzip or
//   deflate are undone, while inflating; absurd or negative lengths are refused at once.
// - Connections are served by a few network threads, not a thread each, so open connections cost
//   memory, not threads, and `/health` answers while many are open; handlers that wait on a
//   generation run on threads of their own. Keep-alive and pipelining work.
// - A client that hangs up during a blocking request is seen, and the handler told (client_gone).
// - Every answer is valid UTF-8 JSON (or the page or a picture); no exception escapes a handler.
// - stop() at any moment, before run() too: new requests get 503, answers in flight are sent,
//   then run() returns.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "serve/http_message.h"
#include "serve/http_policy.h"
#include "serve/router.h"

namespace luminars::serve {

struct HttpLimits {
  std::size_t max_body_bytes = 32u << 20;   // received and after decoding
  std::size_t max_header_bytes = 16 << 10;  // request line and headers together
  std::size_t max_connections = 512;        // open at once; more are closed on accept
  std::size_t max_blocking = 64;            // blocking handlers at once; more get 503
  double header_seconds = 10;               // to send a request's head, from its first byte
  double idle_seconds = 5;                  // a kept-alive connection may wait for its next request
  double body_seconds = 120;                // to send a body
  double write_seconds = 60;                // to take an answer
  int network_threads = 2;
};

// Turns a request head into a refusal or a go-ahead, and a whole request into its answer. No sockets:
// the server and respond_to_bytes (fuzzing, tests) both go through it.
class HttpEngine {
 public:
  HttpEngine(const Router& router, HttpPolicy policy, HttpLimits limits);

  // After the head: `req.path` decoded from `req.target` and checked, the route looked up into
  // `match`, the policy applied. A refusal, or nullopt to read the body.
  std::optional<HttpResponse> admit(HttpRequest& req, Router::Match& match) const;
  // After the body: decoded, multipart parts read, the handler run. Never throws.
  HttpResponse respond(HttpRequest& req, const Router::Match& match) const;

  const HttpLimits& limits() const { return limits_; }
  const HttpPolicy& policy() const { return policy_; }

 private:
  const Router& router_;
  HttpPolicy policy_;
  HttpLimits limits_;
};

// `raw` parsed as the server parses a connection's bytes (pipelined requests one after another)
// and answered; returns each answer as sent on the wire. Stops at the first request that ends the
// connection (a malformed or refused one with a body left unread).
std::vector<std::string> respond_to_bytes(const HttpEngine& engine, std::string_view raw);

// "/a%20b" → "/a b"; nullopt for a bad escape or %00.
std::optional<std::string> percent_decode(std::string_view s);

class HttpServer {
 public:
  // `log` gets one line per request (method, path, status, milliseconds and the answer's note).
  HttpServer(const HttpEngine& engine, std::function<void(const std::string&)> log);
  ~HttpServer();  // stop(), and waits for run() to return
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: any free one) and returns the port; throws Error naming host:port.
  int bind(const std::string& host, int port);
  // Serves until stop(); returns at once when stop() came first.
  void run();
  // New requests get 503; answers in flight are sent (for at most `grace_seconds`); run() returns.
  void stop(double grace_seconds = 5);
  bool stopping() const;

  struct Core;  // opaque: the acceptor, the network threads, the open connections

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace luminars::serve

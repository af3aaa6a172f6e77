// Who may ask the server what, decided from a request's head before its body is read — what users
// of AUTOMATIC1111 and ComfyUI expect from a server on their own machine:
// - Host must name this server (a loopback name when it listens on loopback), so a web page on a
//   rebound DNS name cannot reach it;
// - a request from a web page (Origin) must come from the server's own page or an origin the user
//   allowed with --cors-allow-origin (those also get CORS headers and preflight answers);
// - with an API key, every route but `/` and `/health` needs `Authorization: Bearer KEY`;
// - JSON routes take only application/json (so no "simple" cross-site form or text/plain request
//   can queue work) and the multipart route only multipart/form-data; bodies may be gzip or deflate.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "serve/http_message.h"
#include "serve/router.h"

namespace luminars::serve {

struct HttpPolicy {
  std::string host = "127.0.0.1";            // the address the server listens on
  std::string api_key;                       // empty: none required
  std::vector<std::string> cors_origins;     // origins allowed besides the server's own ("*": any)

  // True when `host` is a loopback address or name.
  static bool is_loopback(const std::string& host);

  // A refusal (401, 403, 404, 405, 415) for a request whose head is `req` (path decoded, headers
  // read, no body yet) and whose route lookup gave `m`; an answer to a CORS preflight (204); or
  // nullopt when the request may go on.
  std::optional<HttpResponse> check(const HttpRequest& req, const Router::Match& m) const;

  // The CORS headers for an allowed cross-origin request (none for same-origin ones).
  void add_cors_headers(const HttpRequest& req, HttpResponse& res) const;

 private:
  bool origin_allowed(const std::string& origin, const std::string& host_header) const;
  bool host_allowed(const std::string& host_header) const;
};

// An error answer in the OpenAI shape: {"error": {"message", "type", "param"}}.
HttpResponse error_response(int status, const std::string& message, const std::string& param = "",
                            const std::string& type = "invalid_request_error");

}  // namespace luminars::serve

#include "serve/http_policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "serve/content_decoding.h"
#include "serve/multipart.h"

namespace luminars::serve {

namespace {

// "application/json; charset=utf-8" → "application/json".
std::string media_type(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(t.begin());
  return ascii_lower(t);
}

// The host part of a Host header ("localhost:8080" → "localhost", "[::1]:80" → "::1").
std::string host_name(const std::string& host_header) {
  std::string h = ascii_lower(host_header);
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    return close == std::string::npos ? h : h.substr(1, close - 1);
  }
  return h.substr(0, h.rfind(':') == std::string::npos || std::count(h.begin(), h.end(), ':') > 1 ? h.size() : h.rfind(':'));
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool is_public_route(const std::string& path) { return path == "/" || path == "/health"; }

}  // namespace

HttpResponse error_response(int status, const std::string& message, const std::string& param, const std::string& type) {
  using nlohmann::json;
  json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  HttpResponse res;
  res.status = status;
  res.body = json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return res;
}

bool HttpPolicy::is_loopback(const std::string& host) {
  const std::string h = ascii_lower(host);
  return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0 ||
         (h.size() > 10 && h.compare(h.size() - 10, 10, ".localhost") == 0);
}

bool HttpPolicy::host_allowed(const std::string& host_header) const {
  if (host_header.empty()) return true;  // HTTP/1.0 clients send none
  if (!is_loopback(host)) return true;   // on a public address the API key guards it
  return is_loopback(host_name(host_header));
}

bool HttpPolicy::origin_allowed(const std::string& origin, const std::string& host_header) const {
  if (std::find(cors_origins.begin(), cors_origins.end(), "*") != cors_origins.end()) return true;
  if (std::find(cors_origins.begin(), cors_origins.end(), origin) != cors_origins.end()) return true;
  // The server's own page: the origin of the address the browser used (Host), which host_allowed
  // has already checked.
  return !host_header.empty() && ascii_lower(origin) == "http://" + ascii_lower(host_header);
}

void HttpPolicy::add_cors_headers(const HttpRequest& req, HttpResponse& res) const {
  const std::string& origin = req.header("origin");
  if (origin.empty() || origin == "http://" + req.header("host")) return;
  if (!origin_allowed(origin, req.header("host"))) return;
  res.set_header("Access-Control-Allow-Origin", origin);
  res.set_header("Vary", "Origin");
}

std::optional<HttpResponse> HttpPolicy::check(const HttpRequest& req, const Router::Match& m) const {
  const std::string& host_header = req.header("host");
  if (!host_allowed(host_header))
    return error_response(403, "Host '" + host_header + "' is not this server (it listens on " + host + ")", "Host");
  const std::string& origin = req.header("origin");
  if (!origin.empty() && !origin_allowed(origin, host_header))
    return error_response(403, "requests from the web page at " + origin +
                                   " are not allowed (start the server with --cors-allow-origin " + origin + " to allow them)",
                          "Origin");
  if (req.method == "OPTIONS" && !origin.empty()) {  // CORS preflight of an allowed origin
    HttpResponse res;
    res.status = 204;
    res.content_type.clear();
    res.set_header("Access-Control-Allow-Methods", m.allowed.empty() ? "GET, POST, DELETE" : m.allowed);
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
    res.set_header("Access-Control-Max-Age", "600");
    add_cors_headers(req, res);
    return res;
  }
  if (!api_key.empty() && !is_public_route(req.path)) {
    const std::string& auth = req.header("authorization");
    const std::string scheme = ascii_lower(auth.substr(0, 7));
    if (scheme != "bearer " || !constant_time_equal(auth.substr(7), api_key)) {
      HttpResponse res = error_response(401, auth.empty() ? "an API key is required (Authorization: Bearer KEY)"
                                                          : "the API key is not valid",
                                        "Authorization", "authentication_error");
      res.set_header("WWW-Authenticate", "Bearer");
      return res;
    }
  }
  if (!m.route) {
    if (m.path_known) {
      HttpResponse res = error_response(405, req.method + " is not allowed on " + req.path + " (allowed: " + m.allowed + ")");
      res.set_header("Allow", m.allowed);
      return res;
    }
    return error_response(404, "no such endpoint: " + req.method + " " + req.path);
  }
  const bool has_body = req.has_header("content-length") || req.has_header("transfer-encoding");
  const std::string type = media_type(req.header("content-type"));
  switch (m.route->body) {
    case BodyKind::None:
      break;
    case BodyKind::Json:
      if (type != "application/json")
        return error_response(415, req.path + " takes application/json" +
                                       (type.empty() ? std::string(", and the request has no Content-Type") : ", not " + type),
                              "Content-Type");
      break;
    case BodyKind::Multipart:
      if (multipart_boundary(req.header("content-type")).empty())
        return error_response(415, req.path + " takes multipart/form-data with a boundary" +
                                       (type.empty() ? std::string(", and the request has no Content-Type") : ", not " + type),
                              "Content-Type");
      break;
  }
  if (has_body && !is_supported_content_encoding(req.header("content-encoding")))
    return error_response(415, "Content-Encoding '" + req.header("content-encoding") + "' is not supported (gzip, deflate or none)",
                          "Content-Encoding");
  return std::nullopt;
}

}  // namespace luminars::serve

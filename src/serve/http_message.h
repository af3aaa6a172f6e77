// A request and its answer as the server's routes see them: plain data, no HTTP library in sight.
// The connection layer (http_server.h) fills HttpRequest from the wire and writes HttpResponse back.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace luminars::serve {

struct HttpRequest {
  std::string method;                                         // "GET", "POST", ...
  std::string target;                                         // as sent: path and query, percent-encoded
  std::string path;                                           // percent-decoded (checked to be UTF-8)
  std::vector<std::pair<std::string, std::string>> headers;   // names lower-cased, in order
  std::string body;                                           // after Content-Encoding is undone
  std::map<std::string, std::string> fields, files;           // multipart/form-data parts
  std::vector<std::string> matches;                           // the route pattern's captures
  std::string remote;                                         // the client's address
  std::function<bool()> client_gone = [] { return false; };   // true once the client hung up

  // The value of header `name` (lower-case), or "" when absent.
  const std::string& header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string log_note;  // appended to the request's log line (e.g. the prompt with --log-prompts)

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

// A refusal with its HTTP status and the request part at fault ("body", "Content-Type", ...).
class HttpError : public Error {
 public:
  HttpError(int status, std::string field, const std::string& message)
      : Error(message), status_(status), field_(std::move(field)) {}
  int status() const { return status_; }
  const std::string& field() const { return field_; }

 private:
  int status_;
  std::string field_;
};

// `s` with ASCII letters lower-cased (header names, media types, codings).
std::string ascii_lower(std::string_view s);

// The reason phrase of a status code ("Not Found").
const char* status_reason(int status);

}  // namespace luminars::serve

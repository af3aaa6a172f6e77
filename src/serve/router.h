// The server's routes: a method, a path pattern (a regular expression over the whole decoded path,
// its groups handed to the handler), what body the route takes, and whether its handler may block
// (waits on a generation: run on a thread of its own, never on the network threads).
#pragma once
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "serve/http_message.h"

namespace luminars::serve {

enum class BodyKind { None, Json, Multipart };

using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct Route {
  std::string method;
  std::string pattern;
  std::regex regex;
  BodyKind body = BodyKind::None;
  bool blocking = false;
  Handler handler;
};

class Router {
 public:
  void add(std::string method, std::string pattern, BodyKind body, bool blocking, Handler handler);

  struct Match {
    const Route* route = nullptr;          // nullptr: no route for this method and path
    bool path_known = false;               // some route has this path (another method: 405)
    std::string allowed;                   // the methods that path takes, for Allow
    std::vector<std::string> captures;
  };
  Match match(const std::string& method, const std::string& path) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace luminars::serve

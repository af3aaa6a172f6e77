#include "serve/router.h"

namespace luminars::serve {

void Router::add(std::string method, std::string pattern, BodyKind body, bool blocking, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.regex = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
  r.pattern = std::move(pattern);
  r.body = body;
  r.blocking = blocking;
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

Router::Match Router::match(const std::string& method, const std::string& path) const {
  Match m;
  if (path.size() > 256) return m;  // no route is that long; keeps the regex engine's work small
  for (const auto& r : routes_) {
    std::smatch groups;
    if (!std::regex_match(path, groups, r.regex)) continue;
    m.path_known = true;
    if (m.allowed.find(r.method) == std::string::npos) m.allowed += (m.allowed.empty() ? "" : ", ") + r.method;
    if (r.method == method && !m.route) {
      m.route = &r;
      for (std::size_t i = 1; i < groups.size(); ++i) m.captures.push_back(groups[i].str());
    }
  }
  return m;
}

}  // namespace luminars::serve

#include "suggestions.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace luminars::cli {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: three rows of the table.
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  std::iota(previous.begin(), previous.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) current[j] = std::min(current[j], before[j - 2] + 1);
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

namespace {

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({}))
    if (!sub->get_name().empty()) names.push_back(sub->get_name());
  return names;
}

// `name` among the options of `app` or of the apps it falls through to.
const CLI::Option* find_option(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent())
    if (const CLI::Option* opt = app->get_option_no_throw(name)) return opt;
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App* app) {
  std::vector<std::string> names;
  for (; app != nullptr; app = app->get_parent())
    for (const CLI::Option* opt : app->get_options()) {
      for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
      for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    }
  return names;
}

bool is_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

std::string command_path(const CLI::App* app) {
  std::string path;
  for (; app != nullptr && app->get_parent() != nullptr; app = app->get_parent())
    path = app->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

}  // namespace

std::string explain_unknown_names(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-' && !is_number(arg)) {
      const std::string name = arg.substr(0, arg.find('='));
      const std::string flag = name.starts_with("--") ? name : name.substr(0, 2);  // -abc: flags -a, -b, -c
      const CLI::Option* opt = find_option(current, flag);
      if (opt == nullptr) {
        const std::string where = current == &app ? "" : " for '" + command_path(current) + "'";
        const std::string near = closest_match(name, option_names(current));
        return "unknown option '" + name + "'" + where +
               (near.empty() ? " (--help lists them)" : "; did you mean '" + near + "'?");
      }
      if (opt->get_type_size_max() > 0 && name == arg && flag == name) ++i;  // its value follows
      continue;
    }
    const auto subs = subcommand_names(*current);
    if (subs.empty()) continue;  // a value or positional of the subcommand
    if (std::find(subs.begin(), subs.end(), arg) != subs.end()) {
      current = current->get_subcommand(arg);
      continue;
    }
    if (!current->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) continue;
    const std::string near = closest_match(arg, subs);
    const std::string kind = current == &app ? "command" : "'" + command_path(current) + "' command";
    return "unknown " + kind + " '" + arg + "'" + (near.empty() ? " (--help lists them)" : "; did you mean '" + near + "'?");
  }
  return "";
}

}  // namespace luminars::cli

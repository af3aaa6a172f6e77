// Optional fields of JSON configuration objects (config.json files), type-checked: an absent or
// null field keeps the default, a field of the wrong type is an error naming the file and field.
#pragma once
#include <cstdint>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace luminars::json_fields {

// Nesting deeper than this is refused while parsing: deeper values would make every recursive
// operation on them (copies, dump(), comparisons) a stack overflow.
inline constexpr int kMaxDepth = 64;

// `text` parsed, nested at most kMaxDepth levels and holding at most `max_values` values; throws
// naming `source` when it is not valid JSON or breaks a bound.
inline nlohmann::json parse(std::string_view text, const std::string& source, std::size_t max_values = SIZE_MAX) {
  std::size_t values = 0;
  try {
    return nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
      if (depth > kMaxDepth) throw Error(source + ": JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
      if (event == nlohmann::json::parse_event_t::value || event == nlohmann::json::parse_event_t::object_start ||
          event == nlohmann::json::parse_event_t::array_start) {
        if (++values > max_values) throw Error(source + ": JSON holds more than " + std::to_string(max_values) + " values");
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw Error(source + ": invalid JSON (" + e.what() + ")");
  }
}

// `text` parsed; throws naming `source` when it is not valid JSON or not an object.
inline nlohmann::json parse_object(const std::string& text, const std::string& source) {
  nlohmann::json j = parse(text, source);
  if (!j.is_object()) throw Error(source + ": expected a JSON object");
  return j;
}

// A value for an error message, never long and never recursive: "a list", "an object", a string
// cut to 60 bytes in quotes, or a scalar as written.
inline std::string brief(const nlohmann::json& v) {
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return "\"" + (s.size() > 60 ? s.substr(0, 60) + "…" : s) + "\"";
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline void read(const nlohmann::json& obj, const char* key, int64_t& field, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return;
  if (!obj[key].is_number_integer()) throw Error(source + ": field '" + key + "' must be an integer");
  field = obj[key].get<int64_t>();
}

inline void read(const nlohmann::json& obj, const char* key, double& field, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return;
  if (!obj[key].is_number()) throw Error(source + ": field '" + key + "' must be a number");
  field = obj[key].get<double>();
}

inline void read(const nlohmann::json& obj, const char* key, std::string& field, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return;
  if (!obj[key].is_string()) throw Error(source + ": field '" + key + "' must be a string");
  field = obj[key].get<std::string>();
}

}  // namespace luminars::json_fields

// Optional fields of JSON configuration objects (config.json files), type-checked: an absent or
// null field keeps the default, a field of the wrong type is an error naming the file and field.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace luminars::json_fields {

// `text` parsed; throws naming `source` when it is not valid JSON or not an object.
inline nlohmann::json parse_object(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": invalid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(source + ": expected a JSON object");
  return j;
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

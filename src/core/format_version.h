// The format version every file the project writes carries (luminars.json, state.json, cache.json
// as "format_version"; checkpoints in their safetensors metadata). Readers refuse a version newer
// than they know, naming the file, its version and the newest they read; files written before the
// field existed read as version 1.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/json_fields.h"

namespace luminars {

inline constexpr const char* kFormatVersionKey = "format_version";
// The version this build writes, and the newest it reads.
inline constexpr int64_t kFormatVersion = 1;

inline void check_format_version(int64_t version, const std::string& file, int64_t newest = kFormatVersion) {
  if (version > newest)
    throw Error(file + ": format version " + std::to_string(version) + " is newer than this build of LuminaRS reads (" +
                std::to_string(newest) + "); upgrade LuminaRS to read it");
}

// The "format_version" field of a JSON file (or `legacy_key`, an older name of it), checked; 1 when
// absent. Throws naming the file when it is not a positive integer or newer than `newest` (a file
// kind whose format moved on alone: the cache index).
inline int64_t read_format_version(const nlohmann::json& j, const std::string& file, const char* legacy_key = nullptr,
                                   int64_t newest = kFormatVersion) {
  const char* key = kFormatVersionKey;
  if (!j.is_object()) return 1;
  if (!j.contains(key) && legacy_key && j.contains(legacy_key)) key = legacy_key;
  if (!j.contains(key)) return 1;
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    throw Error(file + ": field '" + key + "' must be a positive integer, got " + json_fields::brief(v));
  check_format_version(v.get<int64_t>(), file, newest);
  return v.get<int64_t>();
}

// The same for the "format_version" entry of safetensors metadata (a string, as all its values).
inline int64_t read_format_version(const std::map<std::string, std::string>& metadata, const std::string& file) {
  auto it = metadata.find(kFormatVersionKey);
  if (it == metadata.end()) return 1;
  int64_t version = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9' || version > (int64_t{1} << 40)) {
      version = 0;
      break;
    }
    version = version * 10 + (c - '0');
  }
  if (version < 1)
    throw Error(file + ": metadata '" + std::string(kFormatVersionKey) + "' must be a positive integer, got \"" +
                it->second.substr(0, 40) + "\"");
  check_format_version(version, file);
  return version;
}

}  // namespace luminars

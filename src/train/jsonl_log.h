// Append-only JSON Lines logs (one object a line, flushed on every write) and a reader that
// survives a crash mid-write, for reloading a run's history on resume.
#pragma once
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace luminars {

class JsonlWriter {
 public:
  // Opens `path` for appending, creating it (and its folder) when missing. A partial last line
  // left by a crash is cut off first (or, when it is a whole JSON value missing only its newline,
  // completed), so every new record starts on a line of its own.
  explicit JsonlWriter(const std::string& path);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Writes `record` (a JSON object) as one line and flushes it. NaN and infinities are written as
  // null; invalid UTF-8 in strings is replaced. Thread-safe.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

struct JsonlContents {
  std::vector<nlohmann::json> records;
  bool truncated_tail = false;  // the last line did not parse (a write cut short) and was dropped
};

// Reads every non-blank line of `path`. A last line that does not parse is dropped and reported in
// `truncated_tail`; a bad line anywhere else, or a line that is not a JSON object, throws
// luminars::Error naming the file and line, as does a missing file.
JsonlContents read_jsonl(const std::string& path);

}  // namespace luminars

#include "train/jsonl_log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace luminars {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Cuts a partial last line off `path` (or adds the newline a whole last record lacks).
void repair_tail(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  const auto size = static_cast<std::streamoff>(fs::file_size(path, ec));
  if (ec || size == 0) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open log " + path + ": " + std::strerror(errno));
  char last = 0;
  in.seekg(size - 1);
  in.get(last);
  if (last == '\n') return;
  // Find the last newline, reading backwards in blocks.
  constexpr std::streamoff kBlock = 1 << 16;
  std::streamoff line_start = 0;
  std::string block;
  for (std::streamoff end = size; end > 0;) {
    const std::streamoff begin = std::max<std::streamoff>(0, end - kBlock);
    block.resize(static_cast<std::size_t>(end - begin));
    in.seekg(begin);
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    if (auto p = block.rfind('\n'); p != std::string::npos) {
      line_start = begin + static_cast<std::streamoff>(p) + 1;
      break;
    }
    end = begin;
  }
  std::string tail(static_cast<std::size_t>(size - line_start), '\0');
  in.clear();
  in.seekg(line_start);
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  in.close();
  if (json::accept(tail)) {
    std::ofstream(path, std::ios::binary | std::ios::app) << '\n';
  } else {
    fs::resize_file(path, static_cast<std::uintmax_t>(line_start), ec);
    if (ec) throw Error("cannot cut the partial last line of log " + path + ": " + ec.message());
  }
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

JsonlWriter::JsonlWriter(const std::string& path) : path_(path) {
  std::error_code ec;
  if (auto dir = fs::path(path).parent_path(); !dir.empty()) fs::create_directories(dir, ec);
  repair_tail(path);
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) throw Error("cannot open log " + path + " for appending: " + std::strerror(errno));
}

JsonlWriter::~JsonlWriter() {
  if (file_) std::fclose(file_);
}

void JsonlWriter::write(const json& record) {
  if (!record.is_object()) throw Error("log " + path_ + ": a record must be a JSON object, got " + record.type_name());
  const std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mutex_);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw Error("cannot write log " + path_ + ": " + std::strerror(errno));
}

JsonlContents read_jsonl(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("log not found: " + path);
  const std::string text = read_file(path);
  // Lines with their numbers, blank ones left out.
  std::vector<std::pair<std::size_t, std::string>> lines;
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (++n, !blank(line)) lines.emplace_back(n, std::move(line));
  JsonlContents out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& [line_no, line] = lines[i];
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) {
      if (i + 1 == lines.size()) {
        out.truncated_tail = true;
        break;
      }
      throw Error("log " + path + " line " + std::to_string(line_no) + ": invalid JSON");
    }
    if (!record.is_object())
      throw Error("log " + path + " line " + std::to_string(line_no) + ": expected a JSON object, got " +
                  record.type_name());
    out.records.push_back(std::move(record));
  }
  return out;
}

}  // namespace luminars

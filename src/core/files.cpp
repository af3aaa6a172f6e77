#include "core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace luminars {

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
      fill(out);
      out.flush();
      if (!out) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
    }
    const int fd = ::open(tmp.c_str(), O_RDONLY);
    if (fd < 0) throw Error("cannot reopen " + tmp + " to sync it: " + std::strerror(errno));
    const int synced = ::fsync(fd);
    const int sync_errno = errno;
    ::close(fd);
    if (synced != 0) throw Error("cannot write " + tmp + " to disk: " + std::strerror(sync_errno));
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
    const auto parent = std::filesystem::path(path).parent_path();
    sync_directory(parent.empty() ? "." : parent.string());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error("cannot open folder " + dir + " to sync it: " + std::strerror(errno));
  const int synced = ::fsync(fd);
  const int sync_errno = errno;
  ::close(fd);
  if (synced != 0 && sync_errno != EINVAL) throw Error("cannot sync folder " + dir + ": " + std::strerror(sync_errno));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_nonblank_lines(const std::string& path) {
  std::vector<std::string> out;
  const std::string text = read_file(path);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(std::move(line));
    start = end + 1;
  }
  return out;
}

uint64_t fnv1a(std::string_view bytes, uint64_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string file_stamp(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return "missing";
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return "missing";
  return std::to_string(size) + ":" + std::to_string(mtime.time_since_epoch().count());
}

uint64_t folder_fingerprint(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  uint64_t h = fnv1a(dir);
  for (const auto& n : names) {
    h = fnv1a(n + "\n", h);
    h = fnv1a(file_stamp((std::filesystem::path(dir) / n).string()) + "\n", h);
  }
  return h;
}

std::string hex64(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace luminars

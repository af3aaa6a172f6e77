// Small file helpers shared by every writer: atomic replacement and whole-file reads.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace luminars {

// Calls `fill` with a stream on `path`.tmp.<pid>, flushes, fsyncs and renames over `path`.
// On any failure the temporary file is removed and the old `path` is left as it was.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill);

// Reads a whole file; throws luminars::Error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace luminars

// Small file helpers shared by every writer: atomic replacement and whole-file reads.
#pragma once
#include <functional>
#include <ostream>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace luminars {

// Calls `fill` with a stream on `path`.tmp.<pid>, flushes, fsyncs (checked) and renames over
// `path`, then fsyncs the folder. On any failure (a full disk, say) the temporary file is removed,
// the old `path` is left as it was, and the error names the file.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill);

// fsync of a folder, so renames and new files in it survive a crash; throws naming the folder.
void sync_directory(const std::string& dir);

// Reads a whole file; throws luminars::Error naming the path when it cannot.
std::string read_file(const std::string& path);
// Its non-blank lines (a trailing \r dropped): prompt lists and the like.
std::vector<std::string> read_nonblank_lines(const std::string& path);

// FNV-1a (64-bit) of `bytes`, continuing from `hash`: a stable fingerprint for change detection
// (the same on every platform and standard library), not a cryptographic hash.
uint64_t fnv1a(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ULL);
// "size:mtime" of a file ("missing" when there is none): changes whenever the file is rewritten.
std::string file_stamp(const std::string& path);
// Every regular file of a folder (not recursive), by name, with its stamp, folded into one hash.
uint64_t folder_fingerprint(const std::string& dir);
// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace luminars

// SHA-256 (OpenSSL's libcrypto), incremental, as lowercase hex.
#pragma once
#include <memory>
#include <string>
#include <string_view>

namespace luminars {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  std::string hex();  // finishes the digest

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// SHA-256 of a whole file's bytes (read in blocks); throws naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace luminars

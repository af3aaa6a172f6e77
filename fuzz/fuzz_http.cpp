// libFuzzer target: the server's HTTP layer on raw connection bytes (request lines, headers,
// lengths, chunking, content codings, multipart, pipelining, the local-server policy). The body is
// http_entry (fuzz_entries.h), which tests/test_fuzz_regressions.cpp replays too.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    luminars::fuzz::http_entry(data, size);
  } catch (const luminars::Error&) {
    // Not expected here (every refusal is an answer), but the project's error is not a crash.
  }
  return 0;
}

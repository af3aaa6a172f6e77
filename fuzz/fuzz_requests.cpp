// libFuzzer target: the server's request bodies: jobs, OpenAI generations and edits, AUTOMATIC1111.
// The body is requests_entry (fuzz_entries.h), which tests/test_fuzz_regressions.cpp replays too.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    luminars::fuzz::requests_entry(data, size);
  } catch (const luminars::Error&) {
    // Bad input refused with the project's error: the expected outcome. Anything else escapes.
  }
  return 0;
}

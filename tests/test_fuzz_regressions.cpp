// Inputs that once broke a parser (fuzz/regressions/<target>/, one file each) and the seed corpora
// (fuzz/corpus/<target>/) through the fuzz targets' own entries (fuzz/fuzz_entries.h): only
// luminars::Error may come out. Sanitizer findings need the fuzz build (scripts/fuzz.sh); this
// keeps the fixes and the entries' invariants checked by the ordinary test binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "../fuzz/fuzz_entries.h"
#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "core/safetensors.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using Entry = void (*)(const uint8_t*, std::size_t);

// Every file of fuzz/<kind>/<target>/, sorted (none when the folder does not exist).
std::vector<fs::path> inputs(const std::string& kind, const std::string& target) {
  const fs::path dir = fs::path(LUMINARS_SOURCE_DIR) / "fuzz" / kind / target;
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs each input through `entry`; any exception but luminars::Error fails, naming the file.
void replay(const std::string& target, Entry entry) {
  std::size_t n = 0;
  for (const char* kind : {"regressions", "corpus"}) {
    for (const auto& path : inputs(kind, target)) {
      const std::string bytes = read_file(path.string());
      try {
        entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      } catch (const Error&) {
        // the expected answer to bad input
      } catch (const std::exception& e) {
        ADD_FAILURE() << path.string() << ": " << e.what();
      } catch (...) {
        ADD_FAILURE() << path.string() << ": an exception that is no std::exception";
      }
      ++n;
    }
  }
  EXPECT_GT(n, 0u) << "no inputs under fuzz/corpus/" << target;
}

TEST(FuzzRegressions, Safetensors) { replay("safetensors", fuzz::safetensors_entry); }

// An empty tensor at the offset where the next tensor starts, as safetensors::write lays it out,
// was refused as an overlap when the two sorted in JSON key order ("after" before "nothing").
TEST(FuzzRegressions, SafetensorsEmptyTensorAtNextTensorsOffset) {
  const safetensors::Reader reader(std::string(LUMINARS_SOURCE_DIR) +
                                   "/fuzz/regressions/safetensors/empty_tensor_at_next_tensors_offset.safetensors");
  EXPECT_EQ(reader.at("nothing").nbytes, 0u);
  EXPECT_EQ(reader.at("after").nbytes, 8u);
}
TEST(FuzzRegressions, Configs) { replay("configs", fuzz::configs_entry); }

// "resolution": 9223372036854775807128 is a float; luminars.json's integers were converted from it
// unchecked (undefined behaviour, seen only by UBSan). Now it is no integer: refused.
TEST(FuzzRegressions, ModelFolderResolutionBeyondInt64IsRefused) {
  const std::string bytes = read_file(std::string(LUMINARS_SOURCE_DIR) +
                                      "/fuzz/regressions/configs/luminars_json_resolution_float_beyond_int64.json");
  EXPECT_THROW(fuzz::configs_entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), Error);
}
TEST(FuzzRegressions, Tokenizer) { replay("tokenizer", fuzz::tokenizer_entry); }
TEST(FuzzRegressions, Image) { replay("image", fuzz::image_entry); }

// A 551-byte PNG whose IDAT chunk claims 1.9 GB: stb made room for the claim before reading it.
TEST(FuzzRegressions, PngChunkLongerThanTheFileIsRefusedBeforeStb) {
  const std::string bytes = read_file(std::string(LUMINARS_SOURCE_DIR) + "/fuzz/regressions/image/png_idat_claiming_1_9_gb.png");
  try {
    decode_image(bytes, "upload.png");
    ADD_FAILURE() << "decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("claims 1937375278 bytes"), std::string::npos) << e.what();
  }
}

// A 16-bit PPM: stb 2.27 converted its channels as 8-bit ones and read twice the bytes it held.
TEST(FuzzRegressions, SixteenBitPnmIsRefused) {
  const std::string bytes = read_file(std::string(LUMINARS_SOURCE_DIR) + "/fuzz/regressions/image/ppm_16_bit_read_past_stb_buffer.ppm");
  EXPECT_THROW(decode_image(bytes, "upload.ppm"), Error);
}

// A 1.2 kB PNG whose zlib stream is corrupt: Debian's stb inflated on past its end, doubling its
// buffer to 2 GiB. Now zlib checks the stream first and the picture is refused before stb sees it.
TEST(FuzzRegressions, PngWithACorruptZlibStreamIsRefusedBeforeStb) {
  const std::string bytes = read_file(std::string(LUMINARS_SOURCE_DIR) +
                                      "/fuzz/regressions/image/png_corrupt_zlib_stream_inflated_to_2gib_by_stb.png");
  try {
    decode_image(bytes, "upload.png");
    ADD_FAILURE() << "decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt image data"), std::string::npos) << e.what();
  }
}
#ifdef LUMINARS_HAVE_SERVE
TEST(FuzzRegressions, Requests) { replay("requests", fuzz::requests_entry); }
TEST(FuzzRegressions, Http) { replay("http", fuzz::http_entry); }
#endif

}  // namespace
}  // namespace luminars

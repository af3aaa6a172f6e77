// JSON Lines logs: one flushed object a line, and a reader (and writer) that survive a crash
// mid-write.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "core/files.h"
#include "test_support.h"
#include "train/jsonl_log.h"

namespace luminars {
namespace {

using nlohmann::json;

void append_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

TEST(JsonlLog, WritesOneFlushedObjectPerLine) {
  test::TempDir dir;
  const std::string path = dir.file("run/logs/train.jsonl");  // folders are created
  JsonlWriter log(path);
  log.write({{"step", 1}, {"loss", 0.5}});
  log.write({{"step", 2}, {"loss", std::numeric_limits<double>::quiet_NaN()}, {"caption", "a \"quoted\"\nline"}});
  // Flushed: readable while the writer is still open.
  EXPECT_EQ(read_file(path),
            "{\"loss\":0.5,\"step\":1}\n{\"caption\":\"a \\\"quoted\\\"\\nline\",\"loss\":null,\"step\":2}\n");
  log.write({{"step", 3}, {"val_loss", 0.25}});
  const auto c = read_jsonl(path);
  EXPECT_FALSE(c.truncated_tail);
  ASSERT_EQ(c.records.size(), 3u);
  EXPECT_EQ(c.records[0]["loss"].get<double>(), 0.5);
  EXPECT_TRUE(c.records[1]["loss"].is_null());
  EXPECT_EQ(c.records[2]["val_loss"].get<double>(), 0.25);
  EXPECT_THROW(log.write(json::array({1, 2})), Error);
}

TEST(JsonlLog, ReaderDropsATruncatedLastLine) {
  test::TempDir dir;
  const std::string path = dir.file("log.jsonl");
  {
    JsonlWriter log(path);
    log.write({{"step", 1}});
    log.write({{"step", 2}});
  }
  append_raw(path, "{\"step\": 3, \"lo");  // the crash
  auto c = read_jsonl(path);
  EXPECT_TRUE(c.truncated_tail);
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_EQ(c.records[1]["step"], 2);

  // Resuming: the writer cuts the partial line and appends cleanly after it.
  {
    JsonlWriter log(path);
    log.write({{"step", 3}});
  }
  EXPECT_EQ(read_file(path), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
  c = read_jsonl(path);
  EXPECT_FALSE(c.truncated_tail);
  EXPECT_EQ(c.records.size(), 3u);
}

TEST(JsonlLog, WholeLastRecordWithoutNewlineIsKept) {
  test::TempDir dir;
  const std::string path = dir.file("log.jsonl");
  test::write_text(path, "{\"step\":1}\n\n{\"step\":2}");
  auto c = read_jsonl(path);
  EXPECT_FALSE(c.truncated_tail);
  EXPECT_EQ(c.records.size(), 2u);
  {
    JsonlWriter log(path);
    log.write({{"step", 3}});
  }
  EXPECT_EQ(read_file(path), "{\"step\":1}\n\n{\"step\":2}\n{\"step\":3}\n");
}

TEST(JsonlLog, RepairsLongFilesAndLoneFragments) {
  test::TempDir dir;
  const std::string path = dir.file("long.jsonl");
  {
    JsonlWriter log(path);
    for (int i = 0; i < 3000; ++i) log.write({{"step", i}, {"loss", 1.0 / (1 + i)}});  // > 64 KiB
  }
  append_raw(path, std::string(70000, 'x'));  // a partial line longer than one read block
  {
    JsonlWriter log(path);
    log.write({{"step", 3000}});
  }
  auto c = read_jsonl(path);
  EXPECT_FALSE(c.truncated_tail);
  ASSERT_EQ(c.records.size(), 3001u);
  EXPECT_EQ(c.records.back()["step"], 3000);

  const std::string lone = dir.file("lone.jsonl");
  test::write_text(lone, "{\"st");  // crashed during the first write
  EXPECT_TRUE(read_jsonl(lone).truncated_tail);
  EXPECT_TRUE(read_jsonl(lone).records.empty());
  { JsonlWriter log(lone); }
  EXPECT_EQ(std::filesystem::file_size(lone), 0u);
}

TEST(JsonlLog, BadLinesElsewhereAreErrors) {
  test::TempDir dir;
  const std::string path = dir.file("bad.jsonl");
  auto message = [&](const std::string& text) -> std::string {
    test::write_text(path, text);
    try {
      read_jsonl(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message("{\"step\":1}\n{oops\n{\"step\":3}\n"), "log " + path + " line 2: invalid JSON");
  EXPECT_EQ(message("{\"step\":1}\n[1]\n"), "log " + path + " line 2: expected a JSON object, got array");
  EXPECT_EQ(message(""), "(no error)");
  try {
    read_jsonl(dir.file("absent.jsonl"));
    FAIL() << "no error for a missing log";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "log not found: " + dir.file("absent.jsonl"));
  }
}

}  // namespace
}  // namespace luminars

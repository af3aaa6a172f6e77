// The CLIP tokenizer against transformers' ids (fixtures/clip_tokenizer/cases.json), its Unicode
// helpers, its configuration files and its errors.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "test_support.h"
#include "text/clip_tokenizer.h"
#include "text/unicode.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string tokenizer_dir() { return test::fixtures_dir() + "/clip_tokenizer"; }

// A tokenizer folder in a TempDir: links to the fixture's vocab and merges plus the given files.
void make_tokenizer_dir(const test::TempDir& tmp, bool vocab = true, bool merges = true) {
  if (vocab) fs::create_symlink(tokenizer_dir() + "/vocab.json", tmp.file("vocab.json"));
  if (merges) fs::create_symlink(tokenizer_dir() + "/merges.txt", tmp.file("merges.txt"));
}

using test::error_of;

struct ClipTokenizerFixture : ::testing::Test {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    cases = json::parse(read_file(tokenizer_dir() + "/cases.json"));
  }
  json cases;
};

TEST_F(ClipTokenizerFixture, SpecialIdsAndLength) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  EXPECT_EQ(tok.bos_id, cases["bos"].get<int64_t>());
  EXPECT_EQ(tok.eos_id, cases["eos"].get<int64_t>());
  EXPECT_EQ(tok.pad_id, cases["pad"].get<int64_t>());
  EXPECT_EQ(tok.context_length, 77);
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.id_to_token(320), "a</w>");
  EXPECT_EQ(tok.id_to_token(49406), "<|startoftext|>");
}

TEST_F(ClipTokenizerFixture, EveryCasePaddedAndUnpadded) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  ASSERT_EQ(cases["cases"].size(), 15u);
  for (const auto& c : cases["cases"]) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(tok.encode(text), c["ids_max77"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tok.encode(text, /*pad=*/false, /*truncate=*/false), c["ids_unpadded"].get<std::vector<int64_t>>())
        << text;
    // Second pass: the same ids from the BPE cache.
    EXPECT_EQ(tok.encode(text), c["ids_max77"].get<std::vector<int64_t>>()) << text;
  }
}

TEST_F(ClipTokenizerFixture, BatchIsPaddedRows) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  std::vector<std::string> texts;
  for (const auto& c : cases["cases"]) texts.push_back(c["text"].get<std::string>());
  auto ids = tok.encode_batch(texts);
  ASSERT_EQ(ids.sizes(), (std::vector<int64_t>{15, 77}));
  EXPECT_EQ(ids.scalar_type(), torch::kInt64);
  for (int64_t b = 0; b < 15; ++b) {
    auto expected = cases["cases"][b]["ids_max77"].get<std::vector<int64_t>>();
    EXPECT_TRUE(torch::equal(ids[b], torch::tensor(expected, torch::kInt64))) << texts[b];
  }
}

TEST_F(ClipTokenizerFixture, TruncationKeepsEosLast) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  const auto& long_case = cases["cases"][14];
  const auto text = long_case["text"].get<std::string>();
  const auto full = long_case["ids_unpadded"].get<std::vector<int64_t>>();
  ASSERT_GT(full.size(), 77u);
  auto ids = tok.encode(text, /*pad=*/false);  // truncated, nothing to pad
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.back(), tok.eos_id);
  EXPECT_TRUE(std::equal(ids.begin(), ids.end() - 1, full.begin()));
  // A text of exactly 75 tokens fills the context with no truncation; one more is cut.
  std::string words;
  for (int i = 0; i < 75; ++i) words += "a ";
  auto exact = tok.encode(words, /*pad=*/false);
  ASSERT_EQ(exact.size(), 77u);
  EXPECT_EQ(exact[75], 320);
  EXPECT_EQ(exact[76], tok.eos_id);
  EXPECT_EQ(tok.encode(words + "a", /*pad=*/false), exact);
  EXPECT_EQ(tok.encode(words + "a", /*pad=*/false, /*truncate=*/false).size(), 78u);
}

TEST_F(ClipTokenizerFixture, PreTokenizeFollowsClipPattern) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  EXPECT_EQ(tok.pre_tokenize("  It's 4K!!  "), (std::vector<std::string>{"it", "'s", "4", "k", "!!"}));
  EXPECT_EQ(tok.pre_tokenize("x<|ENDOFTEXT|>y"), (std::vector<std::string>{"x", "<|endoftext|>", "y"}));
  // Inside a run of punctuation the special token is not recognised (leftmost match wins).
  EXPECT_EQ(tok.pre_tokenize("!<|endoftext|>y"), (std::vector<std::string>{"!<|", "endoftext", "|>", "y"}));
  EXPECT_EQ(tok.pre_tokenize("a <|EndOfText|>"), (std::vector<std::string>{"a", "<|endoftext|>"}));
  EXPECT_EQ(tok.pre_tokenize("don'x ''ll"), (std::vector<std::string>{"don", "'", "x", "''", "ll"}));
  EXPECT_EQ(tok.pre_tokenize("日本、富士"), (std::vector<std::string>{"日本", "、", "富士"}));
  EXPECT_EQ(tok.pre_tokenize("🦊🎨½x"), (std::vector<std::string>{"🦊🎨", "½", "x"}));
}

TEST_F(ClipTokenizerFixture, DecomposedTextEncodesAsComposed) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  EXPECT_EQ(tok.encode("cafe\u0301 cre\u0300me"), tok.encode("café crème"));
  EXPECT_EQ(tok.encode("CAFÉ"), tok.encode("café"));
  EXPECT_EQ(tok.encode("a\u00a0\u3000b"), tok.encode("a b"));  // Unicode spaces separate words
}

TEST_F(ClipTokenizerFixture, ConfigFilesSetPadAndLength) {
  test::TempDir tmp;
  make_tokenizer_dir(tmp);
  test::write_text(tmp.file("tokenizer_config.json"),
                   R"({"model_max_length": 10, "pad_token": "!", "bos_token": {"content": "<|startoftext|>"},
                       "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})");
  auto tok = ClipTokenizer::from_dir(tmp.path.string());
  EXPECT_EQ(tok.pad_id, 0);
  EXPECT_EQ(tok.context_length, 10);
  EXPECT_EQ(tok.encode("a painting"), (std::vector<int64_t>{49406, 320, 3086, 49407, 0, 0, 0, 0, 0, 0}));
  // special_tokens_map.json wins over tokenizer_config.json; a huge model_max_length means "no limit".
  test::write_text(tmp.file("special_tokens_map.json"), R"({"pad_token": {"content": "<|endoftext|>"}})");
  test::write_text(tmp.file("tokenizer_config.json"), R"({"model_max_length": 1e30, "pad_token": "!"})");
  tok = ClipTokenizer::from_dir(tmp.path.string());
  EXPECT_EQ(tok.pad_id, 49407);
  EXPECT_EQ(tok.context_length, 77);
  // A special token outside vocab.json, declared in added_tokens_decoder.
  fs::remove(tmp.file("special_tokens_map.json"));
  test::write_text(tmp.file("tokenizer_config.json"),
                   R"({"pad_token": "<|pad|>", "added_tokens_decoder": {"49408": {"content": "<|pad|>"}}})");
  tok = ClipTokenizer::from_dir(tmp.path.string());
  EXPECT_EQ(tok.pad_id, 49408);
}

TEST_F(ClipTokenizerFixture, ErrorsNameTheFile) {
  {
    test::TempDir tmp;
    make_tokenizer_dir(tmp, /*vocab=*/false);
    auto msg = error_of([&] { ClipTokenizer::from_dir(tmp.path.string()); });
    EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    make_tokenizer_dir(tmp, /*vocab=*/true, /*merges=*/false);
    auto msg = error_of([&] { ClipTokenizer::from_dir(tmp.path.string()); });
    EXPECT_NE(msg.find("merges.txt"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    make_tokenizer_dir(tmp, /*vocab=*/false);
    test::write_text(tmp.file("vocab.json"), "{\"a\": 0, ");
    auto msg = error_of([&] { ClipTokenizer::from_dir(tmp.path.string()); });
    EXPECT_NE(msg.find("vocab.json: invalid JSON"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    make_tokenizer_dir(tmp, /*vocab=*/true, /*merges=*/false);
    test::write_text(tmp.file("merges.txt"), "#version: 0.2\ni n\nt h e\n");
    auto msg = error_of([&] { ClipTokenizer::from_dir(tmp.path.string()); });
    EXPECT_NE(msg.find("merges.txt: line 3"), std::string::npos) << msg;
  }
  {
    test::TempDir tmp;
    make_tokenizer_dir(tmp);
    test::write_text(tmp.file("tokenizer_config.json"), R"({"pad_token": "<|pad|>"})");
    auto msg = error_of([&] { ClipTokenizer::from_dir(tmp.path.string()); });
    EXPECT_NE(msg.find("pad token '<|pad|>'"), std::string::npos) << msg;
  }
  auto msg = error_of([] { ClipTokenizer::from_dir("/nonexistent/tokenizer"); });
  EXPECT_NE(msg.find("/nonexistent/tokenizer"), std::string::npos) << msg;
}

TEST(Unicode, Classes) {
  using namespace unicode;
  for (char32_t c : {U'a', U'Z', U'é', U'ß', U'日', U'の', U'Ж', U'ا', U'한'}) EXPECT_TRUE(is_letter(c)) << int(c);
  for (char32_t c : {U'1', U'½', U'①', U'٣', U'Ⅻ'}) EXPECT_TRUE(is_number(c)) << int(c);
  for (char32_t c : {U'🦊', U'©', U'、', U'-', U'\u0301', U' '}) {
    EXPECT_FALSE(is_letter(c)) << int(c);
    EXPECT_FALSE(is_number(c)) << int(c);
  }
  for (char32_t c : {U' ', U'\t', U'\n', U'\r', U'\u00a0', U'\u2003', U'\u3000'}) EXPECT_TRUE(is_space(c)) << int(c);
  EXPECT_FALSE(is_space(U'\u200b'));  // zero-width space is not White_Space
}

TEST(Unicode, LowerCase) {
  using namespace unicode;
  EXPECT_EQ(to_lower(U"ÉÀÇ ÑØ ŁĄ ΣΑΣ ЖЯ Ǆ ＡＢ 𐐀"), U"éàç ñø łą σασ жя ǆ ａｂ 𐐨");
  EXPECT_EQ(to_lower(U"İ"), U"i\u0307");
  EXPECT_EQ(to_lower(U"ĀāĂ"), U"āāă");  // stride-2 runs
  EXPECT_EQ(to_lower(U"日本 123"), U"日本 123");
}

TEST(Unicode, Composition) {
  using namespace unicode;
  EXPECT_EQ(compose(U"e\u0301"), U"é");
  EXPECT_EQ(compose(U"e\u0301\u0301"), U"é\u0301");
  // Dot below (class 220) is ordered before the acute (230) and composes first.
  EXPECT_EQ(compose(U"a\u0301\u0323"), U"ạ\u0301");
  EXPECT_EQ(compose(U"\u1100\u1161\u11a8"), U"각");
  EXPECT_EQ(compose(U"café"), U"café");
  EXPECT_EQ(compose(U"\u0301e"), U"\u0301e");
}

TEST(Unicode, Utf8) {
  using namespace unicode;
  EXPECT_EQ(decode_utf8("a\xc3\xa9\xe6\x97\xa5\xf0\x9f\xa6\x8a"), U"aé日🦊");
  EXPECT_EQ(decode_utf8("a\xff" "b\xc3"), U"a\ufffdb\ufffd");
  EXPECT_EQ(decode_utf8("\xc0\xaf\xed\xa0\x80"), U"\ufffd\ufffd");  // overlong, surrogate
  EXPECT_EQ(encode_utf8(U"aé日🦊"), "a\xc3\xa9\xe6\x97\xa5\xf0\x9f\xa6\x8a");
}

}  // namespace
}  // namespace luminars

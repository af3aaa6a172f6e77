// The CLIP tokenizer against transformers' ids (fixtures/clip_tokenizer/cases.json), its Unicode
// helpers, its configuration files and its errors.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "test_support.h"
#include "text/clip_tokenizer.h"
#include "text/text_encoder.h"
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
  auto ids = encode_batch(tok, texts);
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

// NFC, categories and lower case come from utf8proc (Debian's libutf8proc-dev); the ids below are
// those of OpenAI's CLIP tokenizer (NFC, lower(), the `regex` split, BPE) on this vocabulary.
TEST_F(ClipTokenizerFixture, NfcCategoriesAndLowerCaseInTokens) {
  auto tok = ClipTokenizer::from_dir(tokenizer_dir());
  // Precomposed, decomposed and ANGSTROM SIGN (a singleton, U+212B -> U+00C5) spellings: one text.
  const std::vector<int64_t> angstrom{49406, 23176, 10352, 807, 7255, 332, 49407};
  EXPECT_EQ(tok.encode("\u00c5ngstr\u00f6m", /*pad=*/false), angstrom);
  EXPECT_EQ(tok.encode("A\u030angstro\u0308m", /*pad=*/false), angstrom);
  EXPECT_EQ(tok.encode("\u212bngstr\u00f6m", /*pad=*/false), angstrom);
  EXPECT_EQ(tok.pre_tokenize("\u212b A\u030a \u00c5"), (std::vector<std::string>{"\u00e5", "\u00e5", "\u00e5"}));
  // Singletons that lower-casing does not reach: GREEK QUESTION MARK is ';', a CJK compatibility
  // ideograph its unified ideograph.
  EXPECT_EQ(tok.pre_tokenize("a\u037eb"), (std::vector<std::string>{"a", ";", "b"}));
  EXPECT_EQ(tok.encode("a\u037eb", /*pad=*/false), (std::vector<int64_t>{49406, 320, 282, 321, 49407}));
  EXPECT_EQ(tok.encode("\uf929", /*pad=*/false), (std::vector<int64_t>{49406, 19277, 501, 49407}));
  // Lower case beyond ASCII.
  EXPECT_EQ(tok.pre_tokenize("\u00c9COLE"), (std::vector<std::string>{"\u00e9cole"}));
  EXPECT_EQ(tok.encode("\u00c9COLE", /*pad=*/false), (std::vector<int64_t>{49406, 3459, 8166, 49407}));
  // Letters (accented, CJK, Cyrillic) run together; digits, Arabic-Indic and vulgar fractions too,
  // come one by one; punctuation runs.
  EXPECT_EQ(tok.pre_tokenize("na\u00efve\u65e5\u672c\u0416x42?!\u2026 \u0663\u0664\u00bd"),
            (std::vector<std::string>{"na\u00efve\u65e5\u672c\u0436x", "4", "2", "?!\u2026", "\u0663", "\u0664", "\u00bd"}));
  EXPECT_EQ(tok.encode("na\u00efve\u65e5\u672c\u0416x42?!\u2026 \u0663\u0664\u00bd", /*pad=*/false),
            (std::vector<int64_t>{49406, 1097, 35689, 673, 39121, 44353, 140, 114, 343, 275, 273, 9785, 959, 149, 352, 149,
                                  353, 33613, 49407}));
  // Invalid UTF-8 does not throw: each bad sequence becomes one U+FFFD, a symbol run of its own.
  EXPECT_EQ(tok.pre_tokenize("ab\xff" "cd\xe6\x97"), (std::vector<std::string>{"ab", "\ufffd", "cd", "\ufffd"}));
  EXPECT_EQ(tok.encode("ab\xff", /*pad=*/false), (std::vector<int64_t>{49406, 3937, 39802, 49407}));
  EXPECT_NO_THROW(tok.encode("\xed\xa0\x80\xc0\xaf\xf8\x88\x80\x80\x80\xf4\x90\x80\x80"));
}

TEST(Unicode, NfcDecomposesSingletonsAndExclusions) {
  using namespace unicode;
  EXPECT_EQ(compose(U"A\u030a"), U"\u00c5");
  EXPECT_EQ(compose(U"\u212b"), U"\u00c5");         // ANGSTROM SIGN
  EXPECT_EQ(compose(U"\u2126\u212a"), U"\u03a9K");  // OHM SIGN, KELVIN SIGN
  EXPECT_EQ(compose(U"\u037e\u0387"), U";\u00b7");  // GREEK QUESTION MARK, GREEK ANO TELEIA
  EXPECT_EQ(compose(U"\uf929"), U"\u6717");         // a CJK compatibility ideograph
  EXPECT_EQ(compose(U"\u0958"), U"\u0915\u093c");   // a composition exclusion stays decomposed
  EXPECT_EQ(compose(U"\u0344"), U"\u0308\u0301");   // a non-starter decomposition
  // A precomposed letter before a mark of lower class: decomposed, reordered, recomposed.
  EXPECT_EQ(compose(U"\u1e0b\u0323"), U"\u1e0d\u0307");
  // U+11A7 is no trailing consonant: it stays after the syllable (utf8proc 2.8 alone drops it).
  EXPECT_EQ(compose(U"\uac00\u11a7"), U"\uac00\u11a7");
  EXPECT_EQ(compose(U"\u1100\u1161\u11a7\u11a8"), U"\uac00\u11a7\u11a8");
  // NUL is a character like any other; values that are no Unicode scalar pass through and block
  // composition across them.
  EXPECT_EQ(compose(std::u32string(U"e\0\u0301", 3)), std::u32string(U"e\0\u0301", 3));
  EXPECT_EQ(compose(std::u32string{U'e', char32_t(0xD800), 0x301, char32_t(0x110000), U'e', 0x301}),
            (std::u32string{U'e', char32_t(0xD800), 0x301, char32_t(0x110000), 0xE9}));
  EXPECT_EQ(combining_class(0x301), 230);
  EXPECT_EQ(combining_class(0x323), 220);
  EXPECT_EQ(combining_class(U'a'), 0);
  EXPECT_EQ(combining_class(0x110000), 0);
}

TEST(Unicode, CategoriesFromUtf8proc) {
  using namespace unicode;
  // Lu, Ll, Lt, Lm, Lo: accented Latin, CJK (Ext. A, B and Unicode 15's Ext. H), Hangul, Greek.
  for (char32_t c : {U'Å', U'ǅ', U'ʰ', U'〆', U'㐀', U'𠀀', U'가', U'Ω', char32_t(0x31350)})
    EXPECT_TRUE(is_letter(c)) << std::hex << unsigned(c);
  // Nd of other scripts, Nl, No.
  for (char32_t c : {U'٣', U'१', U'５', U'Ⅷ', U'²', U'⑳', char32_t(0x1D2C0)}) EXPECT_TRUE(is_number(c)) << std::hex << unsigned(c);
  // Marks, punctuation, symbols, unassigned, private use, outside Unicode: none of the three.
  for (char32_t c : {char32_t(0x301), U'…', U'¿', U'€', U'∑', char32_t(0x378), char32_t(0xE000), char32_t(0x110000),
                     char32_t(0xFFFFFFFF)}) {
    EXPECT_FALSE(is_letter(c)) << std::hex << unsigned(c);
    EXPECT_FALSE(is_number(c)) << std::hex << unsigned(c);
    EXPECT_FALSE(is_space(c)) << std::hex << unsigned(c);
  }
  // White_Space: Zs, Zl, Zp and U+0009..U+000D, U+0085; 25 code points in all.
  int spaces = 0;
  for (char32_t c = 0; c < 0x110000; ++c) spaces += is_space(c);
  EXPECT_EQ(spaces, 25);
  for (char32_t c : {0x85, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F}) EXPECT_TRUE(is_space(c)) << std::hex << unsigned(c);
  for (char32_t c : {0x1C, 0x180E, 0x200B, 0xFEFF}) EXPECT_FALSE(is_space(c)) << std::hex << unsigned(c);
}

TEST(Unicode, LowerCaseBeyondAscii) {
  using namespace unicode;
  EXPECT_EQ(to_lower(U"ÉCOLE"), U"école");
  EXPECT_EQ(to_lower(U"ÅNGSTRÖM ØRESUND ĲSSEL"), U"ångström øresund ĳssel");
  EXPECT_EQ(to_lower(U"\u212b\u2126\u212a"), U"åωk");  // the signs lower-case to the letters
  EXPECT_EQ(to_lower(U"ẞ Ⅻ Ⓐ 𞤀"), U"ß ⅻ ⓐ 𞤢");
  EXPECT_EQ(to_lower(U"ß ǆ ﬁ ı"), U"ß ǆ ﬁ ı");  // lower case already: unchanged
  EXPECT_EQ(to_lower(std::u32string{char32_t(0x110000), U'A'}), (std::u32string{char32_t(0x110000), U'a'}));
}

TEST(Unicode, InvalidUtf8BecomesReplacement) {
  using namespace unicode;
  // One U+FFFD per bad lead byte with the continuation bytes it claims, as before utf8proc.
  EXPECT_EQ(decode_utf8("\xe6\x97"), U"\ufffd");  // truncated
  EXPECT_EQ(decode_utf8("\xe6\x97" "a"), U"\ufffda");
  EXPECT_EQ(decode_utf8("\x80\xbf"), U"\ufffd\ufffd");  // stray continuation bytes
  EXPECT_EQ(decode_utf8("\xf4\x90\x80\x80"), U"\ufffd");  // above U+10FFFF
  EXPECT_EQ(decode_utf8("\xe0\x80\xaf"), U"\ufffd");  // overlong
  EXPECT_EQ(decode_utf8("\xf8\x88\x80\x80\x80"), U"\ufffd\ufffd\ufffd\ufffd\ufffd");  // no 5-byte forms
  EXPECT_EQ(decode_utf8(std::string("a\0b", 3)), std::u32string(U"a\0b", 3));
  // What UTF-8 cannot hold is written as U+FFFD.
  EXPECT_EQ(encode_utf8(std::u32string{char32_t(0xD800), char32_t(0x110000)}), "\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace luminars

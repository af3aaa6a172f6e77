// The BPE trainer: hand-worked merges, the folder it writes read back by ClipTokenizer (round
// trips, frequent words as one token, special ids), determinism, errors and the CLI command; and
// ClipTokenizer::decode and the byte table against the real CLIP vocabulary (fixtures).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "test_support.h"
#include "text/bpe_trainer.h"
#include "text/clip_tokenizer.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::error_of;
using Merges = std::vector<std::pair<std::string, std::string>>;

// A sidecar folder of tiny images, two captions each: "a red circle on a white background", ….
void make_captioned_folder(const test::TempDir& dir) {
  const std::vector<std::string> colours{"red", "green", "blue", "yellow", "purple", "orange"};
  const std::vector<std::string> shapes{"circle", "square", "triangle", "star"};
  const std::vector<std::string> backgrounds{"white", "black", "gray"};
  const Image img = test::gradient_image(8, 8);
  int n = 0;
  for (const auto& c : colours)
    for (const auto& s : shapes) {
      const std::string stem = dir.file("img" + std::to_string(n));
      save_png(stem + ".png", img);
      test::write_text(stem + ".txt", "A " + c + " " + s + " on a " + backgrounds[n % 3] + " background\n" + s +
                                          " in " + c + ", seen from above.\n");
      ++n;
    }
}

// The text that decode(encode(text)) gives: the pieces, each followed by a word end (a space).
std::string pieces_joined(const std::string& text) {
  std::string out;
  for (const auto& p : clip_pre_tokenize(text)) out += (out.empty() ? "" : " ") + p;
  return out;
}

std::vector<int64_t> unpadded(const ClipTokenizer& tok, const std::string& text) {
  return tok.encode(text, /*pad=*/false, /*truncate=*/false);
}

// ---------------------------------------------------------------------------------------------
// Merge learning by hand
// ---------------------------------------------------------------------------------------------

TEST(BpeTrainer, HandWorkedMerges) {
  // "aaab" ×5 = a a a b</w>, "ab" ×3 = a b</w>. Pairs: (a,a) 2·5 = 10, (a,b</w>) 5+3 = 8, so
  // a+a first; "a a a" merges left to right into "aa a". Then (a,b</w>) 8 > (aa,a) 5; then
  // (aa,ab</w>) 5; then no pair is left.
  BpeTrainerOptions o;
  o.vocab_size = 600;
  auto v = learn_clip_bpe({{"aaab", 5}, {"ab", 3}}, o);
  EXPECT_EQ(v.merges, (Merges{{"a", "a"}, {"a", "b</w>"}, {"aa", "ab</w>"}}));
  ASSERT_EQ(v.size(), 512 + 3 + 2);  // stopped early: smaller than asked
  EXPECT_EQ(v.tokens[512], "aa");
  EXPECT_EQ(v.tokens[513], "ab</w>");
  EXPECT_EQ(v.tokens[514], "aaab</w>");
  EXPECT_EQ(v.tokens[515], "<|startoftext|>");
  EXPECT_EQ(v.tokens[516], "<|endoftext|>");

  // The vocabulary size stops the merges: one merge, then BOS and EOS.
  o.vocab_size = 515;
  v = learn_clip_bpe({{"aaab", 5}, {"ab", 3}}, o);
  EXPECT_EQ(v.merges, (Merges{{"a", "a"}}));
  EXPECT_EQ(v.size(), 515);
}

TEST(BpeTrainer, TiesGoToTheSmallestPairAndRarePairsStay) {
  BpeTrainerOptions o;
  o.vocab_size = 1000;
  // (c,d</w>) and (a,b</w>) both 2: "a b</w>" < "c d</w>"; (x,y</w>) seen once stays.
  auto v = learn_clip_bpe({{"cd", 2}, {"ab", 2}, {"xy", 1}}, o);
  EXPECT_EQ(v.merges, (Merges{{"a", "b</w>"}, {"c", "d</w>"}}));
  o.min_frequency = 1;
  v = learn_clip_bpe({{"cd", 2}, {"ab", 2}, {"xy", 1}}, o);
  EXPECT_EQ(v.merges, (Merges{{"a", "b</w>"}, {"c", "d</w>"}, {"x", "y</w>"}}));
  // Nothing frequent enough: the bare alphabet.
  o.min_frequency = 3;
  v = learn_clip_bpe({{"cd", 2}, {"ab", 2}}, o);
  EXPECT_TRUE(v.merges.empty());
  EXPECT_EQ(v.size(), kMinBpeVocabSize);
}

TEST(BpeTrainer, AlphabetIsClipsByteOrder) {
  auto v = learn_clip_bpe({}, {});
  ASSERT_EQ(v.size(), kMinBpeVocabSize);
  EXPECT_EQ(v.tokens[0], "!");
  EXPECT_EQ(v.tokens[93], "~");
  EXPECT_EQ(v.tokens[94], "\xC2\xA1");        // ¡ (0xA1)
  EXPECT_EQ(v.tokens[188], "\xC4\x80");       // byte 0x00 -> U+0100
  EXPECT_EQ(v.tokens[188 + 32], "\xC4\xA0");  // space -> Ġ (U+0120)
  EXPECT_EQ(v.tokens[256], "!</w>");
  for (int k = 0; k < 256; ++k) {
    EXPECT_EQ(v.tokens[k], clip_byte_symbols()[clip_byte_order()[k]]);
    EXPECT_EQ(v.tokens[256 + k], v.tokens[k] + "</w>");
  }
}

TEST(BpeTrainer, CountsClipWords) {
  WordCounts counts;
  EXPECT_EQ(count_clip_words("A red Circle, a RED square!", counts), 8);
  EXPECT_EQ(counts, (WordCounts{{"a", 2}, {"red", 2}, {"circle", 1}, {",", 1}, {"square", 1}, {"!", 1}}));
  EXPECT_EQ(count_clip_words("  ", counts), 0);
}

// ---------------------------------------------------------------------------------------------
// The folder, read back
// ---------------------------------------------------------------------------------------------

TEST(BpeTrainer, TrainedFolderRoundTrips) {
  test::TempDir dir;
  make_captioned_folder(dir);
  TrainTokenizerOptions o;
  o.data_dir = dir.file("");
  o.out_dir = dir.file("tok");
  o.context_length = 64;
  o.bpe.vocab_size = 600;
  const auto r = train_tokenizer(o);
  EXPECT_EQ(r.captions, 48);
  EXPECT_EQ(r.words, 24 * 8 + 24 * 7);
  EXPECT_GT(r.merges, 20);
  EXPECT_EQ(r.vocab_size, 512 + r.merges + 2);
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(dir.file("tok/") + f)) << f;
  EXPECT_EQ(read_file(dir.file("tok/merges.txt")).rfind("#version: 0.2\n", 0), 0u);
  const auto config = json::parse(read_file(dir.file("tok/tokenizer_config.json")));
  EXPECT_EQ(config["tokenizer_class"], "CLIPTokenizer");
  EXPECT_EQ(config["do_lower_case"], true);
  EXPECT_EQ(config["pad_token"], "<|endoftext|>");

  auto tok = ClipTokenizer::from_dir(o.out_dir);
  EXPECT_EQ(tok.vocab_size(), r.vocab_size);
  EXPECT_EQ(tok.bos_id, r.vocab_size - 2);
  EXPECT_EQ(tok.eos_id, r.vocab_size - 1);
  EXPECT_EQ(tok.pad_id, r.vocab_size - 1);
  EXPECT_EQ(tok.context_length, 64);

  // Frequent words are one token each.
  for (const char* word : {"circle", "square", "background", "a"}) {
    const auto ids = unpadded(tok, word);
    ASSERT_EQ(ids.size(), 3u) << word;
    EXPECT_EQ(tok.id_to_token(ids[1]), std::string(word) + "</w>");
  }
  // Training captions and unseen text decode to their cleaned, lower-cased pieces.
  for (const std::string text : {"A red circle on a white background", "triangle in purple, seen from above.",
                                 "Émoji ☺ at 12:45 — «quoted» text, 3.14% ok?!", "ZEBRA\tcrossing  \n"}) {
    EXPECT_EQ(tok.decode(unpadded(tok, text)), pieces_joined(text)) << text;
    EXPECT_EQ(tok.decode(tok.encode(text)), pieces_joined(text)) << text;  // padding dropped too
  }
  EXPECT_EQ(tok.decode(unpadded(tok, "A red circle on a white background")), "a red circle on a white background");
  EXPECT_EQ(tok.decode(unpadded(tok, "Émoji ☺")), "émoji ☺");

  // The summary names the counts and the folder.
  const std::string s = r.summary();
  EXPECT_NE(s.find("48 captions"), std::string::npos) << s;
  EXPECT_NE(s.find(o.out_dir), std::string::npos) << s;
  EXPECT_NE(s.find("of 600 asked"), std::string::npos) << s;  // this corpus has fewer merges to learn
}

TEST(BpeTrainer, VocabSizeIsReachedExactly) {
  test::TempDir dir;
  make_captioned_folder(dir);
  TrainTokenizerOptions o;
  o.data_dir = dir.file("");
  o.out_dir = dir.file("tok");
  o.bpe.vocab_size = 530;
  const auto r = train_tokenizer(o);
  EXPECT_EQ(r.merges, 16);
  EXPECT_EQ(r.vocab_size, 530);
  EXPECT_EQ(r.summary().find("asked"), std::string::npos);
  auto tok = ClipTokenizer::from_dir(o.out_dir);
  EXPECT_EQ(tok.vocab_size(), 530);
  EXPECT_EQ(tok.bos_id, 528);
  EXPECT_EQ(tok.context_length, 77);
  const std::string text = "an orange star on a gray background";
  EXPECT_EQ(tok.decode(unpadded(tok, text)), text);
}

TEST(BpeTrainer, SameInputSameFiles) {
  test::TempDir dir;
  make_captioned_folder(dir);
  TrainTokenizerOptions o;
  o.data_dir = dir.file("");
  o.bpe.vocab_size = 560;
  o.out_dir = dir.file("one");
  train_tokenizer(o);
  o.out_dir = dir.file("two");
  train_tokenizer(o);
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_EQ(read_file(dir.file("one/") + f), read_file(dir.file("two/") + f)) << f;
  // vocab.json lists the tokens in id order.
  const std::string vocab = read_file(dir.file("one/vocab.json"));
  EXPECT_EQ(vocab.rfind("{\n  \"!\": 0,\n  \"\\\"\": 1,\n", 0), 0u) << vocab.substr(0, 40);
  EXPECT_NE(vocab.find("\"<|endoftext|>\": 559\n}\n"), std::string::npos);
}

TEST(BpeTrainer, ImageFolderListCaptions) {
  test::TempDir dir;
  const Image img = test::gradient_image(8, 8);
  save_png(dir.file("a.png"), img);
  save_png(dir.file("b.png"), img);
  test::write_text(dir.file("metadata.jsonl"),
                   "{\"file_name\": \"a.png\", \"caption\": [\"zebra zebra\", \"a zebra\"]}\n"
                   "{\"file_name\": \"b.png\", \"caption\": \"zebra\"}\n");
  TrainTokenizerOptions o;
  o.data_dir = dir.file("");
  o.out_dir = dir.file("tok");
  o.caption_column = "caption";
  o.bpe.vocab_size = 600;
  const auto r = train_tokenizer(o);
  EXPECT_EQ(r.captions, 3);
  EXPECT_EQ(r.words, 5);
  EXPECT_EQ(r.distinct_words, 2);
  auto tok = ClipTokenizer::from_dir(o.out_dir);
  EXPECT_EQ(tok.id_to_token(unpadded(tok, "zebra")[1]), "zebra</w>");
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST(BpeTrainer, Errors) {
  test::TempDir dir;
  make_captioned_folder(dir);
  TrainTokenizerOptions o;
  o.data_dir = dir.file("");
  o.out_dir = dir.file("tok");
  o.bpe.vocab_size = 100;
  std::string e = error_of([&] { train_tokenizer(o); });
  EXPECT_NE(e.find("vocabulary too small for the byte alphabet"), std::string::npos) << e;
  EXPECT_NE(e.find("514"), std::string::npos) << e;
  EXPECT_NE(e.find("100"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(o.out_dir));
  o.bpe.vocab_size = 600;
  o.bpe.min_frequency = 0;
  EXPECT_NE(error_of([&] { train_tokenizer(o); }).find("min frequency 0"), std::string::npos);
  o.bpe.min_frequency = 2;
  o.context_length = 1;
  EXPECT_NE(error_of([&] { train_tokenizer(o); }).find("context length 1"), std::string::npos);

  // Images without a caption file: Dataset::scan's message.
  test::TempDir bare;
  save_png(bare.file("a.png"), test::gradient_image(8, 8));
  o = {};
  o.data_dir = bare.path.string();
  o.out_dir = bare.file("tok");
  o.bpe.vocab_size = 600;
  e = error_of([&] { train_tokenizer(o); });
  EXPECT_NE(e.find("no captions"), std::string::npos) << e;
  EXPECT_NE(e.find(bare.path.string()), std::string::npos) << e;
  // Caption files, every one empty.
  test::write_text(bare.file("a.txt"), "\n  \n");
  e = error_of([&] { train_tokenizer(o); });
  EXPECT_EQ(e, "no captions in " + bare.path.string());
  EXPECT_FALSE(fs::exists(o.out_dir));

  test::TempDir empty;
  o.data_dir = empty.path.string();
  e = error_of([&] { train_tokenizer(o); });
  EXPECT_NE(e.find(empty.path.string()), std::string::npos) << e;
  o.data_dir = empty.file("nope");
  e = error_of([&] { train_tokenizer(o); });
  EXPECT_NE(e.find(empty.file("nope")), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

TEST(BpeTrainer, CliEndToEnd) {
  test::TempDir dir;
  make_captioned_folder(dir);
  auto r = test::run_cli("train-tokenizer --data " + dir.path.string() + " --vocab-size 540 --context-length 32 --out " +
                         dir.file("tok"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("48 captions"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("vocabulary 540 tokens"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(dir.file("tok")), std::string::npos) << r.output;
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(dir.file("tok/") + f)) << f;
  EXPECT_EQ(ClipTokenizer::from_dir(dir.file("tok")).context_length, 32);

  // The folder works with the tokenize command.
  r = test::run_cli("tokenize --no-pad --tokenizer " + dir.file("tok") + " 'a circle'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = test::run_cli("train-tokenizer --data " + dir.path.string() + " --vocab-size 100 --out " + dir.file("tok2"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("luminars: error: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("514"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("tok2")));
}

// ---------------------------------------------------------------------------------------------
// ClipTokenizer's shared pieces against the real CLIP vocabulary
// ---------------------------------------------------------------------------------------------

TEST(ClipTokenizerDecode, FixtureCasesAndByteLayout) {
  LUMINARS_REQUIRE_FIXTURES();
  const std::string dir = test::fixtures_dir() + "/clip_tokenizer";
  auto tok = ClipTokenizer::from_dir(dir);
  // OpenAI CLIP's first 512 ids are the layout the trainer writes.
  auto alphabet = learn_clip_bpe({}, {});
  for (int64_t id = 0; id < 512; ++id) EXPECT_EQ(tok.id_to_token(id), alphabet.tokens[id]) << id;

  const auto cases = json::parse(read_file(dir + "/cases.json"));
  for (const auto& c : cases["cases"]) {
    const auto text = c["text"].get<std::string>();
    // The pieces, without the specials that the text spells (they are dropped as tokens).
    std::string expected;
    for (const auto& p : tok.pre_tokenize(text))
      if (p != "<|startoftext|>" && p != "<|endoftext|>") expected += (expected.empty() ? "" : " ") + p;
    EXPECT_EQ(tok.decode(c["ids_unpadded"].get<std::vector<int64_t>>()), expected) << text;
  }
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_EQ(tok.decode({tok.bos_id, tok.eos_id, tok.pad_id}), "");
  EXPECT_EQ(tok.decode(unpadded(tok, "Hello, World!")), "hello , world !");
}

}  // namespace
}  // namespace luminars

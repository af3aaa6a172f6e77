// `luminars` refusing what it cannot honour: non-finite numbers, seeds out of range, sizes the
// model cannot draw or was not trained at, output formats it cannot write, misspelled commands
// and flags; and what it does instead (a random seed recorded, JPEG written, the shipped model).
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/image.h"
#include "pipeline/parameters.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

std::string generate(const std::string& args) { return "generate --model " + kModel + " --quiet --no-bf16 " + args; }

void expect_refused(const std::string& args, const std::string& message) {
  const auto r = test::run_cli(args);
  EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
}

TEST(CliRefusals, NonFiniteNumbersInEverySubcommand) {
  test::TempDir dir;
  const std::string out = " --prompt x --out " + dir.file("x.png");
  for (const char* flag : {"--cfg", "--shift", "--strength"}) {
    for (const char* value : {"nan", "NaN", "-nan"})
      expect_refused(generate(std::string(flag) + " " + value + out), std::string(flag) + ": " + value + " is not a finite number");
    for (const char* value : {"inf", "-inf", "1e999"})  // their ranges refuse these first
      expect_refused(generate(std::string(flag) + " " + value + out), std::string(flag) + ": Value " + value + " not in range");
  }
  // Other subcommands' floating options get the same check.
  expect_refused("serve --max-body-mb nan", "--max-body-mb: nan is not a finite number");
  expect_refused("train --cache nowhere --out nowhere --lr nan", "--lr: nan is not a finite number");
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

TEST(CliRefusals, SeedsOutOfRange) {
  test::TempDir dir;
  const std::string out = " --prompt x --out " + dir.file("x.png");
  expect_refused(generate("--seed -2" + out), "--seed: -2: seeds are whole numbers from 0 to 4294967295, or -1 for a random one");
  expect_refused(generate("--seed 1234567890123456789012345" + out), "--seed: 1234567890123456789012345 is too large");
  expect_refused(generate("--seed 18446744073709551615" + out), "is too large");
  expect_refused(generate("--seed 4294967296" + out), "--seed: 4294967296 is too large");
  expect_refused(generate("--seed 1.5" + out), "--seed: 1.5: seeds are whole numbers");
  // The last seed of a batch must fit too.
  expect_refused(generate("--seed 4294967295 --batch 2" + out), "the last picture would need seed 4294967296");
}

TEST(CliRefusals, SizesStateTheRuleAndTheNearest) {
  test::TempDir dir;
  const std::string out = " --prompt x --out " + dir.file("x.png");
  expect_refused(generate("--size 60" + out), "--size 60: must be a multiple of 32 from 32 to 4096; nearest: 64");
  expect_refused(generate("--width 80" + out), "--width 80: must be a multiple of 32 from 32 to 4096; nearest: 64 or 96");
  expect_refused(generate("--height 8" + out), "--height 8: must be a multiple of 32 from 32 to 4096; nearest: 32");
  // The shipped model was trained at 64 and 128: other valid sizes need --any-size.
  expect_refused(generate("--size 96" + out), "--size 96: the model was trained at 64, 128");
  expect_refused(generate("--size 256" + out), "pass --any-size");
  // So does a two-pass picture's first pass: 96 is refused, drawn with --any-size.
  expect_refused(generate("--size 128 --hires-from 96" + out), "hires fix: the first pass's width 96 is not a size the model was trained at (64, 128)");
  const auto drawn = test::run_cli(generate("--size 128 --hires-from 96 --any-size --steps 2" + out));
  EXPECT_EQ(drawn.exit_code, 0) << drawn.output;
  const auto parameters = parse_parameters(read_png_text(dir.file("x.png")).at("parameters"));
  EXPECT_EQ(parameters.first_width, 96);
  EXPECT_EQ(parameters.width, 128);
  // --help states the rule.
  const auto help = test::run_cli("generate --help");
  EXPECT_NE(help.output.find("multiple of the model's size step (32 for the shipped model)"), std::string::npos) << help.output;
}

TEST(CliRefusals, OutputFormatFollowsTheExtension) {
  test::TempDir dir;
  expect_refused(generate("--prompt x --out " + dir.file("x.gif")), "cannot write '.gif' images (supported: .png, .jpg, .jpeg)");
  expect_refused(generate("--prompt x --out " + dir.file("x")), "cannot write a file without an extension");
}

TEST(CliRefusals, MisspelledCommandsAndFlagsGetSuggestions) {
  expect_refused("generte --prompt x", "unknown command 'generte'; did you mean 'generate'?");
  expect_refused("tokenise x", "unknown command 'tokenise'; did you mean 'tokenize'?");
  expect_refused("--threads 1 generte --prompt x", "unknown command 'generte'; did you mean 'generate'?");
  expect_refused("generate --prompt x --sed 3 --out x.png", "unknown option '--sed' for 'generate'; did you mean '--seed'?");
  expect_refused("generate --promt x --out x.png", "did you mean '--prompt'?");
  expect_refused("vae infoo", "unknown 'vae' command 'infoo'; did you mean 'info'?");
  expect_refused("generate --prompt x --zzzzzzzz --out x.png", "unknown option '--zzzzzzzz' for 'generate' (--help lists them)");
  expect_refused("qqqqqq", "unknown command 'qqqqqq' (--help lists them)");
  // --seed -1 is a value, not an unknown flag.
  const auto r = test::run_cli("generate --seed -1 --prompt x --sampler nope --out x.png");
  EXPECT_EQ(r.output.find("unknown option"), std::string::npos) << r.output;
}

TEST(CliRefusals, DeviceDefaultIsAutoInHelp) {
  for (const char* command : {"generate --help", "serve --help"}) {
    const auto r = test::run_cli(command);
    if (std::string(command) == "serve --help" && r.exit_code != 0) continue;  // built without the server
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(std::regex_search(r.output, std::regex("--device TEXT=auto"))) << r.output;
  }
}

TEST(CliRefusals, TokenizeAndEncodeTextUseTheShippedModel) {
  test::TempDir dir;
  // Run from an empty folder: no ./tokenizer there, the shipped model's is used.
  const std::string cli = "cd " + dir.path.string() + " && '" + std::string(LUMINARS_CLI_PATH) + "' ";
  auto r = test::run(cli + "tokenize --no-pad 'a red heart'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_match(r.output, std::regex("[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+\n"))) << r.output;  // BOS a red heart EOS
  r = test::run(cli + "encode-text 'a red heart'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prompt 0: 5 tokens"), std::string::npos) << r.output;
  // A missing tokenizer folder is named by its full path.
  r = test::run(cli + "tokenize --tokenizer nope x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("tokenizer folder not found: " + (dir.path / "nope").string()), std::string::npos) << r.output;
}

// ctest-labels: slow
TEST(CliRefusals, RandomSeedIsPrintedAndRecorded) {
  test::TempDir dir;
  auto r = test::run_cli(generate("--prompt 'a heart' --steps 1 --seed -1 --out " + dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("seed ([0-9]+), random\\)"))) << r.output;
  const uint64_t printed = std::stoull(m[1].str());
  EXPECT_EQ(parse_parameters(read_png_text(dir.file("a.png")).at("parameters")).seed, printed);
  // No seed at all: random as well, and two runs differ.
  r = test::run_cli(generate("--prompt 'a heart' --steps 1 --out " + dir.file("b.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("seed ([0-9]+), random\\)"))) << r.output;
  EXPECT_NE(std::stoull(m[1].str()), printed);
}

// ctest-labels: slow
TEST(CliRefusals, JpegOutput) {
  test::TempDir dir;
  auto r = test::run_cli(generate("--prompt 'a heart' --steps 1 --seed 2 --out " + dir.file("a.JPG")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir.file("a.JPG"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0xFF);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1]), 0xD8);
  EXPECT_NE(bytes.find("Seed: 2"), std::string::npos);  // the parameters, in the comment segment
  const Image jpeg = load_image(dir.file("a.JPG"));
  EXPECT_EQ(jpeg.width, 64);
  EXPECT_EQ(jpeg.height, 64);
  // Near the same picture as PNG (JPEG is lossy).
  r = test::run_cli(generate("--prompt 'a heart' --steps 1 --seed 2 --out " + dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(test::mean_abs_difference(jpeg, load_image(dir.file("a.png"))), 6.0);
}

// ctest-labels: slow
TEST(CliRefusals, AnySizeDrawsAnUntrainedSize) {
  test::TempDir dir;
  auto r = test::run_cli(generate("--prompt x --steps 1 --seed 1 --width 96 --any-size --out " + dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load_image(dir.file("a.png")).width, 96);
  EXPECT_EQ(load_image(dir.file("a.png")).height, 64);
}

}  // namespace
}  // namespace luminars

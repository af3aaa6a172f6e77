// TextEncoder (tokenizer + CLIP text model) end to end against the fixtures, and the `tokenize` and
// `encode-text` commands.
#include <nlohmann/json.hpp>

#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "text/text_encoder.h"

namespace luminars {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) { return test::fixtures_dir() + "/" + name; }

// The fixture model inputs are the tokenizer cases 0, 1, 2, 3 (empty) and 14 (long, truncated).
std::vector<std::string> fixture_prompts() {
  auto cases = json::parse(read_file(fixture("clip_tokenizer/cases.json")))["cases"];
  return {cases[0]["text"], cases[1]["text"], cases[2]["text"], cases[3]["text"], cases[14]["text"]};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::vector<int64_t>> parse_id_lines(const std::string& output) {
  std::vector<std::vector<int64_t>> lines;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<int64_t> ids;
    int64_t id;
    while (words >> id) ids.push_back(id);
    lines.push_back(ids);
  }
  return lines;
}

TEST(TextEncoder, PromptsToContextAndPooled) {
  LUMINARS_REQUIRE_FIXTURES();
  for (const std::string name : {"clip_text_tiny", "clip_text_tiny_gelu"}) {
    auto enc = TextEncoder::load(fixture(name), fixture("clip_tokenizer"));
    auto ex = load_tensors(fixture(name) + "/expected.safetensors");
    const auto prompts = fixture_prompts();
    EXPECT_TRUE(torch::equal(encode_batch(enc.tokenizer(), prompts), ex.at("input_ids"))) << name;
    EXPECT_EQ(enc.hidden_size(), 32);
    EXPECT_EQ(enc.context_length(), 77);
    auto out = enc.encode(prompts);
    ASSERT_EQ(out.ctx.sizes(), (std::vector<int64_t>{5, 77, 32}));
    ASSERT_EQ(out.pooled.sizes(), (std::vector<int64_t>{5, 32}));
    EXPECT_LE(test::rel_error(out.ctx, ex.at("last_hidden_state")), 1e-5) << name;
    EXPECT_LE(test::rel_error(out.pooled, ex.at("pooler_output")), 1e-5) << name;
    auto pen = enc.encode(prompts, /*penultimate=*/true);
    EXPECT_LE(test::rel_error(pen.ctx, ex.at("penultimate_hidden_state")), 1e-5) << name;
    EXPECT_LE(test::rel_error(pen.pooled, ex.at("pooler_output")), 1e-5) << name;
    EXPECT_FALSE(out.ctx.requires_grad());
  }
}

TEST(TextEncoder, EmptyPromptForGuidance) {
  LUMINARS_REQUIRE_FIXTURES();
  auto enc = TextEncoder::load(fixture("clip_text_tiny"), fixture("clip_tokenizer"));
  auto ex = load_tensors(fixture("clip_text_tiny") + "/expected.safetensors");
  auto out = enc.encode({""});  // the unconditional input of classifier-free guidance
  EXPECT_LE(test::rel_error(out.ctx[0], ex.at("last_hidden_state")[3]), 1e-5);
  EXPECT_LE(test::rel_error(out.pooled[0], ex.at("pooler_output")[3]), 1e-5);
}

TEST(TextEncoder, ToDeviceKeepsOutputs) {
  LUMINARS_REQUIRE_FIXTURES();
  auto enc = TextEncoder::load(fixture("clip_text_tiny_gelu"), fixture("clip_tokenizer"));
  auto before = enc.encode({"a fox"});
  enc.to(torch::kCPU);
  EXPECT_EQ(enc.device(), torch::Device(torch::kCPU));
  EXPECT_TRUE(torch::equal(enc.encode({"a fox"}).ctx, before.ctx));
  if (torch::cuda::is_available()) {
    enc.to(torch::kCUDA);
    auto gpu = enc.encode({"a fox"});
    EXPECT_TRUE(gpu.ctx.is_cuda());
    EXPECT_LE(test::rel_error(gpu.ctx.cpu(), before.ctx), 1e-5);
  }
}

TEST(TextEncoder, ContextLongerThanPositionsIsAnError) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir tmp;
  std::filesystem::create_symlink(fixture("clip_tokenizer/vocab.json"), tmp.file("vocab.json"));
  std::filesystem::create_symlink(fixture("clip_tokenizer/merges.txt"), tmp.file("merges.txt"));
  test::write_text(tmp.file("tokenizer_config.json"), R"({"model_max_length": 100})");
  try {
    TextEncoder::load(fixture("clip_text_tiny"), tmp.path.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the model's max_position_embeddings 77"), std::string::npos) << e.what();
  }
}

TEST(CliText, TokenizePrintsFixtureIds) {
  LUMINARS_REQUIRE_FIXTURES();
  auto cases = json::parse(read_file(fixture("clip_tokenizer/cases.json")))["cases"];
  const std::string command = "tokenize --tokenizer " + fixture("clip_tokenizer");
  std::string args;
  for (const auto& c : cases) args.append(" ").append(shell_quote(c["text"].get<std::string>()));
  auto padded = test::run_cli(command + args);
  ASSERT_EQ(padded.exit_code, 0) << padded.output;
  auto raw = test::run_cli(command + " --no-pad --no-truncate" + args);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto padded_lines = parse_id_lines(padded.output), raw_lines = parse_id_lines(raw.output);
  ASSERT_EQ(padded_lines.size(), cases.size()) << padded.output;
  ASSERT_EQ(raw_lines.size(), cases.size()) << raw.output;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(padded_lines[i], cases[i]["ids_max77"].get<std::vector<int64_t>>()) << i;
    EXPECT_EQ(raw_lines[i], cases[i]["ids_unpadded"].get<std::vector<int64_t>>()) << i;
  }
  // --no-pad alone stops at EOS and still truncates a long text to 77.
  std::string two = command + " --no-pad";
  for (int i : {0, 14}) two.append(" ").append(shell_quote(cases[i]["text"].get<std::string>()));
  auto one = test::run_cli(two);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto lines = parse_id_lines(one.output);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], cases[0]["ids_unpadded"].get<std::vector<int64_t>>());
  EXPECT_EQ(lines[1], cases[14]["ids_max77"].get<std::vector<int64_t>>());
}

// The shape and norm printed on the line that starts with `label`.
std::pair<std::string, double> summary_row(const std::string& output, const std::string& label) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(label + " ", 0) != 0) continue;
    const auto open = line.find('['), close = line.find(']'), norm = line.find("norm ");
    if (open == std::string::npos || close == std::string::npos || norm == std::string::npos) break;
    return {line.substr(open, close - open + 1), std::stod(line.substr(norm + 5))};
  }
  ADD_FAILURE() << "no line '" << label << "' in:\n" << output;
  return {"", 0.0};
}

TEST(CliText, EncodeTextPrintsShapesAndNorms) {
  LUMINARS_REQUIRE_FIXTURES();
  auto ex = load_tensors(fixture("clip_text_tiny") + "/expected.safetensors");
  const std::string command = "encode-text --text-encoder " + fixture("clip_text_tiny") + " --tokenizer " +
                              fixture("clip_tokenizer") + " " + shell_quote(fixture_prompts()[0]);
  auto expect_row = [](const std::string& output, const std::string& label, const std::string& shape,
                       const torch::Tensor& ref) {
    auto [printed_shape, norm] = summary_row(output, label);
    EXPECT_EQ(printed_shape, shape) << label;
    const double ref_norm = ref.norm().item<double>();
    EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm + 1e-6) << label;
  };
  auto r = test::run_cli(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_row(r.output, "ctx", "[1, 77, 32]", ex.at("last_hidden_state")[0]);
  expect_row(r.output, "pooled", "[1, 32]", ex.at("pooler_output")[0]);
  expect_row(r.output, "projected", "[1, 16]", ex.at("text_embeds")[0]);
  EXPECT_NE(r.output.find("prompt 0: 15 tokens (BOS and EOS included)"), std::string::npos) << r.output;

  r = test::run_cli(command + " --penultimate");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_row(r.output, "ctx(pen)", "[1, 77, 32]", ex.at("penultimate_hidden_state")[0]);
}

TEST(CliText, MissingFoldersAreOneLineErrors) {
  LUMINARS_REQUIRE_FIXTURES();
  auto expect_one_line = [](const test::RunResult& r, const std::string& path) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(r.output.rfind("luminars: error: ", 0), 0u) << r.output;
  };
  expect_one_line(test::run_cli("tokenize --tokenizer /nonexistent/tok 'a fox'"), "/nonexistent/tok");
  expect_one_line(test::run_cli("encode-text --text-encoder /nonexistent/te --tokenizer " + fixture("clip_tokenizer") +
                                " 'a fox'"),
                  "/nonexistent/te");
  expect_one_line(test::run_cli("encode-text --text-encoder " + fixture("clip_text_tiny") +
                                " --tokenizer /nonexistent/tok2 'a fox'"),
                  "/nonexistent/tok2");
}

}  // namespace
}  // namespace luminars

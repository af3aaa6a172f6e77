// Config: presets, JSON round trip, and validation errors that name the field at fault.
#include "core/error.h"
#include "model/config.h"
#include "test_support.h"

namespace luminars {
namespace {

std::string error_of(const std::string& json) {
  try {
    Config::from_json(json);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultMatchesReference) {
  Config c = Config::preset("default");
  EXPECT_EQ(c.latent_channels, 16);
  EXPECT_EQ(c.widths, (std::vector<int64_t>{192, 384, 768}));
  EXPECT_EQ(c.depths, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(c.mid_depth, 2);
  EXPECT_EQ(c.embed_dim, 768);
  EXPECT_EQ(c.text_dim, 768);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.recursions, 2);
  EXPECT_EQ(c.max_recursions, 8);
  EXPECT_EQ(c.freq_dim, 256);
  EXPECT_EQ(c.size_multiple(), 4);
}

TEST(Config, PresetsAreValidAndRoundTrip) {
  for (const auto& name : Config::preset_names()) {
    Config c = Config::preset(name);
    EXPECT_NO_THROW(c.validate()) << name;
    EXPECT_EQ(Config::from_json(c.to_json()), c) << name;
    EXPECT_EQ(Config::from_json(c.to_json(2)), c) << name;
  }
  EXPECT_THROW(Config::preset("huge"), Error);
}

TEST(Config, MissingFieldsTakeDefaults) {
  Config c = Config::from_json(R"({"recursions": 3})");
  EXPECT_EQ(c.recursions, 3);
  EXPECT_EQ(c.widths, Config{}.widths);
}

TEST(Config, ValidationNamesTheField) {
  EXPECT_NE(error_of(R"({"widths":[192,384,760]})").find("widths[2] = 760 is not divisible by head_dim 64"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"depths":[2,2]})").find("widths has 3 entries but depths has 2"), std::string::npos);
  EXPECT_NE(error_of(R"({"recursions":9})").find("recursions = 9 must be between 1 and max_recursions = 8"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"recursions":0})").find("recursions"), std::string::npos);
  EXPECT_NE(error_of(R"({"freq_dim":255})").find("freq_dim"), std::string::npos);
  EXPECT_NE(error_of(R"({"head_dim":0})").find("head_dim"), std::string::npos);
  EXPECT_NE(error_of(R"({"widths":[]})").find("widths must not be empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"widht":[64]})").find("unknown field 'widht'"), std::string::npos);
  EXPECT_NE(error_of(R"({"embed_dim":"big"})").find("embed_dim must be an integer"), std::string::npos);
  EXPECT_NE(error_of(R"({"widths":[64, "x"]})").find("widths must be a list of integers"), std::string::npos);
}

TEST(Config, InvalidJson) {
  EXPECT_NE(error_of("{\"widths\": [1,").find("config: invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("[1]").find("not a JSON object"), std::string::npos);
}

TEST(Config, FromFileNamesThePath) {
  test::TempDir dir;
  test::write_text(dir.file("c.json"), "{oops");
  try {
    Config::from_file(dir.file("c.json"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("c.json")), std::string::npos);
  }
  EXPECT_THROW(Config::from_file(dir.file("missing.json")), Error);
}

TEST(Config, LatentSizeDivisibleByLevels) {
  Config c;  // 3 levels: sides must be multiples of 4
  EXPECT_NO_THROW(c.validate_latent_size(32, 32));
  EXPECT_NO_THROW(c.validate_latent_size(8, 12));
  try {
    c.validate_latent_size(30, 32);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("30x32 is not divisible by 2^(levels-1) = 4"), std::string::npos);
  }
}

}  // namespace
}  // namespace luminars

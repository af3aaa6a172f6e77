// Base64: RFC 4648 test vectors, binary round trips, and the forgiving parts of decoding (data
// URLs, whitespace, missing padding) next to its strict ones (alphabet, padding, length).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/error.h"
#include "test_support.h"

namespace luminars {
namespace {

using test::error_of;

const std::vector<std::pair<std::string, std::string>> kRfc4648 = {
    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};

TEST(Base64, Rfc4648Vectors) {
  for (const auto& [plain, encoded] : kRfc4648) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded, "vector"), plain) << encoded;
  }
}

TEST(Base64, MissingPaddingIsAccepted) {
  EXPECT_EQ(base64_decode("Zg", "x"), "f");
  EXPECT_EQ(base64_decode("Zm8", "x"), "fo");
  EXPECT_EQ(base64_decode("Zm9vYg", "x"), "foob");
  EXPECT_EQ(base64_decode("Zm9vYmE", "x"), "fooba");
}

TEST(Base64, BinaryRoundTrip) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(base64_decode(base64_encode(all), "bytes"), all);
  EXPECT_EQ(base64_encode(std::string("\x00\xff\xfe", 3)), "AP/+");
  for (std::size_t n = 0; n <= 10; ++n) {
    const std::string part = all.substr(250 - n, n);
    const std::string encoded = base64_encode(part);
    EXPECT_EQ(encoded.size(), (n + 2) / 3 * 4);
    EXPECT_EQ(base64_decode(encoded, "part"), part) << n;
  }
}

TEST(Base64, DataUrlPrefixIsStripped) {
  EXPECT_EQ(base64_decode("data:image/png;base64,Zm9vYmFy", "init_image"), "foobar");
  EXPECT_EQ(base64_decode("  data:image/jpeg;base64,Zm9v\n", "init_image"), "foo");
  EXPECT_EQ(base64_decode("data:;base64,Zg==", "x"), "f");
  const std::string msg = error_of([] { base64_decode("data:text/plain,hello", "mask"); });
  EXPECT_EQ(msg, "invalid base64 in mask: a data URL without \";base64,\"");
}

TEST(Base64, WhitespaceIsIgnored) {
  EXPECT_EQ(base64_decode("Zm9v\nYmFy\r\n", "x"), "foobar");
  EXPECT_EQ(base64_decode(" Zm 9v\tYg =\n= ", "x"), "foob");
  // MIME-style lines of 76 characters.
  std::string data(300, 'q'), wrapped;
  const std::string encoded = base64_encode(data);
  for (std::size_t i = 0; i < encoded.size(); i += 76) wrapped += encoded.substr(i, 76) + "\r\n";
  EXPECT_EQ(base64_decode(wrapped, "x"), data);
}

TEST(Base64, InvalidInputNamesWhat) {
  EXPECT_EQ(error_of([] { base64_decode("Zm9v*mFy", "init_image"); }),
            "invalid base64 in init_image: '*' at offset 4");
  EXPECT_EQ(error_of([] { base64_decode("Zm9v-_", "mask"); }), "invalid base64 in mask: '-' at offset 4");
  EXPECT_EQ(error_of([] { base64_decode("Zm\x80v", "x"); }), "invalid base64 in x: byte 0x80 at offset 2");
  EXPECT_EQ(error_of([] { base64_decode("data:image/png;base64,Zm9v!", "y"); }), "invalid base64 in y: '!' at offset 26");
  EXPECT_NE(error_of([] { base64_decode("Zg==Zg==", "x"); }).find("after '=' padding"), std::string::npos);
  EXPECT_NE(error_of([] { base64_decode("Zm9vY", "x"); }).find("do not form whole groups"), std::string::npos);
  EXPECT_NE(error_of([] { base64_decode("Zg=", "x"); }).find("do not form whole groups"), std::string::npos);
  EXPECT_NE(error_of([] { base64_decode("Zm9v=", "x"); }).find("do not form whole groups"), std::string::npos);
}

}  // namespace
}  // namespace luminars

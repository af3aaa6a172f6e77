// Generation parameters: the exact text LuminaRS writes, round trips, and real AUTOMATIC1111 texts.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "pipeline/parameters.h"
#include "test_support.h"

namespace luminars {
namespace {

using test::error_of;

GenerationParameters heart() {
  GenerationParameters p;
  p.prompt = "a red heart, noto style";
  p.negative = "blurry";
  p.steps = 12;
  p.sampler = "euler";
  p.cfg_scale = 4;
  p.seed = 1;
  p.width = 64;
  p.height = 64;
  p.model = "emoji";
  p.strength = 0.75;
  p.shift = 1;
  return p;
}

void expect_same(const GenerationParameters& a, const GenerationParameters& b) {
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.negative, b.negative);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.sampler, b.sampler);
  EXPECT_EQ(a.cfg_scale, b.cfg_scale);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.strength, b.strength);
  EXPECT_EQ(a.shift, b.shift);
  EXPECT_EQ(a.first_width, b.first_width);
  EXPECT_EQ(a.first_height, b.first_height);
}

TEST(Parameters, FormatsTheExactText) {
  EXPECT_EQ(format_parameters(heart()),
            "a red heart, noto style\n"
            "Negative prompt: blurry\n"
            "Steps: 12, Sampler: Euler, CFG scale: 4, Seed: 1, Size: 64x64, Model: emoji, Denoising strength: 0.75, "
            "Shift: 1");

  GenerationParameters p;  // defaults: no negative, size, model or strength
  p.prompt = "a cat";
  p.sampler = "heun";
  p.cfg_scale = 7.5;
  p.seed = 18446744073709551615ull;
  p.shift = 3.1;
  EXPECT_EQ(format_parameters(p), "a cat\nSteps: 12, Sampler: Heun, CFG scale: 7.5, Seed: 18446744073709551615, Shift: 3.1");
}

TEST(Parameters, QuotesValuesThatWouldBreakTheLine) {
  GenerationParameters p = heart();
  p.model = "emoji, v2: \"final\"";
  const std::string text = format_parameters(p);
  EXPECT_NE(text.find("Model: \"emoji, v2: \\\"final\\\"\", Denoising"), std::string::npos) << text;
  EXPECT_EQ(parse_parameters(text).model, p.model);
}

TEST(Parameters, RoundTrip) {
  expect_same(parse_parameters(format_parameters(heart())), heart());

  GenerationParameters p;
  p.prompt = "line one\n  line two, indented\n";
  p.negative = "bad\nworse";
  p.steps = 50;
  p.sampler = "heun";
  p.cfg_scale = 0.1 + 0.2;  // 0.30000000000000004 must come back bit for bit
  p.seed = 123456789012345ull;
  p.width = 96;
  p.height = 48;
  p.shift = 2.5;
  expect_same(parse_parameters(format_parameters(p)), p);

  GenerationParameters empty_prompt;
  expect_same(parse_parameters(format_parameters(empty_prompt)), empty_prompt);
}

TEST(Parameters, ReadsARealAutomatic1111Text) {
  const std::string text =
      "masterpiece, best quality,\n"
      "a red heart on a white background, (noto emoji style:1.2)\n"
      "Negative prompt: lowres, bad anatomy,\n"
      "watermark\n"
      "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 3416535712, Size: 512x768, "
      "Model hash: abc123def4, Model: sd_xl_base_1.0, Denoising strength: 0.55, "
      "Lora hashes: \"noto: 1a2b3c, emoji: 4d5e6f\", TI hashes: \"easynegative: c74b4e810b03\", Version: v1.9.4\n";
  const GenerationParameters p = parse_parameters(text);
  EXPECT_EQ(p.prompt, "masterpiece, best quality,\na red heart on a white background, (noto emoji style:1.2)");
  EXPECT_EQ(p.negative, "lowres, bad anatomy,\nwatermark");
  EXPECT_EQ(p.steps, 28);
  EXPECT_EQ(p.sampler, "euler");
  EXPECT_EQ(p.cfg_scale, 7.0);
  EXPECT_EQ(p.seed, 3416535712u);
  EXPECT_EQ(p.width, 512);
  EXPECT_EQ(p.height, 768);
  EXPECT_EQ(p.model, "sd_xl_base_1.0");
  ASSERT_TRUE(p.strength.has_value());
  EXPECT_EQ(*p.strength, 0.55);
  EXPECT_EQ(p.shift, 1.0);  // not in the text: the default

  // CR LF line ends, "HEUN" in capitals, a quoted model name with an escaped quote and a comma.
  const GenerationParameters q =
      parse_parameters("a dog\r\nSteps: 4, Sampler: HEUN, Model: \"my \\\"model\\\", v2\", Seed: 9\r\n");
  EXPECT_EQ(q.prompt, "a dog");
  EXPECT_EQ(q.sampler, "heun");
  EXPECT_EQ(q.model, "my \"model\", v2");
  EXPECT_EQ(q.seed, 9u);
}

TEST(Parameters, TwoPassesAreWrittenAndReadAsAutomatic1111Does) {
  GenerationParameters p = heart();
  p.negative.clear();
  p.width = p.height = 128;
  p.first_width = p.first_height = 64;
  p.strength = 0.4;
  const std::string text = format_parameters(p);
  EXPECT_EQ(text,
            "a red heart, noto style\nSteps: 12, Sampler: Euler, CFG scale: 4, Seed: 1, Size: 64x64, Model: emoji, "
            "Denoising strength: 0.4, Shift: 1, Hires resize: 128x128, Hires upscaler: Bicubic");
  expect_same(parse_parameters(text), p);

  // AUTOMATIC1111's scale factor: the picture is Size × it; its own upscalers are not ours.
  UnreadParameters unread;
  const GenerationParameters a = parse_parameters(
      "x\nSteps: 30, Sampler: Euler, Seed: 42, Size: 512x768, Denoising strength: 0.45, Hires upscale: 1.5, "
      "Hires steps: 10, Hires upscaler: Latent",
      unread);
  EXPECT_EQ(a.first_width, 512);
  EXPECT_EQ(a.first_height, 768);
  EXPECT_EQ(a.width, 768);
  EXPECT_EQ(a.height, 1152);
  EXPECT_EQ(a.strength, 0.45);
  EXPECT_EQ(unread.keys, (std::vector<std::string>{"Hires steps", "Hires upscaler"}));
  // A "hires" pass no larger than the first: one pass, and its strength no image-to-image's.
  const GenerationParameters same = parse_parameters("x\nSteps: 3, Size: 64x64, Denoising strength: 0.5, Hires upscale: 1");
  EXPECT_EQ(same.first_width, 0);
  EXPECT_EQ(same.width, 64);
  EXPECT_FALSE(same.strength.has_value());
  EXPECT_NE(error_of([] { parse_parameters("x\nSteps: 3, Size: 64x64, Hires resize: 128"); }).find("Hires resize is not WxH"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nSteps: 3, Size: 64x64, Hires upscale: 100"); }).find("Hires upscale must be between 1 and 64"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nSteps: 3, Size: 9000000000000000000x64, Hires upscale: 2"); }).find("too large to draw"),
            std::string::npos);
}

TEST(Parameters, MissingKeysKeepTheDefaults) {
  const GenerationParameters p = parse_parameters("only a sampler\nSampler: Euler");
  const GenerationParameters d;
  EXPECT_EQ(p.prompt, "only a sampler");
  EXPECT_EQ(p.steps, d.steps);
  EXPECT_EQ(p.cfg_scale, d.cfg_scale);
  EXPECT_EQ(p.seed, d.seed);
  EXPECT_EQ(p.width, 0);
  EXPECT_FALSE(p.strength.has_value());
  EXPECT_EQ(parse_parameters("Steps: 3").prompt, "");  // the key-value line alone
}

TEST(Parameters, GridSeedsAndMaskBlurRoundTrip) {
  GenerationParameters p = heart();
  p.batch_seeds = {1, 2, 3};
  p.mask_blur = 4;
  const std::string text = format_parameters(p);
  EXPECT_NE(text.find(", Mask blur: 4, Batch size: 3, Seeds: 1 2 3"), std::string::npos) << text;
  const GenerationParameters q = parse_parameters(text);
  EXPECT_EQ(q.batch_seeds, p.batch_seeds);
  EXPECT_EQ(q.mask_blur, p.mask_blur);
  // AUTOMATIC1111's grids: Seed and Batch size, the pictures at Seed + i.
  EXPECT_EQ(parse_parameters("x\nSteps: 2, Seed: 10, Batch size: 3").batch_seeds, (std::vector<uint64_t>{10, 11, 12}));
  EXPECT_TRUE(parse_parameters("x\nSteps: 2, Seed: 10, Batch size: 1").batch_seeds.empty());
  EXPECT_NE(error_of([] { parse_parameters("x\nSeeds: 1 two"); }).find("Seeds is not a valid number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nBatch size: 0"); }).find("Batch size must be between 1 and 64"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nMask blur: -1"); }).find("Mask blur must be between 0 and 256"), std::string::npos);
}

TEST(Parameters, LenientReadingNamesWhatItCannotTake) {
  UnreadParameters unread;
  const auto p = parse_parameters("a cat\nSteps: 20, Sampler: DPM++ 2M Karras, Schedule type: Karras, Seed: 1, Model hash: abc", unread);
  EXPECT_EQ(unread.sampler, "DPM++ 2M Karras");
  EXPECT_EQ(p.sampler, "euler");  // the default, left for --sampler to replace
  EXPECT_EQ(unread.keys, (std::vector<std::string>{"Schedule type", "Model hash"}));
  EXPECT_FALSE(unread.ancestral);
  parse_parameters("a cat\nSampler: Euler a", unread);
  EXPECT_TRUE(unread.ancestral);
  EXPECT_TRUE(unread.sampler.empty());
}

TEST(Parameters, NonFiniteNumbersAreRefused) {
  EXPECT_EQ(error_of([] { parse_parameters("x\nCFG scale: nan"); }), "generation parameters: CFG scale is not a finite number: \"nan\"");
  EXPECT_NE(error_of([] { parse_parameters("x\nShift: inf"); }).find("Shift is not a finite number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nDenoising strength: -inf"); }).find("not a finite number"), std::string::npos);
}

TEST(Parameters, ClearErrors) {
  EXPECT_EQ(error_of([] { parse_parameters("Steps: 20, Sampler: DPM++ 2M Karras, Seed: 1"); }),
            "generation parameters: unsupported sampler \"DPM++ 2M Karras\" (LuminaRS samples with Euler or Heun)");
  EXPECT_EQ(error_of([] { parse_parameters(""); }), "generation parameters are empty");
  EXPECT_EQ(error_of([] { parse_parameters(" \n\n"); }), "generation parameters are empty");
  EXPECT_EQ(error_of([] { parse_parameters("a red heart, noto style"); }),
            "generation parameters have no \"Steps: …, Sampler: …\" line (the last line reads \"a red heart, noto style\")");
  EXPECT_NE(error_of([] { parse_parameters("a cat\nstyle: anime"); }).find("no \"Steps"), std::string::npos);
  EXPECT_EQ(error_of([] { parse_parameters("x\nSteps: many"); }),
            "generation parameters: Steps is not a valid number: \"many\"");
  EXPECT_NE(error_of([] { parse_parameters("x\nSeed: -1"); }).find("Seed is not a valid number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nSize: 512"); }).find("Size is not WxH"), std::string::npos);
  EXPECT_NE(error_of([] { parse_parameters("x\nSteps: 0"); }).find("Steps must be positive"), std::string::npos);
  GenerationParameters p;
  p.sampler = "ddim";
  EXPECT_NE(error_of([&] { format_parameters(p); }).find("unknown sampler \"ddim\""), std::string::npos);
}

}  // namespace
}  // namespace luminars

// The `parameters` text AUTOMATIC1111 writes into PNGs (prompt, "Negative prompt: …" and one
// "Key: value, …" line), written for LuminaRS pictures and read back from either program.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace luminars {

struct GenerationParameters {
  std::string prompt, negative;       // negative "" = no "Negative prompt:" line
  int64_t steps = 12;
  std::string sampler = "euler";      // "euler" | "heun" (written "Euler" | "Heun")
  double cfg_scale = 4;               // "CFG scale"
  uint64_t seed = 0;
  int64_t width = 0, height = 0;      // "Size: WxH"; 0 = not written / not given
  std::string model;                  // "" = not written
  std::optional<double> strength;     // "Denoising strength": image-to-image's, or the second pass's
  // Two passes (hires fix): the first pass's size; 0 = one pass. Written as AUTOMATIC1111 writes
  // them: "Size" is the first pass's, "Hires resize: WxH" the picture's (width, height above).
  int64_t first_width = 0, first_height = 0;
  double shift = 1.0;                 // "Shift": the time shift of the sampling schedule
  std::optional<int64_t> mask_blur;   // "Mask blur", inpainting only
  // A grid of several pictures: "Batch size: 4, Seeds: 3 4 5 6" (Seed is the first picture's).
  // Empty for one picture.
  std::vector<uint64_t> batch_seeds;
  // "Lora hashes: \"name: 1a2b3c4d5e6f, …\"" (AUTOMATIC1111's key): the LoRAs the prompt's
  // <lora:NAME:WEIGHT> tags applied, each with the first 12 hex digits of its file's SHA-256.
  std::vector<std::pair<std::string, std::string>> lora_hashes;
};

// What the lenient parse_parameters below could not take from a text.
struct UnreadParameters {
  std::string sampler;            // a sampler LuminaRS lacks, as written ("DPM++ 2M Karras"); "" if none
  bool ancestral = false;         // "Euler a": read as euler, which adds no fresh noise at each step
  std::vector<std::string> keys;  // keys LuminaRS has no setting for ("Schedule type", "Model hash")
};

// The text, e.g.
//   a red heart, noto style
//   Negative prompt: blurry
//   Steps: 12, Sampler: Euler, CFG scale: 4, Seed: 1, Size: 64x64, Model: emoji, Denoising strength: 0.75, Shift: 1
// (then "Mask blur: 4" for inpainting, "Batch size: 2, Seeds: 1 2" for a grid; two passes write
// "Size: 64x64, …, Denoising strength: 0.4, …, Hires resize: 128x128, Hires upscaler: Bicubic").
// Numbers in their shortest exact form (4, 7.5, 0.75); values holding ',' ':' '"' or a line break
// are JSON-quoted, as AUTOMATIC1111 does. Throws luminars::Error on a sampler other than euler/heun.
std::string format_parameters(const GenerationParameters& parameters);

// Reads format_parameters' text and AUTOMATIC1111's: the prompt may span lines, the last line holds
// the "Key: value" pairs (values possibly "quoted", unknown keys ignored, missing keys keep the
// defaults); samplers "Euler" and "Euler a" read as euler, "Heun" as heun (any case); "Hires
// resize: WxH" or "Hires upscale: F" make the picture's size that (or Size × F) and Size the first
// pass's (another "Hires upscaler" than Bicubic is listed as unread). Throws
// luminars::Error on an empty text, a missing key-value line, another sampler or a bad number
// (non-finite ones included). "Batch size: N" without "Seeds" reads as N seeds from Seed on.
GenerationParameters parse_parameters(const std::string& text);

// As above, but a sampler LuminaRS lacks is left in `unread.sampler` (the result keeps the default
// sampler) instead of refused; unknown keys are listed in `unread.keys`.
GenerationParameters parse_parameters(const std::string& text, UnreadParameters& unread);

}  // namespace luminars

#include "cli_validators.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <random>

#include "core/error.h"
#include "core/image_file.h"

namespace luminars::cli {

const CLI::Validator& finite_number() {
  static const CLI::Validator v(
      [](std::string& input) -> std::string {
        char* end = nullptr;
        const double x = std::strtod(input.c_str(), &end);
        if (end == input.c_str()) return "";  // not a number at all: the option's own conversion says so
        if (!std::isfinite(x)) return input + " is not a finite number";
        return "";
      },
      "", "finite");  // no description: the help keeps showing the option's own type
  return v;
}

void refuse_non_finite_numbers(CLI::App& app) {
  for (CLI::Option* opt : app.get_options())
    if (opt->get_type_name().starts_with("FLOAT")) opt->check(finite_number());  // "FLOAT:…" with validators
  for (CLI::App* sub : app.get_subcommands({})) refuse_non_finite_numbers(*sub);
}

std::optional<uint64_t> parse_seed(const std::string& text, const std::string& what) {
  if (text == "-1") return std::nullopt;
  const std::string rule = "seeds are whole numbers from 0 to " + std::to_string(kMaxSeed) + ", or -1 for a random one";
  uint64_t seed = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, seed);
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (digits && (ec == std::errc::result_out_of_range || (ec == std::errc() && seed > kMaxSeed)))
    throw Error(what + " " + text + " is too large: " + rule + " (the noise generator keeps 32 bits of a seed)");
  if (!digits || ec != std::errc() || ptr != end) throw Error(what + " " + text + ": " + rule);
  return seed;
}

namespace {

// What is wrong with a seed as typed, for CLI11; "" when it is a valid one.
std::string seed_problem(const std::string& input) {
  try {
    parse_seed(input, "");
  } catch (const Error& e) {
    std::string message = e.what();
    return message.substr(message.find_first_not_of(' '));
  }
  return "";
}

}  // namespace

const CLI::Validator& seed_value() {
  static const CLI::Validator v(
      [](std::string& input) -> std::string { return seed_problem(input); }, "SEED", "seed");
  return v;
}

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32 | device()) >> 33;
}

void check_seed_range(uint64_t first, int64_t batch, const std::string& what) {
  if (first > kMaxSeed) throw Error(what + " " + std::to_string(first) + " is too large: seeds go from 0 to " + std::to_string(kMaxSeed));
  if (batch > 1 && first + static_cast<uint64_t>(batch - 1) > kMaxSeed)
    throw Error(what + " " + std::to_string(first) + " with a batch of " + std::to_string(batch) + ": the last picture would need seed " +
                std::to_string(first + static_cast<uint64_t>(batch - 1)) + ", past the largest, " + std::to_string(kMaxSeed));
}

const CLI::Validator& fixed_seed() {
  static const CLI::Validator v(
      [](std::string& input) -> std::string {
        if (input == "-1") return "-1 (random) is not accepted here: give a seed from 0 to " + std::to_string(kMaxSeed);
        return seed_problem(input);
      },
      "", "fixed seed");
  return v;
}

const CLI::Validator& image_file_name() {
  static const CLI::Validator v(
      [](std::string& input) -> std::string {
        try {
          image_format_for(input);
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "FILE(.png|.jpg)", "image file name");
  return v;
}

}  // namespace luminars::cli

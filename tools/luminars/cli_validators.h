// Checks the command line applies before anything runs: finite numbers, seeds, image sides and
// output file names, each refusal one line naming the flag and the value.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace luminars::cli {

// Refuses NaN and infinities ("--cfg: nan is not a finite number").
const CLI::Validator& finite_number();

// Adds finite_number() to every floating-point option of `app` and of all its subcommands
// (CLI11 names their type FLOAT), so no subcommand can forget it. Call after registering them.
void refuse_non_finite_numbers(CLI::App& app);

// The noise generator (LibTorch's mt19937) keeps 32 bits of a seed: larger seeds would repeat
// smaller ones' pictures, so seeds go from 0 to this.
inline constexpr uint64_t kMaxSeed = 4294967295u;

// A seed as typed: -1 (random) or a whole number from 0 to kMaxSeed.
const CLI::Validator& seed_value();
// A seed where a run must be repeatable (training): 0 to kMaxSeed.
const CLI::Validator& fixed_seed();
// The seed `text` names; nullopt for -1 (random). Throws luminars::Error naming `what` otherwise.
std::optional<uint64_t> parse_seed(const std::string& text, const std::string& what = "--seed");
// A fresh seed for -1 or no seed: 31 bits, as the server picks them.
uint64_t random_seed();
// Picture i of a batch uses first + i: throws naming `what` when the last would pass kMaxSeed.
void check_seed_range(uint64_t first, int64_t batch, const std::string& what);

// An output picture's file name: .png, .jpg or .jpeg (core/image_file.h).
const CLI::Validator& image_file_name();

}  // namespace luminars::cli

// "Did you mean …?" for a misspelled subcommand or option, by edit distance over the names the
// CLI11 app knows.
#pragma once
#include <CLI/CLI.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace luminars::cli {

// Insertions, deletions, substitutions and swaps of neighbours, one each.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest `word` when it is near enough to be a slip of the keyboard (at most a
// third of its letters, and at least one, changed); "" otherwise.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// Why CLI11 refused `args` (the arguments after the program's name) when a word is no subcommand
// or a flag no option: "unknown command 'generte'; did you mean 'generate'?", "unknown option
// '--sed' for 'generate'; did you mean '--seed'?". "" when every name is known.
std::string explain_unknown_names(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace luminars::cli

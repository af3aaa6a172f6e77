#include "model/config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_fields.h"

namespace luminars {

namespace {

void check(bool ok, const std::string& message) {
  if (!ok) throw Error("invalid config: " + message);
}

std::string str(int64_t v) { return std::to_string(v); }

// Upper bounds far above any real model, so absurd values are named here, not by the allocator.
void at_most(int64_t v, int64_t limit, const std::string& name) {
  check(v <= limit, name + " = " + str(v) + " is above the limit of " + str(limit));
}

}  // namespace

void Config::validate() const {
  check(latent_channels > 0, "latent_channels must be positive, got " + str(latent_channels));
  check(!widths.empty(), "widths must not be empty");
  check(widths.size() <= 8, "at most 8 levels, got " + str(levels()));
  check(widths.size() == depths.size(), "widths has " + str(widths.size()) + " entries but depths has " +
                                            str(depths.size()));
  check(head_dim > 0, "head_dim must be positive, got " + str(head_dim));
  for (std::size_t i = 0; i < widths.size(); ++i) {
    check(widths[i] > 0, "widths[" + str(i) + "] must be positive, got " + str(widths[i]));
    check(widths[i] % head_dim == 0,
          "widths[" + str(i) + "] = " + str(widths[i]) + " is not divisible by head_dim " + str(head_dim));
    check(depths[i] >= 0, "depths[" + str(i) + "] must not be negative, got " + str(depths[i]));
  }
  check(mid_depth >= 0, "mid_depth must not be negative, got " + str(mid_depth));
  check(embed_dim > 0, "embed_dim must be positive, got " + str(embed_dim));
  check(text_dim > 0, "text_dim must be positive, got " + str(text_dim));
  check(max_recursions >= 1, "max_recursions must be at least 1, got " + str(max_recursions));
  check(recursions >= 1 && recursions <= max_recursions,
        "recursions = " + str(recursions) + " must be between 1 and max_recursions = " + str(max_recursions));
  check(freq_dim >= 2 && freq_dim % 2 == 0, "freq_dim must be a positive even number, got " + str(freq_dim));
  at_most(latent_channels, 1024, "latent_channels");
  for (std::size_t i = 0; i < widths.size(); ++i) {
    at_most(widths[i], 16384, "widths[" + str(i) + "]");
    at_most(depths[i], 64, "depths[" + str(i) + "]");
  }
  at_most(mid_depth, 64, "mid_depth");
  at_most(head_dim, 4096, "head_dim");
  at_most(embed_dim, 16384, "embed_dim");
  at_most(text_dim, 16384, "text_dim");
  at_most(max_recursions, 64, "max_recursions");
  at_most(freq_dim, 16384, "freq_dim");
}

void Config::validate_latent_size(int64_t height, int64_t width) const {
  const int64_t m = size_multiple();
  if (height <= 0 || width <= 0 || height % m != 0 || width % m != 0)
    throw Error("latent size " + str(height) + "x" + str(width) + " is not divisible by 2^(levels-1) = " + str(m) +
                " (" + str(levels()) + " levels)");
}

std::string Config::to_json(int indent) const {
  nlohmann::ordered_json j;
  j["latent_channels"] = latent_channels;
  j["widths"] = widths;
  j["depths"] = depths;
  j["mid_depth"] = mid_depth;
  j["embed_dim"] = embed_dim;
  j["text_dim"] = text_dim;
  j["head_dim"] = head_dim;
  j["recursions"] = recursions;
  j["max_recursions"] = max_recursions;
  j["freq_dim"] = freq_dim;
  return j.dump(indent);
}

Config Config::from_json(const std::string& text) {
  nlohmann::json j = json_fields::parse(text, "config");
  if (!j.is_object()) throw Error("invalid config: not a JSON object");
  Config c;
  auto int_field = [&](const char* name, int64_t& dst) {
    if (!j.contains(name)) return;
    check(j[name].is_number_integer(), std::string(name) + " must be an integer");
    dst = j[name].get<int64_t>();
  };
  auto list_field = [&](const char* name, std::vector<int64_t>& dst) {
    if (!j.contains(name)) return;
    check(j[name].is_array(), std::string(name) + " must be a list of integers");
    dst.clear();
    for (const auto& v : j[name]) {
      check(v.is_number_integer(), std::string(name) + " must be a list of integers");
      dst.push_back(v.get<int64_t>());
    }
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"latent_channels", "widths", "depths", "mid_depth", "embed_dim",
                                  "text_dim", "head_dim", "recursions", "max_recursions", "freq_dim"};
    bool ok = false;
    for (auto* k : known) ok = ok || it.key() == k;
    check(ok, "unknown field '" + it.key() + "'");
  }
  int_field("latent_channels", c.latent_channels);
  list_field("widths", c.widths);
  list_field("depths", c.depths);
  int_field("mid_depth", c.mid_depth);
  int_field("embed_dim", c.embed_dim);
  int_field("text_dim", c.text_dim);
  int_field("head_dim", c.head_dim);
  int_field("recursions", c.recursions);
  int_field("max_recursions", c.max_recursions);
  int_field("freq_dim", c.freq_dim);
  c.validate();
  return c;
}

Config Config::from_file(const std::string& path) {
  try {
    return from_json(read_file(path));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<std::string> Config::preset_names() { return {"default", "small", "tiny"}; }

Config Config::preset(const std::string& name) {
  Config c;  // "default": the ~89M-parameter model of DESIGN §2
  if (name == "default") return c;
  if (name == "small") {  // 9.2M parameters: CPU training and experiments, CLIP-L sized text
    c.widths = {64, 128, 256};
    c.depths = {1, 1, 2};
    c.mid_depth = 1;
    c.embed_dim = 256;
    c.head_dim = 32;
    c.max_recursions = 4;
    c.freq_dim = 128;
    return c;
  }
  if (name == "tiny") {  // TINY of the reference: parity fixtures and fast tests
    c.latent_channels = 4;
    c.widths = {32, 64};
    c.depths = {1, 1};
    c.mid_depth = 1;
    c.embed_dim = 48;
    c.text_dim = 40;
    c.head_dim = 16;
    c.recursions = 2;
    c.max_recursions = 4;
    c.freq_dim = 32;
    return c;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown preset '" + name + "' (known: " + names + ")");
}

}  // namespace luminars

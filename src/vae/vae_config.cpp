#include "vae/vae_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_fields.h"

namespace luminars {

namespace {

constexpr const char* kDownBlock = "DownEncoderBlock2D";
constexpr const char* kUpBlock = "UpDecoderBlock2D";

void check(bool ok, const std::string& message) {
  if (!ok) throw Error("invalid VAE config: " + message);
}

std::string str(int64_t v) { return std::to_string(v); }

// Upper bounds far above any real VAE, so absurd values are named here, not by the allocator.
void at_most(int64_t v, int64_t limit, const std::string& name) {
  check(v <= limit, name + " = " + str(v) + " is above the limit of " + str(limit));
}

}  // namespace

void VaeConfig::validate() const {
  check(in_channels > 0, "in_channels must be positive, got " + str(in_channels));
  check(out_channels > 0, "out_channels must be positive, got " + str(out_channels));
  check(latent_channels > 0, "latent_channels must be positive, got " + str(latent_channels));
  check(norm_num_groups > 0, "norm_num_groups must be positive, got " + str(norm_num_groups));
  check(!block_out_channels.empty(), "block_out_channels must not be empty");
  check(block_out_channels.size() <= 8, "block_out_channels: at most 8 levels, got " + str(levels()));
  for (std::size_t i = 0; i < block_out_channels.size(); ++i) {
    const int64_t c = block_out_channels[i];
    check(c > 0, "block_out_channels[" + str(i) + "] must be positive, got " + str(c));
    check(c % norm_num_groups == 0, "block_out_channels[" + str(i) + "] = " + str(c) +
                                        " is not divisible by norm_num_groups = " + str(norm_num_groups));
  }
  check(layers_per_block >= 1, "layers_per_block must be at least 1, got " + str(layers_per_block));
  at_most(in_channels, 64, "in_channels");
  at_most(out_channels, 64, "out_channels");
  at_most(latent_channels, 1024, "latent_channels");
  at_most(norm_num_groups, 1024, "norm_num_groups");
  for (std::size_t i = 0; i < block_out_channels.size(); ++i) at_most(block_out_channels[i], 16384, "block_out_channels[" + str(i) + "]");
  at_most(layers_per_block, 64, "layers_per_block");
  check(act_fn == "silu" || act_fn == "swish",
        "act_fn '" + act_fn + "' is not supported (only \"silu\")");
  check(std::isfinite(scaling_factor) && scaling_factor != 0.0,
        "scaling_factor must be a finite non-zero number, got " + std::to_string(scaling_factor));
  check(std::isfinite(shift_factor), "shift_factor must be finite, got " + std::to_string(shift_factor));
}

std::string VaeConfig::to_json(int indent) const {
  nlohmann::ordered_json j;
  j["_class_name"] = "AutoencoderKL";
  j["in_channels"] = in_channels;
  j["out_channels"] = out_channels;
  j["down_block_types"] = std::vector<std::string>(block_out_channels.size(), kDownBlock);
  j["up_block_types"] = std::vector<std::string>(block_out_channels.size(), kUpBlock);
  j["block_out_channels"] = block_out_channels;
  j["layers_per_block"] = layers_per_block;
  j["act_fn"] = act_fn;
  j["latent_channels"] = latent_channels;
  j["norm_num_groups"] = norm_num_groups;
  j["scaling_factor"] = scaling_factor;
  j["shift_factor"] = shift_factor;
  j["use_quant_conv"] = use_quant_conv;
  j["use_post_quant_conv"] = use_post_quant_conv;
  j["mid_block_add_attention"] = mid_block_add_attention;
  return j.dump(indent);
}

VaeConfig VaeConfig::from_json(const std::string& text) {
  nlohmann::json j = json_fields::parse(text, "VAE config");
  check(j.is_object(), "not a JSON object");
  VaeConfig c;
  auto int_field = [&](const char* name, int64_t& dst) {
    if (!j.contains(name)) return;
    check(j[name].is_number_integer(), std::string(name) + " must be an integer");
    dst = j[name].get<int64_t>();
  };
  auto bool_field = [&](const char* name, bool& dst) {
    if (!j.contains(name)) return;
    check(j[name].is_boolean(), std::string(name) + " must be true or false");
    dst = j[name].get<bool>();
  };
  auto number_field = [&](const char* name, double& dst, bool null_is_zero) {
    if (!j.contains(name)) return;
    if (null_is_zero && j[name].is_null()) {
      dst = 0.0;
      return;
    }
    check(j[name].is_number(), std::string(name) + " must be a number");
    dst = j[name].get<double>();
  };
  auto block_types = [&](const char* name, const char* expected) {
    if (!j.contains(name)) return std::vector<std::string>{};
    check(j[name].is_array(), std::string(name) + " must be a list of strings");
    std::vector<std::string> out;
    for (const auto& v : j[name]) {
      check(v.is_string(), std::string(name) + " must be a list of strings");
      out.push_back(v.get<std::string>());
      check(out.back() == expected, std::string(name) + "[" + str(out.size() - 1) + "] is '" + out.back() +
                                        "'; only " + expected + " is supported");
    }
    return out;
  };

  if (j.contains("_class_name"))
    check(j["_class_name"].is_string() && j["_class_name"].get<std::string>() == "AutoencoderKL",
          "_class_name is " + json_fields::brief(j["_class_name"]) + ", expected \"AutoencoderKL\"");
  int_field("in_channels", c.in_channels);
  int_field("out_channels", c.out_channels);
  if (j.contains("block_out_channels")) {
    const auto& v = j["block_out_channels"];
    check(v.is_array(), "block_out_channels must be a list of integers");
    c.block_out_channels.clear();
    for (const auto& e : v) {
      check(e.is_number_integer(), "block_out_channels must be a list of integers");
      c.block_out_channels.push_back(e.get<int64_t>());
    }
  }
  int_field("layers_per_block", c.layers_per_block);
  int_field("latent_channels", c.latent_channels);
  int_field("norm_num_groups", c.norm_num_groups);
  if (j.contains("act_fn")) {
    check(j["act_fn"].is_string(), "act_fn must be a string");
    c.act_fn = j["act_fn"].get<std::string>();
  }
  bool_field("use_quant_conv", c.use_quant_conv);
  bool_field("use_post_quant_conv", c.use_post_quant_conv);
  bool_field("mid_block_add_attention", c.mid_block_add_attention);
  number_field("scaling_factor", c.scaling_factor, /*null_is_zero=*/false);
  number_field("shift_factor", c.shift_factor, /*null_is_zero=*/true);
  // diffusers' defaults are one block type each; a config naming them must name one per level.
  auto down = block_types("down_block_types", kDownBlock);
  auto up = block_types("up_block_types", kUpBlock);
  check(!j.contains("down_block_types") || down.size() == c.block_out_channels.size(),
        "down_block_types has " + str(down.size()) + " entries but block_out_channels has " +
            str(c.block_out_channels.size()));
  check(!j.contains("up_block_types") || up.size() == c.block_out_channels.size(),
        "up_block_types has " + str(up.size()) + " entries but block_out_channels has " +
            str(c.block_out_channels.size()));
  c.validate();
  return c;
}

VaeConfig VaeConfig::from_file(const std::string& path) {
  try {
    return from_json(read_file(path));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<std::string> VaeConfig::preset_names() { return {"sd3", "flux", "sd"}; }

VaeConfig VaeConfig::preset(const std::string& name) {
  VaeConfig c;
  c.block_out_channels = {128, 256, 512, 512};
  c.layers_per_block = 2;
  c.norm_num_groups = 32;
  if (name == "sd3" || name == "flux") {  // 16 latent channels, no quant convs
    c.latent_channels = 16;
    c.use_quant_conv = false;
    c.use_post_quant_conv = false;
    c.scaling_factor = name == "sd3" ? 1.5305 : 0.3611;
    c.shift_factor = name == "sd3" ? 0.0609 : 0.1159;
    return c;
  }
  if (name == "sd") {  // 4 latent channels, quant convs, SD 1.x/2.x scaling
    c.latent_channels = 4;
    c.scaling_factor = 0.18215;
    return c;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown VAE preset '" + name + "' (known: " + names + ")");
}

}  // namespace luminars

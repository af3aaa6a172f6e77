#include "vae/vae.h"

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_fields.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

class AutoencoderKLVae : public Vae {
 public:
  explicit AutoencoderKLVae(AutoencoderKL model) : model_(std::move(model)) {}
  VaePosterior encode(const torch::Tensor& images) override { return model_->encode(images); }
  torch::Tensor decode(const torch::Tensor& latents) override { return model_->decode(latents); }
  int64_t downscale_factor() const override { return model_->downscale_factor(); }
  int64_t latent_channels() const override { return model_->config().latent_channels; }
  double scaling_factor() const override { return model_->config().scaling_factor; }
  double shift_factor() const override { return model_->config().shift_factor; }
  std::string class_name() const override { return "AutoencoderKL"; }

 private:
  AutoencoderKL model_;
};

struct VaeClass {
  std::function<VaeGeometry(const std::string& config_path)> geometry;
  std::function<std::unique_ptr<Vae>(const std::string& dir, const VaeLoadOptions&)> load;
};

const std::map<std::string, VaeClass>& classes() {
  static const std::map<std::string, VaeClass> known{
      {"AutoencoderKL",
       {[](const std::string& path) {
          const auto c = VaeConfig::from_file(path);
          return VaeGeometry{"AutoencoderKL", c.downscale_factor(), c.latent_channels, c.scaling_factor, c.shift_factor};
        },
        [](const std::string& dir, const VaeLoadOptions& o) -> std::unique_ptr<Vae> {
          return std::make_unique<AutoencoderKLVae>(AutoencoderKL::from_dir(dir, o));
        }}}};
  return known;
}

// The class a folder's config.json names (diffusers' `_class_name`; AutoencoderKL when absent).
const VaeClass& class_of(const std::string& dir, std::string* name_out = nullptr) {
  const auto path = (fs::path(dir) / "config.json").string();
  if (!fs::is_directory(dir)) throw Error("VAE folder not found: " + dir);
  if (!fs::exists(path)) throw Error(path + ": file not found (VAE config)");
  std::string name = "AutoencoderKL";
  try {
    const auto j = json_fields::parse(read_file(path), path);
    if (!j.is_object()) throw Error(path + ": expected a JSON object");
    if (j.contains("_class_name")) {
      if (!j["_class_name"].is_string()) throw Error(path + ": _class_name must be a string");
      name = j["_class_name"].get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON (" + e.what() + ")");
  }
  auto it = classes().find(name);
  if (it == classes().end()) {
    std::string known;
    for (const auto& n : vae_class_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error(path + ": VAE class '" + name.substr(0, 80) + "' is not supported (known: " + known + ")");
  }
  if (name_out) *name_out = name;
  return it->second;
}

}  // namespace

std::vector<std::string> vae_class_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : classes()) names.push_back(name);
  return names;
}

VaeGeometry read_vae_geometry(const std::string& dir) {
  return class_of(dir).geometry((fs::path(dir) / "config.json").string());
}

std::unique_ptr<Vae> load_vae(const std::string& dir, const VaeLoadOptions& options) { return class_of(dir).load(dir, options); }

std::unique_ptr<Vae> make_vae(AutoencoderKL model) { return std::make_unique<AutoencoderKLVae>(std::move(model)); }

}  // namespace luminars

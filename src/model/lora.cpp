#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/streamed_weights.h"

namespace luminars {

namespace {

void add_block(std::vector<LoraTarget>& t, const std::string& p, Block& b) {
  auto& a = b->attn;
  t.push_back({p + "ada", "ada", b->ada->weight, &b->ada_lora});
  t.push_back({p + "mlp_in", "mlp", b->mlp_in->weight, &b->mlp_in_lora});
  t.push_back({p + "mlp_out", "mlp", b->mlp_out->weight, &b->mlp_out_lora});
  t.push_back({p + "attn.q", "attn", a->q->weight, &a->q_lora});
  t.push_back({p + "attn.kv", "attn", a->kv->weight, &a->kv_lora});
  t.push_back({p + "attn.out", "attn", a->out->weight, &a->out_lora});
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}
std::string shape_text(const torch::Tensor& t) { return shape_text(quant::loaded_shape(t)); }

// Throws naming the file and tensor when A [r,in] / B [out,r] do not fit a layer whose weight has
// `shape` ([out,in] or [out,in,1,1]), or their rank exceeds the layer's.
void check_fits(const std::string& source, const std::string& path, const std::pair<torch::Tensor, torch::Tensor>& ab,
                const std::vector<int64_t>& shape) {
  const auto& [a, b] = ab;
  const int64_t out = shape.at(0), in = shape.size() > 1 ? shape[1] : -1;
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != in || b.size(0) != out || a.size(0) != b.size(1))
    throw Error(source + ": tensors " + path + ".lora_A/B.weight " + shape_text(a) + "/" + shape_text(b) +
                " do not fit the layer's weight " + shape_text(shape));
  if (a.size(0) > std::min(in, out))
    throw Error(source + ": tensor " + path + ".lora_A.weight has rank " + std::to_string(a.size(0)) + ", larger than its layer (" +
                std::to_string(out) + "x" + std::to_string(in) + ")");
}

}  // namespace

int64_t LoraTarget::in_features() const { return quant::loaded_shape(weight).at(1); }
int64_t LoraTarget::out_features() const { return quant::loaded_shape(weight).at(0); }

const std::vector<std::string>& lora_target_groups() {
  static const std::vector<std::string> groups{"attn", "mlp", "ada", "conv", "text"};
  return groups;
}

std::vector<std::string> default_lora_groups() { return {"attn", "mlp"}; }

std::vector<LoraTarget> lora_targets(LuminaRS& model) {
  std::vector<LoraTarget> t;
  auto& u = model->unet;
  for (std::size_t i = 0; i < u->down.size(); ++i)
    for (std::size_t j = 0; j < u->down[i]->block_list.size(); ++j)
      add_block(t, "unet.down." + std::to_string(i) + ".blocks." + std::to_string(j) + ".", u->down[i]->block_list[j]);
  for (std::size_t j = 0; j < u->mid->block_list.size(); ++j)
    add_block(t, "unet.mid.blocks." + std::to_string(j) + ".", u->mid->block_list[j]);
  t.push_back({"unet.mid.attn.in_proj", "attn", u->mid->attn->in_proj_weight, &u->mid->attn->in_proj_lora});
  t.push_back({"unet.mid.attn.out_proj", "attn", u->mid->attn->out_proj->weight, &u->mid->attn->out_proj_lora});
  for (std::size_t i = 0; i < u->up.size(); ++i) {
    const std::string p = "unet.up." + std::to_string(i) + ".";
    t.push_back({p + "skip", "conv", u->up[i]->skip->weight, &u->up[i]->skip_lora});
    for (std::size_t j = 0; j < u->up[i]->block_list.size(); ++j)
      add_block(t, p + "blocks." + std::to_string(j) + ".", u->up[i]->block_list[j]);
  }
  t.push_back({"unet.out", "conv", u->out->weight, &u->out_lora});
  return t;
}

bool is_text_lora_path(const std::string& path) { return path.rfind(kTextLoraPrefix, 0) == 0; }

std::vector<LoraTarget> select_lora_targets(const std::vector<LoraTarget>& targets, const std::vector<std::string>& groups) {
  const auto& known = lora_target_groups();
  for (const auto& g : groups)
    if (std::find(known.begin(), known.end(), g) == known.end())
      throw Error("unknown LoRA target group '" + g + "' (known: attn, mlp, ada, conv, text)");
  std::vector<LoraTarget> out;
  for (const auto& t : targets)
    if (std::find(groups.begin(), groups.end(), t.group) != groups.end()) out.push_back(t);
  return out;
}

std::vector<LoraTarget> lora_targets(LuminaRS& model, const std::vector<std::string>& groups) {
  return select_lora_targets(lora_targets(model), groups);
}

LoraLayerImpl::LoraLayerImpl(int64_t in, int64_t out, int64_t rank) {
  lora_A = register_parameter("lora_A", torch::empty({rank, in}));
  lora_B = register_parameter("lora_B", torch::zeros({out, rank}));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));  // nn.Linear's initialisation, as PEFT
}

LoraNetworkImpl::LoraNetworkImpl(LuminaRS& model, const LoraSettings& s) : LoraNetworkImpl(lora_targets(model), s) {}

LoraNetworkImpl::LoraNetworkImpl(const std::vector<LoraTarget>& targets, const LoraSettings& s) : settings(s) {
  if (s.rank < 1) throw Error("LoRA rank must be at least 1, got " + std::to_string(s.rank));
  if (!(std::isfinite(s.alpha) && s.alpha > 0)) throw Error("LoRA alpha must be a positive number");
  if (!(s.dropout >= 0 && s.dropout < 1)) throw Error("LoRA dropout must be in [0, 1)");
  if (s.groups.empty()) throw Error("no LoRA target groups given");
  const auto chosen = select_lora_targets(targets, s.groups);
  if (chosen.empty()) throw Error("no layer of the model is in the LoRA target groups given");
  for (const auto& t : chosen) {
    const int64_t limit = std::min(t.in_features(), t.out_features());
    if (s.rank > limit)
      throw Error("LoRA rank " + std::to_string(s.rank) + " is larger than layer " + t.path + " (" +
                  std::to_string(t.out_features()) + "x" + std::to_string(t.in_features()) + ")");
    paths.push_back(t.path);
    layer_list.emplace_back(t.in_features(), t.out_features(), s.rank);
    layers->push_back(layer_list.back());
  }
  register_module("layers", layers);
}

LoraTensors lora_tensors(const LoraNetwork& network) {
  LoraTensors out;
  out.rank = network->settings.rank;
  out.alpha = network->settings.alpha;
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < network->paths.size(); ++i) {
    auto& l = network->layer_list[i];
    out.layers[network->paths[i]] = {l->lora_A.detach().to(torch::kCPU, torch::kFloat32).clone(),
                                     l->lora_B.detach().to(torch::kCPU, torch::kFloat32).clone()};
  }
  return out;
}

LoraTensors lora_part(const LoraTensors& lora, bool text) {
  LoraTensors out;
  out.rank = lora.rank;
  out.alpha = lora.alpha;
  for (const auto& [path, ab] : lora.layers)
    if (is_text_lora_path(path) == text) out.layers.emplace(path, ab);
  return out;
}

void attach_lora(LuminaRS& model, const LoraTensors& lora, double weight, const std::string& source) {
  attach_lora(lora_targets(model), lora, weight, source);
}

void attach_lora(LuminaRS& model, LoraNetwork& network, double weight) { attach_lora(lora_targets(model), network, weight); }

void attach_lora(const std::vector<LoraTarget>& targets, const LoraTensors& lora, double weight, const std::string& source) {
  if (!std::isfinite(weight)) throw Error(source + ": LoRA weight must be finite");
  if (lora.rank < 1) throw Error(source + ": LoRA rank must be at least 1");
  std::map<std::string, LoraTarget> by_path;
  for (const auto& t : targets) by_path.emplace(t.path, t);
  // Every check first, so a refused file leaves the model as it was.
  for (const auto& [path, ab] : lora.layers) {
    auto it = by_path.find(path);
    if (it == by_path.end()) throw Error(source + ": tensor " + path + ".lora_A.weight names a module the model lacks");
    check_fits(source, path, ab, quant::loaded_shape(it->second.weight));
  }
  const double scale = lora.alpha / static_cast<double>(lora.rank) * weight;
  for (const auto& [path, ab] : lora.layers) {
    const auto& t = by_path.at(path);
    t.slot->add({ab.first.to(t.weight.device(), torch::kFloat32), ab.second.to(t.weight.device(), torch::kFloat32), scale, 0.0});
  }
}

void attach_lora(const std::vector<LoraTarget>& targets, LoraNetwork& network, double weight) {
  std::map<std::string, LoraTarget> by_path;
  for (const auto& t : targets) by_path.emplace(t.path, t);
  const double scale = network->settings.alpha / static_cast<double>(network->settings.rank) * weight;
  for (std::size_t i = 0; i < network->paths.size(); ++i) {
    auto it = by_path.find(network->paths[i]);
    if (it == by_path.end()) throw Error("the model lacks the LoRA module " + network->paths[i]);
    auto& l = network->layer_list[i];
    it->second.slot->add({l->lora_A, l->lora_B, scale, network->settings.dropout});
  }
}

void freeze_base(LuminaRS& model) {
  for (auto& p : model->parameters()) p.set_requires_grad(false);
}

void detach_lora(LuminaRS& model) { detach_lora(lora_targets(model)); }

void detach_lora(const std::vector<LoraTarget>& targets) {
  for (const auto& t : targets) t.slot->clear();
}

void fuse_lora(LuminaRS& model) {
  for (auto& t : lora_targets(model))
    if (!t.slot->empty() && t.weight.numel() > 0) t.slot->fuse(t.weight);  // a weight kept packed stays unfused
}

void merge_lora_into_weights(LuminaRS& model) {
  torch::NoGradGuard no_grad;
  for (auto& t : lora_targets(model)) {
    if (t.slot->empty()) continue;
    auto merged = t.weight.to(torch::kFloat32) + lora_weight_delta(t.slot->adapters(), t.weight).to(t.weight.device());
    t.weight.copy_(merged);
    t.slot->clear();
  }
}

void merge_lora_into_tensors(std::vector<std::pair<std::string, torch::Tensor>>& tensors, const LoraTensors& lora, double weight,
                             const std::string& prefix, const std::string& source) {
  if (!std::isfinite(weight)) throw Error(source + ": LoRA weight must be finite");
  std::map<std::string, torch::Tensor*> by_name;
  for (auto& [name, t] : tensors) by_name.emplace(name, &t);
  std::vector<std::pair<torch::Tensor*, LoraAdapter>> merges;  // every check first: a refused file changes nothing
  const double scale = lora.alpha / static_cast<double>(lora.rank) * weight;
  for (const auto& [path, ab] : lora.layers) {
    const std::string name = (path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path) + ".weight";
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(source + ": tensor " + path + ".lora_A.weight names a module the model lacks");
    check_fits(source, path, ab, it->second->sizes().vec());
    merges.push_back({it->second, LoraAdapter{ab.first, ab.second, scale, 0.0}});
  }
  torch::NoGradGuard no_grad;
  for (auto& [w, adapter] : merges) *w = (w->to(torch::kFloat32) + lora_weight_delta({adapter}, *w)).to(w->scalar_type());
}

}  // namespace luminars

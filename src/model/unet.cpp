#include "model/unet.h"

#include "core/streamed_weights.h"

namespace luminars {

namespace nn = torch::nn;

namespace {

std::vector<Block> make_blocks(nn::ModuleList& list, int64_t c, int64_t n, const Config& cfg) {
  std::vector<Block> blocks;
  for (int64_t i = 0; i < n; ++i) {
    blocks.emplace_back(c, cfg.embed_dim, cfg.text_dim, cfg.head_dim);
    quant::drop_init(*blocks.back());  // under low-memory loading: its init is not kept (the load fills it)
    list->push_back(blocks.back());
  }
  return blocks;
}

// Runs `blocks` in order; `next` walks through the per-block text keys and values.
torch::Tensor run_blocks(std::vector<Block>& blocks, torch::Tensor x, const torch::Tensor& emb_act,
                         const std::vector<TextKV>& text, std::size_t& next, const torch::Tensor& bias) {
  for (auto& b : blocks) {
    quant::WeightScope weights(*b);  // a block's weights in float32 while it runs (low-memory loading)
    x = b->forward(x, emb_act, text.at(next++), bias);
  }
  return x;
}

}  // namespace

LevelImpl::LevelImpl(int64_t c, int64_t depth, const Config& cfg, bool with_skip) {
  if (with_skip) skip = register_module("skip", nn::Conv2d(nn::Conv2dOptions(2 * c, c, /*kernel_size=*/1)));
  block_list = make_blocks(blocks, c, depth, cfg);
  register_module("blocks", blocks);
}

MidImpl::MidImpl(int64_t c, const Config& cfg) {
  block_list = make_blocks(blocks, c, cfg.mid_depth, cfg);
  register_module("blocks", blocks);
  attn_norm = register_module("attn_norm", nn::LayerNorm(nn::LayerNormOptions({c}).eps(1e-6)));
  attn = register_module("attn", SelfAttention(c, c / cfg.head_dim));
}

UNetImpl::UNetImpl(const Config& cfg) {
  const auto& w = cfg.widths;
  const auto n = static_cast<int64_t>(w.size());
  nn::ModuleList down_list, downsample_list, up_list, upsample_list;
  for (int64_t i = 0; i < n; ++i) {
    down.emplace_back(w[i], cfg.depths[i], cfg, /*with_skip=*/false);
    down_list->push_back(down.back());
  }
  for (int64_t i = 0; i + 1 < n; ++i) {
    downsample.emplace_back(w[i], w[i + 1]);
    downsample_list->push_back(downsample.back());
  }
  mid = Mid(w.back(), cfg);
  for (int64_t i = n - 1; i >= 0; --i) {
    up.emplace_back(w[i], cfg.depths[i], cfg, /*with_skip=*/true);
    up_list->push_back(up.back());
  }
  for (int64_t i = n - 1; i >= 1; --i) {
    upsample.emplace_back(w[i], w[i - 1]);
    upsample_list->push_back(upsample.back());
  }
  register_module("down", down_list);
  register_module("downsample", downsample_list);
  register_module("mid", mid);
  register_module("up", up_list);
  register_module("upsample", upsample_list);
  out = register_module("out", nn::Conv2d(nn::Conv2dOptions(w[0], w[0], /*kernel_size=*/1)));
  torch::NoGradGuard no_grad;
  out->weight.zero_();
  out->bias.zero_();
}

std::vector<TextKV> UNetImpl::project_text(const torch::Tensor& ctx) {
  std::vector<TextKV> text;
  auto add = [&](std::vector<Block>& blocks) {
    for (auto& b : blocks) {
      quant::WeightScope weights(*b->attn);
      text.push_back(b->attn->project_text(ctx));
    }
  };
  for (auto& l : down) add(l->block_list);
  add(mid->block_list);
  for (auto& l : up) add(l->block_list);
  return text;
}

torch::Tensor UNetImpl::forward(const torch::Tensor& z, const torch::Tensor& emb_act, const std::vector<TextKV>& text,
                                const torch::Tensor& bias) {
  std::size_t next = 0;
  std::vector<torch::Tensor> skips;
  torch::Tensor x = z;
  for (std::size_t i = 0; i < down.size(); ++i) {
    x = run_blocks(down[i]->block_list, x, emb_act, text, next, bias);
    skips.push_back(x);
    if (i < downsample.size()) x = downsample[i]->forward(x);
  }
  x = run_blocks(mid->block_list, x, emb_act, text, next, bias);
  {
    quant::WeightScope weights(*mid->attn);
    auto t = layer_norm(mid->attn_norm, x.permute({0, 2, 3, 1}));  // [B,H,W,C]
    x = x + mid->attn->forward(t).permute({0, 3, 1, 2});
  }
  for (std::size_t j = 0; j < up.size(); ++j) {
    x = up[j]->skip_lora.conv1x1(torch::cat({x, skips.back()}, 1), up[j]->skip);                         // fuse [x, skip]
    skips.pop_back();
    x = run_blocks(up[j]->block_list, x, emb_act, text, next, bias);
    if (j < upsample.size()) x = upsample[j]->forward(x);
  }
  return out_lora.conv1x1(x, out);
}

}  // namespace luminars

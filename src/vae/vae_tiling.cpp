#include "vae/vae_tiling.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace luminars {

namespace {

// Tiles along one side of length n: the fewest of at most `tile` that overlap by at least
// `overlap`, all of one length and spread evenly (the first at 0, the last flush with the end), so
// no work is spent on a sliver of a last tile. Returns the starts and sets `len`.
std::vector<int64_t> tile_starts(int64_t n, int64_t tile, int64_t overlap, int64_t& len) {
  if (n <= tile) {
    len = n;
    return {0};
  }
  const int64_t count = (n - overlap + (tile - overlap) - 1) / (tile - overlap);  // ceil((n − o) / (tile − o))
  len = std::min(tile, (n + (count - 1) * overlap + count - 1) / count);          // ceil((n + (count−1)·o) / count)
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < count; ++i) starts.push_back(i * (n - len) / (count - 1));
  return starts;
}

// Blend weights along one side of a tile of `len` pixels: ramps of `ramp` pixels up from the start
// (unless the tile touches the picture's start) and down to the end (unless it touches the end).
torch::Tensor ramp_weights(int64_t len, int64_t ramp, bool ramp_in, bool ramp_out) {
  auto w = torch::ones({len});
  if (ramp <= 0) return w;
  auto up = (torch::arange(ramp, torch::kFloat32) + 0.5) / ramp;  // (0,1)
  if (ramp_in) w.slice(0, 0, ramp).mul_(up);
  if (ramp_out) w.slice(0, len - ramp, len).mul_(up.flip(0));
  return w;
}

}  // namespace

torch::Tensor decode_tiled(Vae& vae, const torch::Tensor& latents, const VaeTiling& t) {
  const int64_t h = latents.size(2), w = latents.size(3);
  if (t.tile <= 0 || (h <= t.tile && w <= t.tile)) return vae.decode(latents);
  if (t.overlap < 0 || 2 * t.overlap >= t.tile)
    throw Error("VAE tiling: overlap " + std::to_string(t.overlap) + " must be at least 0 and below half the tile " +
                std::to_string(t.tile));
  const int64_t f = vae.downscale_factor();
  int64_t th = 0, tw = 0;  // tile height and width (latent pixels)
  const auto ys = tile_starts(h, t.tile, t.overlap, th), xs = tile_starts(w, t.tile, t.overlap, tw);
  torch::Tensor out, weight;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    for (std::size_t j = 0; j < xs.size(); ++j) {
      auto tile = latents.slice(2, ys[i], ys[i] + th).slice(3, xs[j], xs[j] + tw);
      auto pic = vae.decode(tile).to(torch::kFloat32);  // [B,3,f·th,f·tw]
      if (!out.defined()) {
        out = torch::zeros({latents.size(0), pic.size(1), h * f, w * f}, pic.options());
        weight = torch::zeros({1, 1, h * f, w * f}, pic.options());
      }
      // The ramp spans the overlap with the neighbour (the actual one: the last tile may overlap more).
      const int64_t ramp_y0 = i > 0 ? (ys[i - 1] + th - ys[i]) * f : 0, ramp_y1 = i + 1 < ys.size() ? (ys[i] + th - ys[i + 1]) * f : 0;
      const int64_t ramp_x0 = j > 0 ? (xs[j - 1] + tw - xs[j]) * f : 0, ramp_x1 = j + 1 < xs.size() ? (xs[j] + tw - xs[j + 1]) * f : 0;
      auto wy = torch::minimum(ramp_weights(th * f, ramp_y0, i > 0, false), ramp_weights(th * f, ramp_y1, false, i + 1 < ys.size()));
      auto wx = torch::minimum(ramp_weights(tw * f, ramp_x0, j > 0, false), ramp_weights(tw * f, ramp_x1, false, j + 1 < xs.size()));
      auto wt = (wy.unsqueeze(1) * wx.unsqueeze(0)).to(pic.device()).view({1, 1, th * f, tw * f});
      out.slice(2, ys[i] * f, (ys[i] + th) * f).slice(3, xs[j] * f, (xs[j] + tw) * f).add_(pic * wt);
      weight.slice(2, ys[i] * f, (ys[i] + th) * f).slice(3, xs[j] * f, (xs[j] + tw) * f).add_(wt);
    }
  }
  return out / weight;
}

}  // namespace luminars

// Tiled VAE decoding: a large latent decoded as overlapping tiles whose pictures are blended with
// linear ramps across the overlaps, so peak memory is that of one tile's decode, not the picture's.
// The decoder's GroupNorms see one tile at a time; the ramps hide the small tone differences.
#pragma once
#include <torch/torch.h>

#include "vae/vae.h"

namespace luminars {

struct VaeTiling {
  int64_t tile = 32;     // largest tile side in latent pixels (32 = 256 image pixels at factor 8); 0 = never tile
  int64_t overlap = 8;   // overlap of neighbouring tiles in latent pixels (< tile / 2)
};

// latents [B,C,h,w] in the VAE's space -> images [B,3,f·h,f·w], as vae.decode(latents) but tile by
// tile when h or w exceeds tiling.tile (else one plain decode): along each side the fewest tiles of
// at most tiling.tile that overlap by at least tiling.overlap, of equal length.
torch::Tensor decode_tiled(Vae& vae, const torch::Tensor& latents, const VaeTiling& tiling = {});

}  // namespace luminars

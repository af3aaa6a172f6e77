// Tiled VAE decoding: the blend of overlapping tiles must reproduce a decoder that has no reach
// across pixels exactly, cover every pixel once in weight, and fall back to one decode for small
// latents; with a real (random) VAE it stays close to the whole-picture decode.
#include <torch/torch.h>

#include "test_support.h"
#include "vae/vae_tiling.h"

namespace luminars {
namespace {

// A decoder with no spatial reach: each latent pixel becomes an f×f block of a per-channel affine
// colour. Tiling must not change its output at all. Counts its decode calls.
class BlockVae : public Vae {
 public:
  int calls = 0;
  VaePosterior encode(const torch::Tensor&) override { return {}; }
  torch::Tensor decode(const torch::Tensor& z) override {
    ++calls;
    auto rgb = z.slice(1, 0, 3) * 0.5 + z.slice(1, 3, 4);
    return torch::upsample_nearest2d(rgb, {z.size(2) * 8, z.size(3) * 8});
  }
  int64_t downscale_factor() const override { return 8; }
  int64_t latent_channels() const override { return 4; }
  double scaling_factor() const override { return 1; }
  double shift_factor() const override { return 0; }
  std::string class_name() const override { return "BlockVae"; }
};

TEST(VaeTiling, BlendReproducesAPointwiseDecoderExactly) {
  BlockVae vae;
  auto z = torch::randn({2, 4, 45, 70});  // sides not multiples of the tile: the last tiles overlap more
  VaeTiling t;
  t.tile = 16;
  t.overlap = 4;
  auto tiled = decode_tiled(vae, z, t);
  EXPECT_GT(vae.calls, 12);  // 4 rows × 6 columns of tiles
  vae.calls = 0;
  auto whole = vae.decode(z);
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  EXPECT_LE(test::rel_error(tiled, whole), 1e-6);
}

TEST(VaeTiling, SmallLatentsDecodeInOnePiece) {
  BlockVae vae;
  auto z = torch::randn({1, 4, 32, 32});
  auto out = decode_tiled(vae, z, {32, 8});
  EXPECT_EQ(vae.calls, 1);
  EXPECT_TRUE(torch::equal(out, vae.decode(z)));
  EXPECT_NE(test::error_of([&] { decode_tiled(vae, torch::randn({1, 4, 40, 40}), {16, 8}); }).find("overlap 8"),
            std::string::npos);
}

TEST(VaeTiling, RealDecoderStaysCloseToTheWholeDecode) {
  VaeConfig cfg;
  cfg.block_out_channels = {16, 32};
  cfg.norm_num_groups = 8;
  cfg.latent_channels = 4;
  torch::manual_seed(3);
  auto vae = make_vae(AutoencoderKL(cfg, VaePart::Decoder));
  torch::NoGradGuard no_grad;
  auto z = torch::randn({1, 4, 24, 24});
  auto whole = vae->decode(z);
  auto tiled = decode_tiled(*vae, z, {12, 3});
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  // GroupNorm statistics differ per tile, and the convolutions' reach crosses tile edges: near the
  // whole decode, not equal. (This random decoder normalises wildly; trained ones differ far less,
  // see the end-to-end test.)
  EXPECT_TRUE(torch::isfinite(tiled).all().item<bool>());
  const double err = test::rel_error(tiled, whole);
  EXPECT_LT(err, 0.5);
  EXPECT_GT(err, 0.0);
}

}  // namespace
}  // namespace luminars

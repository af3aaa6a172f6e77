// `prepare` options for tests: DIR/data into DIR/cache with the tiny fixture encoders
// (vae_tiny_16ch: factor 2, clip_text_tiny, clip_tokenizer) at 16 pixels, 2 pictures a shard,
// no progress bar.
#pragma once
#include "pipeline/prepare.h"
#include "test_support.h"

namespace luminars::test {

inline PrepareOptions tiny_prepare_options(const TempDir& dir) {
  const std::string fx = fixtures_dir();
  PrepareOptions o;
  o.data_dir = dir.file("data");
  o.vae = fx + "/vae_tiny_16ch";
  o.text_encoder = fx + "/clip_text_tiny";
  o.tokenizer = fx + "/clip_tokenizer";
  o.out_dir = dir.file("cache");
  o.resolution = 16;
  o.shard_size = 2;
  o.progress = false;
  return o;
}

}  // namespace luminars::test

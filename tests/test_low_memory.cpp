// Low-memory generation (core/streamed_weights.h): quantized weights kept packed and dequantized
// per block, an embedding table's rows dequantized alone, blocks' init dropped as they are built;
// the pictures are bit-identical to the ordinary load's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/quantize.h"
#include "core/streamed_weights.h"
#include "core/weight_loader.h"
#include "model/checkpoint.h"
#include "model/luminars.h"
#include "pipeline/export_model.h"
#include "pipeline/pipeline.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using quant::Scheme;

const std::string kModel = test::shipped_model_dir();

TEST(LowMemory, EmbeddingRowsAreDequantizedAlone) {
  torch::manual_seed(0);
  auto table = torch::randn({50, 64});
  const auto packed = quant::quantize(table, Scheme::q4_0);
  const auto full = quant::dequantize(packed, Scheme::q4_0, table.sizes());
  torch::Tensor param = table.clone();
  EXPECT_FALSE(quant::streamed_rows(param, torch::tensor({1})).has_value()) << "not streamed yet";
  quant::stream_weight(param, packed, Scheme::q4_0, {50, 64});
  EXPECT_EQ(param.numel(), 0);
  const auto ids = torch::tensor({{3, 7, 3}, {49, 0, 12}}, torch::kInt64);
  const auto rows = quant::streamed_rows(param, ids);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->sizes(), (std::vector<int64_t>{2, 3, 64}));
  EXPECT_TRUE(torch::equal(*rows, torch::embedding(full, ids)));
}

TEST(LowMemory, BlocksBuiltUnderKeepPackedDropTheirInitAndTheLoadFillsThem) {
  test::TempDir dir;
  torch::manual_seed(1);
  LuminaRS src(Config::preset("tiny"));
  save_denoiser(src, dir.file("d.safetensors"));
  {
    quant::KeepPacked keep;
    LuminaRS built(Config::preset("tiny"));
    const auto w = built->named_parameters()["unet.down.0.blocks.0.mlp_in.weight"];
    EXPECT_EQ(w.numel(), 0) << "a block's init is dropped as soon as it is built";
    EXPECT_TRUE(quant::init_dropped(w));
    EXPECT_EQ(quant::loaded_shape(w), src->named_parameters()["unet.down.0.blocks.0.mlp_in.weight"].sizes().vec());
    EXPECT_GT(built->named_parameters()["stem.weight"].numel(), 0) << "outside the blocks nothing is dropped";
    // A partial load may not leave a dropped parameter empty.
    WeightLoadOptions partial;
    partial.allow_missing = true;
    partial.rename = [](const std::string& n) { return n.find("mlp_in") != std::string::npos ? std::string() : n; };
    EXPECT_NE(test::error_of([&] { load_module_state(*built, safetensors::Reader(dir.file("d.safetensors")), partial); })
                  .find("mlp_in.weight"),
              std::string::npos);
  }
  quant::KeepPacked keep;
  auto loaded = load_denoiser(dir.file("d.safetensors"));  // float32 file: every dropped parameter refilled
  for (const auto& p : src->named_parameters())
    EXPECT_TRUE(torch::equal(loaded->named_parameters()[p.key()], p.value())) << p.key();
}

TEST(LowMemory, QuantizedModelDrawsTheSamePictureLoadedOrStreamed) {
  test::TempDir dir;
  ExportOptions o;
  o.model_dir = kModel;
  o.out_dir = dir.file("q4");
  o.quantize = Scheme::q4_0;
  export_model(o);
  auto draw = [&](bool low_memory) {
    PipelineOptions po;
    po.model_dir = o.out_dir;
    po.bf16 = false;
    po.keep_loaded = !low_memory;
    po.low_memory = low_memory;
    Pipeline pipe(po);
    GenerationRequest r;
    r.prompt = "a green apple";
    r.seed = 3;
    return pipe.generate(r).images.at(0);
  };
  const auto loaded = draw(false), streamed = draw(true);
  EXPECT_EQ(loaded.rgb, streamed.rgb);
  EXPECT_EQ(quant::streamed_bytes(), 0) << "the streamed parts were released after the generation";
}

}  // namespace
}  // namespace luminars

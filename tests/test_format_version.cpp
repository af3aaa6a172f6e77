// Format versions: luminars.json, state.json, cache.json and checkpoints are written with
// "format_version": 1; a newer version is refused with a line naming the file, its version and the
// newest this build reads; files written before the field read as version 1.
#include <luminars.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/format_version.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "model/checkpoint.h"
#include "pipeline/model_folder.h"
#include "pipeline/pipeline.h"
#include "test_support.h"
#include "train/latent_cache.h"
#include "train/run_checkpoint.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

std::string too_new(const std::string& file, int newest = 1) {
  return file + ": format version 999 is newer than this build of LuminaRS reads (" + std::to_string(newest) +
         "); upgrade LuminaRS to read it";
}

TEST(FormatVersion, ModelFolderWrittenWithItAndNewerRefused) {
  test::TempDir dir;
  ModelFolder m;
  m.dir = dir.file("model");
  m.resolution = 64;
  m.save();
  const auto file = dir.file("model/luminars.json");
  EXPECT_EQ(nlohmann::json::parse(read_file(file)).at("format_version"), 1);
  EXPECT_EQ(ModelFolder::load(dir.file("model")).resolution, 64);

  test::write_text(file, R"({"format": "luminars", "format_version": 999, "resolution": 64})");
  EXPECT_EQ(test::error_of([&] { ModelFolder::load(dir.file("model")); }), too_new(file));
  test::write_text(file, R"({"format": "luminars", "format_version": "2"})");
  EXPECT_EQ(test::error_of([&] { ModelFolder::load(dir.file("model")); }),
            file + ": field 'format_version' must be a positive integer, got \"2\"");
  test::write_text(file, R"({"format": "luminars", "resolution": 48})");  // before the field: version 1
  EXPECT_EQ(ModelFolder::load(dir.file("model")).resolution, 48);
}

TEST(FormatVersion, TheShippedModelIsVersionOneAndAFolderOfVersion999IsRefusedEverywhere) {
  EXPECT_EQ(nlohmann::json::parse(read_file(kModel + "/luminars.json")).at("format_version"), 1);
  test::TempDir dir;
  fs::copy(kModel, dir.file("future"), fs::copy_options::recursive);
  const auto file = dir.file("future/luminars.json");
  auto j = nlohmann::ordered_json::parse(read_file(file));
  j["format_version"] = 999;
  test::write_text(file, j.dump(2));

  PipelineOptions o;
  o.model_dir = dir.file("future");
  EXPECT_EQ(test::error_of([&] { Pipeline p(o); }), too_new(file));
  luminars_model* model = nullptr;
  EXPECT_EQ(luminars_model_load(dir.file("future").c_str(), nullptr, &model), LUMINARS_ERROR_FAILED);
  EXPECT_EQ(luminars_last_error(), too_new(file));
  auto r = test::run_cli("generate --model " + dir.file("future") + " --prompt x --seed 1 --out " + dir.file("x.png"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(too_new(file)), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

TEST(FormatVersion, TrainingStateAndCacheIndex) {
  RunState s;
  s.global_step = 5;
  const auto written = nlohmann::json::parse(s.to_json());
  EXPECT_EQ(written.at("format_version"), 1);
  EXPECT_EQ(RunState::from_json(s.to_json(), "state.json").global_step, 5);
  auto j = written;
  j["format_version"] = 999;
  EXPECT_EQ(test::error_of([&] { RunState::from_json(j.dump(), "run/state.json"); }), too_new("run/state.json"));
  j.erase("format_version");
  EXPECT_EQ(RunState::from_json(j.dump(), "state.json").global_step, 5);

  CacheInfo c;
  c.shards = {"shard-00000.safetensors"};
  auto index = nlohmann::json::parse(c.to_json());
  EXPECT_EQ(index.at("format_version"), 1);
  EXPECT_FALSE(index.contains("version"));
  EXPECT_EQ(CacheInfo::from_json(c.to_json(), "cache.json").shards, c.shards);
  // A cache with aspect-ratio buckets is format 2 (data/aspect_buckets.h), the newest the index reads.
  index["format_version"] = 999;
  EXPECT_EQ(test::error_of([&] { CacheInfo::from_json(index.dump(), "cache/cache.json"); }), too_new("cache/cache.json", 2));
  index.erase("format_version");
  index["version"] = 999;  // the field's earlier name
  EXPECT_EQ(test::error_of([&] { CacheInfo::from_json(index.dump(), "cache/cache.json"); }), too_new("cache/cache.json", 2));
  c.buckets = {{64, 64}, {96, 32}};
  EXPECT_EQ(nlohmann::json::parse(c.to_json()).at("format_version"), 2);
  EXPECT_EQ(CacheInfo::from_json(c.to_json(), "cache.json").buckets, c.buckets);
  index["version"] = 1;
  EXPECT_EQ(CacheInfo::from_json(index.dump(), "cache.json").shards, c.shards);
}

TEST(FormatVersion, CheckpointMetadata) {
  test::TempDir dir;
  LuminaRS model(Config::preset("tiny"));
  const auto file = dir.file("denoiser.safetensors");
  save_denoiser(model, file);
  auto metadata = safetensors::Reader(file).metadata();
  EXPECT_EQ(metadata.at("format_version"), "1");
  EXPECT_NO_THROW(read_denoiser_config(file));

  NamedTensors tensors;
  for (auto& [name, t] : load_tensors(file)) tensors.emplace_back(name, t);
  metadata["format_version"] = "999";
  save_tensors(dir.file("future.safetensors"), tensors, metadata);
  EXPECT_EQ(test::error_of([&] { read_denoiser_config(dir.file("future.safetensors")); }), too_new(dir.file("future.safetensors")));
  metadata.erase("format_version");  // written before the field: version 1
  save_tensors(dir.file("old.safetensors"), tensors, metadata);
  EXPECT_NO_THROW(read_denoiser_config(dir.file("old.safetensors")));
}

}  // namespace
}  // namespace luminars

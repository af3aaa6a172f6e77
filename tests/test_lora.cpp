// LoRA: adapters on the denoiser (zero adapters change nothing, merged = unmerged, gradients reach
// only the adapters), the LoRA file and its refusals, the prompt syntax, and generation with LoRAs.
#include <luminars.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/sha256.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "pipeline/export_model.h"
#include "pipeline/lora_trainer.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/lora_file.h"
#include "pipeline/lora_prompt.h"
#include "pipeline/parameters.h"
#include "pipeline/pipeline.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using test::error_of;

std::string shipped_denoiser() { return test::shipped_model_dir() + "/denoiser/model.safetensors"; }

// A tiny denoiser with every weight non-zero (ada and out start at zero), and inputs for it.
struct Tiny {
  LuminaRS model{nullptr};
  torch::Tensor x, t, ctx, pooled;
  Tiny() {
    torch::manual_seed(3);
    model = LuminaRS(Config::preset("tiny"));
    torch::NoGradGuard g;
    for (auto& p : model->parameters())
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.05);
    const auto& c = model->config();
    x = torch::randn({2, c.latent_channels, 8, 8});
    t = torch::tensor({0.3f, 0.7f});
    ctx = torch::randn({2, 7, c.text_dim});
    pooled = torch::randn({2, c.text_dim});
  }
  torch::Tensor forward() {
    torch::NoGradGuard g;
    return model->forward(x, t, ctx, pooled);
  }
};

// Every adapter's B filled with small random values (a trained adapter's stand-in).
void randomise(LoraNetwork& n, double std = 0.05) {
  torch::NoGradGuard g;
  for (auto& l : n->layer_list) l->lora_B.normal_(0, std);
}

TEST(Lora, TargetPathsNameTheModelsParameters) {
  Tiny s;
  std::set<std::string> names;
  for (const auto& p : s.model->named_parameters()) names.insert(p.key());
  const auto targets = lora_targets(s.model);
  ASSERT_FALSE(targets.empty());
  std::set<std::string> groups;
  for (const auto& t : targets) {
    const std::string weight = t.path == "unet.mid.attn.in_proj" ? t.path + "_weight" : t.path + ".weight";
    EXPECT_TRUE(names.count(weight)) << t.path;
    groups.insert(t.group);
  }
  EXPECT_EQ(groups, (std::set<std::string>{"attn", "mlp", "ada", "conv"}));
  EXPECT_NE(error_of([&] { lora_targets(s.model, {"attn", "bogus"}); }).find("unknown LoRA target group 'bogus'"), std::string::npos);
}

TEST(Lora, ZeroInitialisedAdapterChangesNothingBitForBit) {
  Tiny s;
  const auto before = s.forward();
  LoraSettings ls;
  ls.groups = lora_target_groups();
  LoraNetwork n(s.model, ls);
  attach_lora(s.model, n);
  EXPECT_TRUE(torch::equal(s.forward(), before));
  fuse_lora(s.model);
  EXPECT_TRUE(torch::equal(s.forward(), before));
  detach_lora(s.model);
  EXPECT_TRUE(torch::equal(s.forward(), before));
}

TEST(Lora, MergedUnmergedAndFusedAgree) {
  Tiny s;
  const auto base = s.forward();
  LoraSettings ls;
  ls.groups = lora_target_groups();
  ls.rank = 4;
  ls.alpha = 6;
  LoraNetwork n(s.model, ls);
  randomise(n);
  auto tensors = lora_tensors(n);
  attach_lora(s.model, tensors, 0.8, "test");
  const auto unmerged = s.forward();
  EXPECT_GT(test::rel_error(unmerged, base), 1e-3);  // the adapter does change the output
  fuse_lora(s.model);
  EXPECT_LE(test::rel_error(s.forward(), unmerged), 1e-5);
  // Merged into a copy of the weights: the same function; the original model's weights untouched.
  LuminaRS copy(s.model->config());
  {
    torch::NoGradGuard g;
    auto src = s.model->named_parameters();
    for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const auto before_weights = s.model->unet->down[0]->block_list[0]->mlp_in->weight.clone();
  attach_lora(copy, tensors, 0.8, "test");
  merge_lora_into_weights(copy);
  torch::NoGradGuard g;
  const auto merged = copy->forward(s.x, s.t, s.ctx, s.pooled);
  EXPECT_LE(test::rel_error(merged, unmerged), 1e-5);
  EXPECT_TRUE(torch::equal(s.model->unet->down[0]->block_list[0]->mlp_in->weight, before_weights));
  // A negative weight undoes a positive one.
  detach_lora(s.model);
  attach_lora(s.model, tensors, 0.8, "test");
  attach_lora(s.model, tensors, -0.8, "test");
  EXPECT_LE(test::rel_error(s.forward(), base), 1e-5);
}

TEST(Lora, GradientsReachOnlyTheAdapters) {
  Tiny s;
  freeze_base(s.model);
  LoraNetwork n(s.model, LoraSettings{});
  randomise(n, 0.01);  // B = 0 would leave A without gradient at the first step
  attach_lora(s.model, n);
  auto noise = torch::randn_like(s.x);
  auto loss = flow_matching_loss(s.model, s.x, noise, s.t, s.ctx, s.pooled);
  loss.backward();
  for (const auto& p : s.model->named_parameters()) EXPECT_FALSE(p.value().grad().defined()) << p.key();
  ASSERT_FALSE(n->parameters().empty());
  for (const auto& p : n->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

TEST(Lora, RankLargerThanALayerIsRefused) {
  Tiny s;
  LoraSettings ls;
  ls.rank = 100000;
  const auto e = error_of([&] { LoraNetwork n(s.model, ls); });
  EXPECT_NE(e.find("LoRA rank 100000 is larger than layer unet.down.0.blocks.0.mlp_in"), std::string::npos) << e;
}

TEST(LoraFile, RoundTripsTensorsAndMetadataInPeftLayout) {
  test::TempDir dir;
  Tiny s;
  LoraNetwork n(s.model, LoraSettings{});
  randomise(n);
  const auto tensors = lora_tensors(n);
  LoraFileInfo info;
  info.targets = {"attn", "mlp"};
  info.base_model = "tiny";
  info.base_hash = "abc123";
  info.trigger_words = {"zzstyle"};
  info.steps = 42;
  info.training_data = R"({"images":20})";
  const auto path = dir.file("style.safetensors");
  write_lora_file(path, tensors, info);
  safetensors::Reader raw(path);
  EXPECT_TRUE(raw.contains("unet.down.0.blocks.0.attn.q.lora_A.weight"));
  EXPECT_TRUE(raw.contains("unet.down.0.blocks.0.attn.q.lora_B.weight"));
  EXPECT_EQ(raw.metadata().at("lora_alpha"), "8");
  EXPECT_EQ(raw.metadata().at("r"), "8");
  const LoraFile f = read_lora_file(path);
  EXPECT_EQ(f.info.rank, 8);
  EXPECT_EQ(f.info.alpha, 8);
  EXPECT_EQ(f.info.base_hash, "abc123");
  EXPECT_EQ(f.info.trigger_words, std::vector<std::string>{"zzstyle"});
  EXPECT_EQ(f.info.steps, 42);
  EXPECT_EQ(f.info.targets, (std::vector<std::string>{"attn", "mlp"}));
  ASSERT_EQ(f.tensors.layers.size(), tensors.layers.size());
  for (const auto& [p, ab] : tensors.layers) {
    EXPECT_TRUE(torch::equal(f.tensors.layers.at(p).first, ab.first)) << p;
    EXPECT_TRUE(torch::equal(f.tensors.layers.at(p).second, ab.second)) << p;
  }
}

TEST(LoraFile, RefusesBadFilesNamingFileAndTensor) {
  test::TempDir dir;
  const auto bad = dir.file("bad.safetensors");
  test::write_text(bad, "not a safetensors file at all");
  auto e = error_of([&] { read_lora_file(bad); });
  EXPECT_NE(e.find("LoRA file " + bad + " is not a readable safetensors file"), std::string::npos) << e;

  auto write = [&](const std::string& name, const NamedTensors& t, std::map<std::string, std::string> meta = {}) {
    const auto p = dir.file(name);
    save_tensors(p, t, meta);
    return p;
  };
  const std::string q = "unet.down.0.blocks.0.attn.q";
  auto a = torch::randn({4, 16}), b = torch::randn({16, 4});
  auto nan_b = b.clone();
  nan_b[0][0] = std::nanf("");
  auto p = write("nan.safetensors", {{q + ".lora_A.weight", a}, {q + ".lora_B.weight", nan_b}});
  e = error_of([&] { read_lora_file(p); });
  EXPECT_NE(e.find(p + ": tensor " + q + ".lora_B.weight holds NaN or infinite values"), std::string::npos) << e;

  p = write("missing.safetensors", {{q + ".lora_A.weight", a}});
  e = error_of([&] { read_lora_file(p); });
  EXPECT_NE(e.find("tensor " + q + ".lora_B.weight is missing"), std::string::npos) << e;

  p = write("extra.safetensors", {{q + ".lora_A.weight", a}, {q + ".lora_B.weight", b}, {"unet.out.weight", b}});
  e = error_of([&] { read_lora_file(p); });
  EXPECT_NE(e.find("tensor unet.out.weight is neither a .lora_A.weight nor a .lora_B.weight"), std::string::npos) << e;

  // Names the model lacks, shapes that do not fit, ranks larger than the layer: refused on attaching.
  Tiny s;
  const int64_t c = s.model->unet->down[0]->block_list[0]->attn->q->weight.size(0);
  p = write("unknown.safetensors", {{"unet.nowhere.lora_A.weight", a}, {"unet.nowhere.lora_B.weight", b}});
  auto f = read_lora_file(p);
  e = error_of([&] { attach_lora(s.model, f.tensors, 1.0, "LoRA file " + p); });
  EXPECT_NE(e.find("LoRA file " + p + ": tensor unet.nowhere.lora_A.weight names a module the model lacks"), std::string::npos) << e;
  p = write("shape.safetensors", {{q + ".lora_A.weight", torch::randn({4, c + 1})}, {q + ".lora_B.weight", torch::randn({c, 4})}});
  f = read_lora_file(p);
  e = error_of([&] { attach_lora(s.model, f.tensors, 1.0, "LoRA file " + p); });
  EXPECT_NE(e.find("tensors " + q + ".lora_A/B.weight"), std::string::npos) << e;
  p = write("rank.safetensors", {{q + ".lora_A.weight", torch::randn({c + 1, c})}, {q + ".lora_B.weight", torch::randn({c, c + 1})}});
  f = read_lora_file(p);
  e = error_of([&] { attach_lora(s.model, f.tensors, 1.0, "LoRA file " + p); });
  EXPECT_NE(e.find("tensor " + q + ".lora_A.weight has rank " + std::to_string(c + 1) + ", larger than its layer"), std::string::npos) << e;
  EXPECT_TRUE(lora_targets(s.model).front().slot->empty());  // a refused file leaves the model as it was
  p = write("fine.safetensors", {{q + ".lora_A.weight", torch::randn({2, c})}, {q + ".lora_B.weight", torch::randn({c, 2})}});
  f = read_lora_file(p);
  e = error_of([&] { attach_lora(s.model, f.tensors, std::numeric_limits<double>::infinity(), "LoRA file " + p); });
  EXPECT_NE(e.find("weight must be finite"), std::string::npos) << e;
}

TEST(LoraFile, MadeForAnotherBaseIsRefusedNamingBoth) {
  LoraFile f;
  f.path = "style.safetensors";
  f.info.base_model = "emoji";
  f.info.base_hash = "aaaaaaaaaaaaaaaaaaaa";
  const auto e = error_of([&] { check_lora_base(f, "other", "bbbbbbbbbbbbbbbbbbbb"); });
  EXPECT_NE(e.find("LoRA file style.safetensors was made for base model emoji (weights sha256 aaaaaaaaaaaa), not for other (weights sha256 bbbbbbbbbbbb)"),
            std::string::npos)
      << e;
  EXPECT_EQ(error_of([&] { check_lora_base(f, "emoji", "aaaaaaaaaaaaaaaaaaaa"); }), "(no error)");
}

TEST(LoraFile, BaseHashIsTheWeightsIdentity) {
  test::TempDir dir;
  const auto h = denoiser_weights_hash(shipped_denoiser());
  EXPECT_EQ(h.size(), 64u);
  // The same weights written again (another file, same tensors): the same identity; one weight changed: another.
  auto model = load_denoiser(shipped_denoiser());  // stored as F16: written back as F16, bit for bit
  save_denoiser(model, dir.file("same.safetensors"), torch::kFloat16);
  EXPECT_EQ(denoiser_weights_hash(dir.file("same.safetensors")), h);
  {
    torch::NoGradGuard g;
    model->head->bias[0] += 0.25;
  }
  save_denoiser(model, dir.file("changed.safetensors"), torch::kFloat16);
  EXPECT_NE(denoiser_weights_hash(dir.file("changed.safetensors")), h);
}

TEST(LoraPrompt, TagsAreStrippedAndRead) {
  std::vector<PromptLora> found;
  EXPECT_EQ(strip_lora_tags("a red heart <lora:pixel:0.8>, flat style <lora:ink>", &found), "a red heart, flat style");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].name, "pixel");
  EXPECT_DOUBLE_EQ(found[0].weight, 0.8);
  EXPECT_EQ(found[1].name, "ink");
  EXPECT_DOUBLE_EQ(found[1].weight, 1.0);
  found.clear();
  EXPECT_EQ(strip_lora_tags("<lora:neg:-0.5> a cat", &found), "a cat");
  EXPECT_DOUBLE_EQ(found.at(0).weight, -0.5);
  EXPECT_EQ(strip_lora_tags("no tags,  here "), "no tags,  here ");  // untouched without tags
  EXPECT_NE(error_of([] { strip_lora_tags("x <lora:a:nan>"); }).find("not a finite number"), std::string::npos);
  EXPECT_NE(error_of([] { strip_lora_tags("x <lora:a:inf>"); }).find("not a finite number"), std::string::npos);
  EXPECT_NE(error_of([] { strip_lora_tags("x <lora::1>"); }).find("names no LoRA"), std::string::npos);
}

TEST(LoraPrompt, ArgumentsAndFolders) {
  auto s = parse_lora_argument("dir/style.safetensors:-0.7");
  EXPECT_EQ(s.path, "dir/style.safetensors");
  EXPECT_DOUBLE_EQ(s.weight, -0.7);
  s = parse_lora_argument("style.safetensors");
  EXPECT_DOUBLE_EQ(s.weight, 1.0);
  EXPECT_NE(error_of([] { parse_lora_argument("style.safetensors:inf"); }).find("not a finite number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_lora_argument("style.safetensors:abc"); }).find("not a finite number"), std::string::npos);
  test::TempDir dir;
  test::write_text(dir.file("b.safetensors"), "x");
  test::write_text(dir.file("a.safetensors"), "x");
  test::write_text(dir.file("notes.txt"), "x");
  EXPECT_EQ(list_loras(dir.path.string()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(resolve_lora("a", dir.path.string()), dir.file("a.safetensors"));
  EXPECT_NE(error_of([&] { resolve_lora("zz", dir.path.string()); }).find("LoRA 'zz' is not in"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_lora("../a", dir.path.string()); }).find("not a path"), std::string::npos);
}

TEST(LoraPrompt, ParametersRecordLoraHashes) {
  GenerationParameters p;
  p.prompt = "a red heart <lora:pixel:0.8>";
  p.seed = 3;
  p.lora_hashes = {{"pixel", "0123456789ab"}, {"ink", "ba9876543210"}};
  const auto text = format_parameters(p);
  EXPECT_NE(text.find("Lora hashes: \"pixel: 0123456789ab, ink: ba9876543210\""), std::string::npos) << text;
  UnreadParameters unread;
  const auto back = parse_parameters(text, unread);
  EXPECT_EQ(back.prompt, p.prompt);
  EXPECT_EQ(back.lora_hashes, p.lora_hashes);
  EXPECT_TRUE(unread.keys.empty());
}

// Writes a LoRA of the shipped model: zero B (a new adapter) or random B.
std::string write_shipped_lora(const std::string& path, bool zero, double std = 0.02) {
  auto model = load_denoiser(shipped_denoiser());
  torch::manual_seed(5);
  LoraNetwork n(model, LoraSettings{});
  if (!zero) randomise(n, std);
  LoraFileInfo info;
  info.targets = n->settings.groups;
  info.base_model = "emoji";
  info.base_hash = denoiser_lora_identity(shipped_denoiser());
  write_lora_file(path, lora_tensors(n), info);
  return path;
}

GenerationRequest request(const std::string& prompt) {
  GenerationRequest r;
  r.prompt = prompt;
  r.seed = 11;
  r.steps = 6;
  return r;
}

TEST(LoraGeneration, ZeroAdapterGivesTheSamePictureAndWeightsAreRecorded) {
  test::TempDir dir;
  const auto lora = write_shipped_lora(dir.file("zero.safetensors"), true);
  PipelineOptions po;
  po.model_dir = test::shipped_model_dir();
  po.bf16 = false;
  po.lora_dir = dir.path.string();
  Pipeline pipe(po);
  const auto plain = pipe.generate(request("a red heart, noto style"));
  const auto tagged = pipe.generate(request("a red heart, noto style <lora:zero:0.9>"));
  auto r = request("a red heart, noto style");
  r.loras.push_back({lora, -1.5, ""});
  const auto explicit_lora = pipe.generate(r);
  EXPECT_EQ(plain.images[0].rgb, tagged.images[0].rgb);
  EXPECT_EQ(plain.images[0].rgb, explicit_lora.images[0].rgb);
  const auto text = format_parameters(explicit_lora.parameters[0]);
  EXPECT_NE(text.find("a red heart, noto style <lora:zero:-1.5>"), std::string::npos) << text;
  EXPECT_NE(text.find("Lora hashes: \"zero: "), std::string::npos) << text;
  EXPECT_EQ(format_parameters(tagged.parameters[0]).find("a red heart, noto style <lora:zero:0.9>\n"), 0u);
}

// The C API (include/luminars.h) applies LoRAs as the pipeline does: an explicit list with weights
// and the prompt's <lora:NAME:WEIGHT> in the model's lora_dir, bit for bit; bad entries refused.
TEST(LoraGeneration, CApiAppliesLorasAsThePipeline) {
  test::TempDir dir;
  const auto lora = write_shipped_lora(dir.file("style.safetensors"), false, 0.05);
  luminars_model_params mp;
  luminars_model_params_defaults(&mp);
  mp.device = "cpu";
  mp.precision = LUMINARS_PRECISION_FLOAT32;
  const std::string lora_dir = dir.path.string();
  mp.lora_dir = lora_dir.c_str();
  luminars_model* model = nullptr;
  ASSERT_EQ(luminars_model_load(test::shipped_model_dir().c_str(), &mp, &model), LUMINARS_OK) << luminars_last_error();
  PipelineOptions po;
  po.model_dir = test::shipped_model_dir();
  po.bf16 = false;
  po.lora_dir = lora_dir;
  Pipeline pipe(po);
  auto draw = [&](const char* prompt, const luminars_lora* loras, size_t count) {
    luminars_generate_params p;
    luminars_generate_params_defaults(&p);
    p.prompt = prompt;
    p.seed = 11;
    p.steps = 6;
    p.loras = loras;
    p.lora_count = count;
    std::vector<uint8_t> rgb(64 * 64 * 3);
    luminars_image out{rgb.data(), 64, 64};
    EXPECT_EQ(luminars_generate(model, &p, &out, 1), LUMINARS_OK) << luminars_last_error();
    return rgb;
  };
  const luminars_lora explicit_lora{lora.c_str(), 0.8};
  const auto with_list = draw("a red heart, noto style", &explicit_lora, 1);
  const auto with_tag = draw("a red heart, noto style <lora:style:0.8>", nullptr, 0);
  const auto plain = draw("a red heart, noto style", nullptr, 0);
  auto r = request("a red heart, noto style");
  r.loras.push_back({lora, 0.8, ""});
  EXPECT_EQ(with_list, pipe.generate(r).images[0].rgb);
  EXPECT_EQ(with_tag, pipe.generate(request("a red heart, noto style <lora:style:0.8>")).images[0].rgb);
  EXPECT_EQ(plain, pipe.generate(request("a red heart, noto style")).images[0].rgb);  // nothing stays applied
  EXPECT_NE(with_list, plain);

  luminars_generate_params p;
  luminars_generate_params_defaults(&p);
  p.prompt = "a red heart";
  p.lora_count = 1;  // and no array
  std::vector<uint8_t> rgb(64 * 64 * 3);
  luminars_image out{rgb.data(), 64, 64};
  EXPECT_EQ(luminars_generate(model, &p, &out, 1), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(luminars_last_error()).find("lora_count is 1 but loras is NULL"), std::string::npos);
  const std::string missing = dir.file("missing.safetensors");
  const luminars_lora absent{missing.c_str(), 1.0};
  p.loras = &absent;
  EXPECT_NE(luminars_generate(model, &p, &out, 1), LUMINARS_OK);
  EXPECT_NE(std::string(luminars_last_error()).find("missing.safetensors"), std::string::npos) << luminars_last_error();
  luminars_model_free(model);
}

TEST(LoraGeneration, UnmergedFusedAndExportedMergedSamplesAgree) {
  test::TempDir dir;
  const std::string shipped_hash = denoiser_weights_hash(shipped_denoiser());
  const auto lora = write_shipped_lora(dir.file("style.safetensors"), false);
  const LoraFile file = read_lora_file(lora);
  // Latents sampled with fixed noise and conditioning (12 Euler steps, guidance 4), float32.
  auto model = load_denoiser(shipped_denoiser());
  model->eval();
  const auto& c = model->config();
  torch::manual_seed(9);
  const auto noise = torch::randn({2, c.latent_channels, 8, 8});
  const auto ctx = torch::randn({2, 16, c.text_dim}), pooled = torch::randn({2, c.text_dim});
  SampleOptions so;
  so.guidance.scale = 4;
  so.guidance.null_ctx = torch::zeros_like(ctx);
  so.guidance.null_pooled = torch::zeros_like(pooled);
  auto sample = [&](LuminaRS& m) { return sample_flow(m, noise, ctx, pooled, so); };
  const auto plain = sample(model);
  attach_lora(model, file.tensors, 0.7, lora);
  const auto unmerged = sample(model);
  fuse_lora(model);
  const auto fused = sample(model);
  detach_lora(model);
  EXPECT_TRUE(torch::equal(sample(model), plain));  // detached: the base model exactly
  // The LoRA merged into an exported copy of the model (float32 weights).
  ExportOptions eo;
  eo.model_dir = test::shipped_model_dir();
  eo.out_dir = dir.file("merged");
  eo.dtype = torch::kFloat32;
  eo.merge_loras.push_back({lora, 0.7, ""});
  export_model(eo);
  auto merged_model = load_denoiser(eo.out_dir + "/denoiser/model.safetensors");
  merged_model->eval();
  const auto merged = sample(merged_model);
  EXPECT_GT(test::rel_error(unmerged, plain), 1e-3);  // the LoRA does change the samples
  EXPECT_LE(test::rel_error(fused, unmerged), 1e-5);
  EXPECT_LE(test::rel_error(merged, unmerged), 1e-5);
  EXPECT_EQ(denoiser_weights_hash(shipped_denoiser()), shipped_hash);  // the shipped weights untouched
  // The exported model is another base: the LoRA made for the shipped one is refused there.
  PipelineOptions po;
  po.model_dir = eo.out_dir;
  po.bf16 = false;
  po.lora_dir = dir.path.string();
  Pipeline other(po);
  const auto e = error_of([&] { other.generate(request("a blue star <lora:style:1>")); });
  EXPECT_NE(e.find("was made for base model emoji"), std::string::npos) << e;
  EXPECT_NE(e.find("not for merged"), std::string::npos) << e;
}


// A LoRA trained on a model applies to its 8-bit export (the export records the weights' identity),
// with the weights kept packed (--low-memory) as well: the same picture either way.
TEST(LoraGeneration, ALoraOfTheModelAppliesToItsQuantizedExportLowMemoryToo) {
  test::TempDir dir;
  const auto lora = write_shipped_lora(dir.file("style.safetensors"), false, 0.05);
  ExportOptions eo;
  eo.model_dir = test::shipped_model_dir();
  eo.out_dir = dir.file("q8");
  eo.quantize = quant::Scheme::q8_0;
  export_model(eo);
  EXPECT_EQ(denoiser_lora_identity(eo.out_dir + "/denoiser/model.safetensors"), denoiser_lora_identity(shipped_denoiser()));
  auto draw = [&](bool low_memory, bool with_lora) {
    PipelineOptions po;
    po.model_dir = eo.out_dir;
    po.bf16 = false;
    po.low_memory = low_memory;
    Pipeline p(po);
    auto r = request("a red heart, noto style");
    if (with_lora) r.loras.push_back({lora, 1.0, ""});
    return p.generate(r).images[0];
  };
  const auto plain = draw(false, false), adapted = draw(false, true), streamed = draw(true, true);
  EXPECT_NE(plain.rgb, adapted.rgb);
  EXPECT_EQ(streamed.rgb, adapted.rgb);
}

LoraTrainOptions tiny_training(const test::TempDir& dir, int pictures) {
  test::write_shapes_dataset(dir.file("data"), pictures, 64);
  LoraTrainOptions o;
  o.model_dir = test::shipped_model_dir();
  o.data_dir = dir.file("data");
  o.out_dir = dir.file("shapes");
  o.steps = 4;
  o.batch_size = 2;
  o.lr = 1e-2;
  o.trigger = "zzshape";
  o.checkpoint_every = 2;
  o.quiet = true;
  return o;
}

TEST(LoraTraining, TrainsOnlyAdaptersResumesAndWritesTheFile) {
  test::TempDir dir;
  const std::string before = sha256_file(shipped_denoiser());
  auto o = tiny_training(dir, 6);
  o.stop_after = 2;
  auto r = train_lora(o);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(r.steps, 2);
  o.stop_after = 0;
  o.resume = true;
  r = train_lora(o);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.steps, 4);
  EXPECT_EQ(r.images, 6);
  EXPECT_EQ(r.lora_path, dir.file("shapes") + "/shapes.safetensors");
  const LoraFile f = read_lora_file(r.lora_path);
  EXPECT_EQ(f.info.rank, 8);
  EXPECT_EQ(f.info.base_model, "emoji");
  EXPECT_EQ(f.info.base_hash, denoiser_lora_identity(shipped_denoiser()));
  EXPECT_EQ(f.info.trigger_words, std::vector<std::string>{"zzshape"});
  EXPECT_EQ(f.info.steps, 4);
  EXPECT_NE(f.info.training_data.find("\"images\":6"), std::string::npos) << f.info.training_data;
  double b_norm = 0;
  for (const auto& [p, ab] : f.tensors.layers) b_norm += ab.second.norm().item<double>();
  EXPECT_GT(b_norm, 0);  // the adapters trained
  EXPECT_EQ(sha256_file(shipped_denoiser()), before);  // the base model's file untouched
  EXPECT_TRUE(fs::exists(dir.file("shapes") + "/run/samples/step-0000004.png"));
  // The same run without the interruption: the same adapters, bit for bit.
  test::TempDir dir2;
  auto o2 = tiny_training(dir2, 6);
  const auto r2 = train_lora(o2);
  const LoraFile f2 = read_lora_file(r2.lora_path);
  for (const auto& [p, ab] : f.tensors.layers) {
    EXPECT_TRUE(torch::equal(f2.tensors.layers.at(p).first, ab.first)) << p;
    EXPECT_TRUE(torch::equal(f2.tensors.layers.at(p).second, ab.second)) << p;
  }
  // A second run into a folder that holds one is refused.
  const auto e = error_of([&] { train_lora(o2); });
  EXPECT_NE(e.find("already holds files"), std::string::npos) << e;
}

TEST(LoraTraining, FewerThanFourPicturesIsAClearError) {
  test::TempDir dir;
  auto o = tiny_training(dir, 3);
  const auto e = error_of([&] { train_lora(o); });
  EXPECT_NE(e.find("holds 3 usable pictures; a LoRA needs at least 4"), std::string::npos) << e;
}

}  // namespace
}  // namespace luminars

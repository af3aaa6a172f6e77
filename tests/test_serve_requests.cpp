// The server's request bodies: every API read into one GenerationRequest, and every bad field
// refused with its name.
#include <gtest/gtest.h>

#include <stb_image_write.h>

#include "core/base64.h"
#include "core/image.h"
#include "serve/api_requests.h"
#include "test_support.h"

namespace luminars::serve {
namespace {

using nlohmann::json;

ServeLimits limits() {
  ServeLimits l;
  l.size_multiple = 32;
  l.resolution = 64;
  l.max_size = 256;
  return l;
}

Image picture(int w, int h, uint8_t v = 128) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(static_cast<std::size_t>(w) * h * 3, v);
  return img;
}

std::string png64(const Image& img) { return base64_encode(encode_png(img)); }

// The field a RequestError names ("" when none is thrown).
template <typename F>
std::string bad_field(F f) {
  try {
    f();
  } catch (const RequestError& e) {
    return e.field();
  }
  return "";
}

TEST(ServeRequests, JobsRequestWithDefaults) {
  auto job = parse_jobs_request(json{{"prompt", "a cat"}, {"seed", 5}}, limits());
  const auto& r = job.request;
  EXPECT_EQ(r.prompt, "a cat");
  EXPECT_EQ(r.seed, 5u);
  EXPECT_EQ(r.batch, 1);
  EXPECT_EQ(r.steps.value(), 12);
  EXPECT_DOUBLE_EQ(r.cfg_scale.value(), 4.0);
  EXPECT_EQ(r.sampler.value(), "euler");
  EXPECT_EQ(r.width.value(), 64);
  EXPECT_EQ(r.height.value(), 64);
  EXPECT_FALSE(r.init_image.has_value());
  // Seed −1 (or none) draws a random seed: two draws differ.
  auto a = parse_jobs_request(json{{"seed", -1}}, limits()).request.seed;
  auto b = parse_jobs_request(json::object(), limits()).request.seed;
  EXPECT_NE(a, b);
}

TEST(ServeRequests, JobsRequestWithInitImageAndMask) {
  auto job = parse_jobs_request(json{{"prompt", "x"},
                                     {"init_image", "data:image/png;base64," + png64(picture(64, 96))},
                                     {"mask", png64(picture(64, 96, 255))},
                                     {"strength", 0.5},
                                     {"n", 3},
                                     {"sampler", "Heun"}},
                                limits());
  const auto& r = job.request;
  ASSERT_TRUE(r.init_image && r.mask);
  EXPECT_EQ(r.init_image->width, 64);
  EXPECT_EQ(r.init_image->height, 96);
  EXPECT_DOUBLE_EQ(r.strength, 0.5);
  EXPECT_EQ(r.batch, 3);
  EXPECT_EQ(r.sampler.value(), "heun");
  EXPECT_FALSE(r.width.has_value());  // the init image's own size
}

TEST(ServeRequests, EveryBadFieldIsNamed) {
  const auto l = limits();
  auto jobs = [&](json body) { return bad_field([&] { parse_jobs_request(body, l); }); };
  EXPECT_EQ(jobs({{"steps", 0}}), "steps");
  EXPECT_EQ(jobs({{"steps", 101}}), "steps");
  EXPECT_EQ(jobs({{"steps", "12"}}), "steps");
  EXPECT_EQ(jobs({{"steps", 12.5}}), "steps");
  EXPECT_EQ(jobs({{"cfg_scale", -1}}), "cfg_scale");
  EXPECT_EQ(jobs({{"cfg_scale", "high"}}), "cfg_scale");
  EXPECT_EQ(jobs({{"n", 9}}), "n");
  EXPECT_EQ(jobs({{"width", 48}}), "width");
  EXPECT_EQ(jobs({{"height", 512}}), "height");
  EXPECT_EQ(jobs({{"seed", -2}}), "seed");
  EXPECT_EQ(jobs({{"seed", 1.5}}), "seed");
  EXPECT_EQ(jobs({{"prompt", 7}}), "prompt");
  EXPECT_EQ(jobs({{"prompt", std::string(5000, 'a')}}), "prompt");
  EXPECT_EQ(jobs({{"sampler", "ddim"}}), "sampler");
  EXPECT_EQ(jobs({{"strength", 0.5}}), "strength");  // without an init image
  EXPECT_EQ(jobs({{"init_image", "not base64!"}}), "init_image");
  EXPECT_EQ(jobs({{"init_image", base64_encode("not a picture")}}), "init_image");
  EXPECT_EQ(jobs({{"init_image", png64(picture(64, 64))}, {"strength", 0}}), "strength");
  EXPECT_EQ(jobs({{"init_image", png64(picture(64, 64))}, {"strength", 1.5}}), "strength");
  EXPECT_EQ(jobs({{"mask", png64(picture(64, 64))}}), "mask");  // without an init image
  EXPECT_EQ(jobs({{"init_image", png64(picture(64, 64))}, {"mask", png64(picture(32, 64))}}), "mask");
  EXPECT_EQ(jobs({{"init_image", png64(picture(1024, 64))}}), "init_image");  // larger than max_size
  EXPECT_EQ(bad_field([&] { parse_json_body("{\"prompt\": "); }), "body");
  EXPECT_EQ(bad_field([&] { parse_json_body("[1, 2]"); }), "body");
  // Nested deeper than 64 levels: refused while parsing, as in every file the project reads.
  const std::string deep = "{\"prompt\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(bad_field([&] { parse_json_body(deep); }), "body");
  EXPECT_NE(test::error_of([&] { parse_json_body(deep); }).find("nested deeper than 64 levels"), std::string::npos);
  EXPECT_EQ(jobs({{"prompt", "fine"}, {"steps", 20.0}}), "");  // 20.0 is an integer
}

TEST(ServeRequests, SizesTheModelWasNotTrainedAtAreRefused) {
  ServeLimits l = limits();
  l.trained_sizes = {64};
  EXPECT_EQ(parse_jobs_request(json{{"width", 64}, {"height", 64}}, l).request.width.value(), 64);
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"width", 128}}, l); }), "width");
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"height", 96}}, l); }), "height");
  EXPECT_EQ(bad_field([&] { parse_openai_generation(json{{"prompt", "x"}, {"size", "128x128"}}, l); }), "size");
  EXPECT_EQ(bad_field([&] { parse_a1111_request(json{{"width", 128}}, l, false); }), "width");
  try {
    parse_jobs_request(json{{"width", 128}}, l);
  } catch (const RequestError& e) {
    EXPECT_EQ(std::string(e.what()),
              "width 128: the model was trained at 64 (other sizes draw repeated, broken patterns); the server was started "
              "without --any-size");
  }
  // An init image drawn at its own (untrained) size is refused by its field.
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"init_image", png64(picture(128, 128))}}, l); }), "init_image");
  // --any-size: every valid size.
  l.any_size = true;
  EXPECT_EQ(parse_jobs_request(json{{"width", 128}}, l).request.width.value(), 128);
  EXPECT_EQ(parse_jobs_request(json{{"init_image", png64(picture(128, 128))}}, l).request.init_image->width, 128);
}

TEST(ServeRequests, OpenAiGenerationAndEdit) {
  const auto l = limits();
  auto job = parse_openai_generation(json{{"prompt", "a fox"}, {"n", 2}, {"size", "128x64"}, {"response_format", "b64_json"},
                                          {"guidance", 6}, {"steps", 8}, {"seed", 3}, {"negative_prompt", "blur"}},
                                     l);
  EXPECT_EQ(job.request.width.value(), 128);
  EXPECT_EQ(job.request.height.value(), 64);
  EXPECT_EQ(job.request.batch, 2);
  EXPECT_DOUBLE_EQ(job.request.cfg_scale.value(), 6);
  EXPECT_EQ(job.request.negative, "blur");
  auto gen = [&](json body) { return bad_field([&] { parse_openai_generation(body, l); }); };
  EXPECT_EQ(gen({{"n", 1}}), "prompt");
  EXPECT_EQ(gen({{"prompt", "x"}, {"size", "64"}}), "size");
  EXPECT_EQ(gen({{"prompt", "x"}, {"size", "1024x1024"}}), "size");
  EXPECT_EQ(gen({{"prompt", "x"}, {"response_format", "url"}}), "response_format");

  // Edits: an RGBA mask whose transparent part is to be edited.
  Image init = picture(64, 64, 50);
  std::vector<uint8_t> rgba(64 * 64 * 4, 255);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 32; ++x) rgba[(y * 64 + x) * 4 + 3] = 0;  // left half transparent
  std::string mask_png;
  stbi_write_png_to_func([](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), n); },
                         &mask_png, 64, 64, 4, rgba.data(), 64 * 4);
  auto edit = parse_openai_edit({{"prompt", "a cat"}, {"n", "1"}, {"steps", "6"}}, {{"image", encode_png(init)}, {"mask", mask_png}}, l);
  ASSERT_TRUE(edit.request.mask.has_value());
  EXPECT_EQ(edit.request.mask->rgb[0], 255);            // transparent → repaint (white)
  EXPECT_EQ(edit.request.mask->rgb[(63) * 3], 0);       // opaque → keep
  EXPECT_DOUBLE_EQ(edit.request.strength, 1.0);
  EXPECT_EQ(edit.request.steps.value(), 6);
  EXPECT_EQ(bad_field([&] { parse_openai_edit({{"prompt", "x"}}, {}, l); }), "image");
  EXPECT_EQ(bad_field([&] { parse_openai_edit({{"prompt", "x"}, {"n", "two"}}, {{"image", encode_png(init)}}, l); }), "n");
}

TEST(ServeRequests, Automatic1111) {
  const auto l = limits();
  auto t = parse_a1111_request(json{{"prompt", "a dog"}, {"negative_prompt", "cat"}, {"steps", 10}, {"cfg_scale", 7.5},
                                    {"width", 64}, {"height", 128}, {"seed", -1}, {"batch_size", 2}, {"n_iter", 2},
                                    {"sampler_name", "Euler a"}, {"restore_faces", false}},
                               l, false);
  EXPECT_EQ(t.request.batch, 4);
  EXPECT_EQ(t.request.sampler.value(), "euler");
  EXPECT_EQ(t.request.height.value(), 128);
  auto i = parse_a1111_request(json{{"prompt", "a dog"}, {"init_images", {png64(picture(64, 64))}},
                                    {"mask", png64(picture(64, 64, 255))}, {"denoising_strength", 0.4},
                                    {"inpainting_mask_invert", 1}, {"mask_blur", 8}, {"width", 64}, {"height", 64}},
                               l, true);
  ASSERT_TRUE(i.request.mask.has_value());
  EXPECT_EQ(i.request.mask->rgb[0], 0);  // inverted
  EXPECT_EQ(i.request.mask_blur, 8);
  EXPECT_DOUBLE_EQ(i.request.strength, 0.4);
  auto a = [&](json body, bool img2img) { return bad_field([&] { parse_a1111_request(body, l, img2img); }); };
  EXPECT_EQ(a({{"batch_size", 4}, {"n_iter", 4}}, false), "batch_size");
  EXPECT_EQ(a({{"sampler_name", "DPM++ 2M"}}, false), "sampler_name");
  EXPECT_EQ(a({{"prompt", "x"}}, true), "init_images");
  EXPECT_EQ(a({{"init_images", {1}}}, true), "init_images");
  EXPECT_EQ(a({{"init_images", {png64(picture(64, 64))}}, {"denoising_strength", 0}}, true), "denoising_strength");
}

TEST(ServeRequests, Automatic1111HiresFix) {
  const auto l = limits();
  // width × height is the first pass; the picture hr_scale (2 by default) times it, or hr_resize_x/y.
  auto t = parse_a1111_request(json{{"prompt", "a dog"}, {"width", 64}, {"height", 64}, {"enable_hr", true}, {"denoising_strength", 0.3}},
                               l, false);
  EXPECT_EQ(t.request.width.value(), 128);
  EXPECT_EQ(t.request.height.value(), 128);
  EXPECT_EQ(t.request.hires_from.value(), 64);
  EXPECT_EQ(t.request.hires_strength.value(), 0.3);
  t = parse_a1111_request(json{{"enable_hr", true}, {"width", 64}, {"height", 32}, {"hr_resize_x", 256}, {"hr_resize_y", 128}}, l, false);
  EXPECT_EQ(t.request.width.value(), 256);
  EXPECT_EQ(t.request.height.value(), 128);
  EXPECT_EQ(t.request.hires_from.value(), 64);
  EXPECT_FALSE(t.request.hires_strength.has_value());  // the model folder's
  // One of hr_resize_x/y alone: the other side in the first pass's proportions.
  t = parse_a1111_request(json{{"enable_hr", true}, {"width", 64}, {"height", 32}, {"hr_resize_x", 256}, {"hr_resize_y", 0}}, l, false);
  EXPECT_EQ(t.request.width.value(), 256);
  EXPECT_EQ(t.request.height.value(), 128);
  t = parse_a1111_request(json{{"enable_hr", true}, {"width", 64}, {"height", 32}, {"hr_resize_y", 64}}, l, false);
  EXPECT_EQ(t.request.width.value(), 128);
  EXPECT_EQ(t.request.height.value(), 64);
  // enable_hr false: one pass, whatever the model folder says; absent: the folder decides.
  EXPECT_EQ(parse_a1111_request(json{{"enable_hr", false}, {"width", 128}, {"height", 128}}, l, false).request.hires_from.value(), 0);
  EXPECT_FALSE(parse_a1111_request(json{{"width", 128}, {"height", 128}}, l, false).request.hires_from.has_value());
  auto a = [&](json body) { return bad_field([&] { parse_a1111_request(body, l, false); }); };
  EXPECT_EQ(a({{"enable_hr", "yes"}}), "enable_hr");
  EXPECT_EQ(a({{"enable_hr", true}, {"hr_scale", 8}, {"width", 64}}), "hr_scale");      // 512: above the server's 256
  EXPECT_EQ(a({{"enable_hr", true}, {"hr_scale", 1}}), "hr_scale");                     // no larger
  EXPECT_EQ(a({{"enable_hr", true}, {"hr_resize_x", 100}}), "hr_resize_x");             // not a multiple of 32
  // The jobs API: hires_from and hires_strength.
  auto j = parse_jobs_request(json{{"prompt", "x"}, {"width", 128}, {"hires_from", 64}, {"hires_strength", 0.5}}, l);
  EXPECT_EQ(j.request.hires_from.value(), 64);
  EXPECT_EQ(j.request.hires_strength.value(), 0.5);
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"hires_from", 50}}, l); }), "hires_from");
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"hires_strength", 0}}, l); }), "hires_strength");
  EXPECT_EQ(bad_field([&] { parse_jobs_request(json{{"hires_from", 64}, {"init_image", png64(picture(64, 64))}}, l); }), "hires_from");
  // A first pass at a size the model was not trained at: refused by its field, drawn under
  // --any-size (the pipeline is told so: it would refuse that first pass otherwise).
  auto trained = l;
  trained.trained_sizes = {64, 128};
  const json at96 = {{"prompt", "x"}, {"width", 128}, {"height", 128}, {"hires_from", 96}};
  EXPECT_EQ(bad_field([&] { parse_jobs_request(at96, trained); }), "hires_from");
  EXPECT_FALSE(parse_jobs_request(json{{"width", 128}, {"hires_from", 64}}, trained).request.hires_any_size);
  trained.any_size = true;
  EXPECT_TRUE(parse_jobs_request(at96, trained).request.hires_any_size);
  EXPECT_TRUE(parse_a1111_request(json{{"enable_hr", true}, {"width", 96}, {"height", 96}}, trained, false).request.hires_any_size);
}

}  // namespace
}  // namespace luminars::serve

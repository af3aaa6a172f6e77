// The fuzz target's body for the server's request bodies (src/serve/api_requests.h): the requests
// entry of fuzz_entries.h, apart so that the test binary takes it only where the server is built.
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "fuzz_entries.h"
#include "core/utf8.h"
#include "serve/api_requests.h"
#include "serve/server.h"

namespace luminars::fuzz {

namespace {

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("fuzz invariant broken: " + what);
}

bool fits(const std::optional<Image>& image) {
  return !image || (image->width > 0 && image->height > 0 &&
                    image->rgb.size() == static_cast<std::size_t>(image->width) * image->height * 3);
}

// What every accepted request promises the worker: counts, steps and sizes in the limits, a mask
// only with an init image of its size.
void check_job(const serve::ImageJob& job, const serve::ServeLimits& l) {
  const GenerationRequest& r = job.request;
  expect(r.batch >= 1 && r.batch <= l.max_count, "batch in [1, max_count]");
  expect(r.steps && *r.steps >= 1 && *r.steps <= l.max_steps, "steps in [1, max_steps]");
  expect(r.cfg_scale && r.sampler && (*r.sampler == "euler" || *r.sampler == "heun"), "cfg_scale and sampler set");
  for (const auto& side : {r.width, r.height})
    expect(!side || (*side >= l.size_multiple && *side <= l.max_size && *side % l.size_multiple == 0),
           "width and height multiples of size_multiple up to max_size");
  expect((r.width && r.height) || r.init_image, "a size, or an init image to take it from");
  expect(fits(r.init_image) && fits(r.mask), "images hold width × height × 3 bytes");
  expect(!r.mask || (r.init_image && r.mask->width == r.init_image->width && r.mask->height == r.init_image->height),
         "a mask comes with an init image of its size");
  expect(!r.init_image || (r.strength > 0 && r.strength <= 1), "strength in (0, 1]");
  expect(r.mask_blur >= 0 && r.mask_blur <= 64, "mask_blur in [0, 64]");
  expect(r.prompt.size() <= l.max_prompt_bytes && r.negative.size() <= l.max_prompt_bytes, "prompts within max_prompt_bytes");
}

}  // namespace

void requests_entry(const uint8_t* data, std::size_t size) {
  if (size == 0) return;
  serve::ServeLimits limits;
  limits.size_multiple = 32;
  limits.max_size = 256;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int api = (data[0] & 15) % 5;
  if (api < 4) {
    const nlohmann::json body = serve::parse_json_body(rest);
    switch (api) {
      case 0: check_job(serve::parse_jobs_request(body, limits), limits); break;
      case 1: check_job(serve::parse_openai_generation(body, limits), limits); break;
      default: check_job(serve::parse_a1111_request(body, limits, /*img2img=*/api == 3), limits); break;
    }
    return;
  }
  // A multipart form: "name=value" fields, "@name=bytes" files (a later part of the same name wins).
  std::map<std::string, std::string> fields, files;
  for (std::string_view part : split_parts(rest)) {
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const bool file = !part.empty() && part.front() == '@';
    std::string name(part.substr(file ? 1 : 0, eq - (file ? 1 : 0)));
    (file ? files : fields)[std::move(name)] = std::string(part.substr(eq + 1));
  }
  const serve::ImageJob job = serve::parse_openai_edit(fields, files, limits);
  check_job(job, limits);
  expect(job.request.init_image.has_value(), "an edit has its image");
}

}  // namespace luminars::fuzz

namespace luminars::fuzz {

namespace {

// A grey picture of the asked size for every image of the batch: the HTTP path, not the model, is
// under test.
Generation stand_in(const GenerationRequest& r) {
  Generation g;
  const int w = static_cast<int>(r.width.value_or(r.init_image ? r.init_image->width : 32));
  const int h = static_cast<int>(r.height.value_or(r.init_image ? r.init_image->height : 32));
  for (int64_t i = 0; i < r.batch; ++i) {
    Image image;
    image.width = w;
    image.height = h;
    image.rgb.assign(static_cast<std::size_t>(w) * h * 3, 128);
    g.images.push_back(std::move(image));
    GenerationParameters p;
    p.prompt = r.prompt;
    p.seed = r.seed + static_cast<uint64_t>(i);
    p.width = w;
    p.height = h;
    g.parameters.push_back(p);
  }
  return g;
}

serve::ImageServer& fuzz_server(bool with_key) {
  auto make = [](bool key) {
    serve::ServerOptions o;
    o.port = 0;
    o.queue = 4;
    o.max_size = 256;
    o.max_steps = 50;
    o.max_count = 4;
    o.max_body_bytes = 1 << 20;
    o.log_requests = false;
    o.wait_seconds = 10;
    if (key) o.api_key = "fuzz-key";
    serve::ModelInfo m;
    m.name = "fuzz";
    m.resolution = 32;
    m.size_multiple = 32;
    m.steps = 2;
    return std::make_unique<serve::ImageServer>(o, m, stand_in);
  };
  static auto open = make(false);
  static auto keyed = make(true);
  return with_key ? *keyed : *open;
}

// One answer as sent: "HTTP/1.1 NNN Reason\r\n" headers "\r\n" body.
void check_answer(const std::string& wire) {
  expect(wire.rfind("HTTP/1.", 0) == 0 && wire.size() >= 12, "an answer starts with a status line");
  const int status = std::stoi(wire.substr(9, 3));
  expect(status >= 100 && status < 500, "no answer is a 5xx (got " + std::to_string(status) + ")");
  const auto head_end = wire.find("\r\n\r\n");
  expect(head_end != std::string::npos, "an answer's head ends with a blank line");
  const std::string head = wire.substr(0, head_end), body = wire.substr(head_end + 4);
  if (head.find("Content-Type: application/json") != std::string::npos) {
    expect(is_valid_utf8(body), "a JSON answer is valid UTF-8");
    expect(nlohmann::json::accept(body), "a JSON answer parses");
  }
}

}  // namespace

void http_entry(const uint8_t* data, std::size_t size) {
  if (size == 0) return;
  auto& server = fuzz_server((data[0] & 1) != 0);
  const std::string_view raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (const auto& answer : server.respond_to_bytes(raw)) check_answer(answer);
}

}  // namespace luminars::fuzz

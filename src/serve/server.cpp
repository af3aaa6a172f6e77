#include "serve/server.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/safetensors.h"
#include "pipeline/lora_prompt.h"
#include "serve/api_requests.h"
#include "serve/http_policy.h"
#include "serve/job_queue.h"
#include "serve/router.h"
#include "serve/web_page.h"

namespace luminars::serve {

namespace {

using nlohmann::json;

// Every JSON answer: invalid UTF-8 anywhere in it (a client's text echoed back) becomes U+FFFD.
void send_json(HttpResponse& res, int status, const json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(HttpResponse& res, int status, const std::string& message, const std::string& param = "",
                const std::string& type = "invalid_request_error") {
  HttpResponse e = error_response(status, message, param, type);  // headers and log note kept
  res.status = e.status;
  res.content_type = std::move(e.content_type);
  res.body = std::move(e.body);
}

// The A1111 `info` JSON of a finished job.
json a1111_info(const GenerationRequest& r, const Generation& g) {
  const auto& p = g.parameters.front();
  json seeds = json::array(), texts = json::array();
  for (const auto& q : g.parameters) {
    seeds.push_back(q.seed);
    texts.push_back(format_parameters(q));
  }
  json info = {{"prompt", p.prompt},   {"negative_prompt", p.negative}, {"seed", p.seed},         {"all_seeds", seeds},
               {"steps", p.steps},     {"cfg_scale", p.cfg_scale},      {"width", p.width},       {"height", p.height},
               {"sampler_name", p.sampler == "heun" ? "Heun" : "Euler"}, {"sd_model_name", p.model},
               {"batch_size", static_cast<int64_t>(g.images.size())},    {"infotexts", texts}};
  info["denoising_strength"] = p.strength ? json(*p.strength) : json(nullptr);
  (void)r;
  return info;
}

}  // namespace

struct ImageServer::State {
  ServerOptions options;
  ModelInfo model;
  GenerateFn generate;
  ServeLimits limits;
  JobQueue queue;
  Router router;
  std::unique_ptr<HttpEngine> engine;
  std::unique_ptr<HttpServer> http;  // last: destroyed first, while the rest still stands
  std::atomic<bool> shutting_down{false};
  std::once_flag stopped;

  State(ServerOptions o, ModelInfo m, GenerateFn g)
      : options(std::move(o)), model(std::move(m)), generate(std::move(g)),
        queue(JobQueueOptions{options.queue, options.history}) {
    limits.max_steps = options.max_steps;
    limits.max_count = options.max_count;
    limits.max_size = options.max_size;
    limits.size_multiple = model.size_multiple;
    limits.resolution = model.resolution;
    limits.trained_sizes = model.trained_sizes;
    limits.any_size = options.any_size;
    limits.max_prompt_bytes = options.max_prompt_bytes;
    limits.default_steps = model.steps;
    limits.default_cfg_scale = model.cfg_scale;
    limits.default_sampler = model.sampler;
    limits.lora_dir = model.lora_dir;
  }

  // The worker's part of a job: generate, then encode every picture with its parameters.
  Work work_for(GenerationRequest request) {
    return [this, request](JobContext& ctx) mutable {
      request.on_step = [&ctx](int64_t i, int64_t n) { ctx.progress(i, n); };
      request.cancelled = [&ctx] { return ctx.cancelled(); };
      Generation g = generate(request);
      JobResult out;
      for (std::size_t i = 0; i < g.images.size(); ++i) {
        out.images.push_back(encode_png(g.images[i], {{"parameters", format_parameters(g.parameters[i])}}));
        out.seeds.push_back(g.parameters[i].seed);
      }
      out.parameters = format_parameters(g.parameters.front());
      out.info = a1111_info(request, g).dump();
      return out;
    };
  }

  // Refuses a request that asks more work than one request may (ServerOptions::max_work).
  void check_work(const GenerationRequest& r) const {
    const int64_t w = r.width.value_or(model.resolution), h = r.height.value_or(model.resolution);
    const int64_t steps = r.steps.value_or(model.steps), n = std::max<int64_t>(1, r.batch);
    const double work = static_cast<double>(w) * static_cast<double>(h) * static_cast<double>(n) * static_cast<double>(steps);
    if (work > static_cast<double>(options.max_work))
      throw RequestError("steps", "the request asks " + std::to_string(n) + " pictures of " + std::to_string(w) + "x" +
                                      std::to_string(h) + " at " + std::to_string(steps) +
                                      " steps; one request may ask at most width x height x pictures x steps = " +
                                      std::to_string(options.max_work) + " (fewer pictures, steps or pixels)");
  }

  void note_prompt(const GenerationRequest& r, HttpResponse& res) const {
    if (options.log_prompts) res.log_note = "prompt=" + json(r.prompt).dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // Queues a job; on a full queue answers 429 with Retry-After (503 while shutting down) and
  // returns nullopt.
  std::optional<std::string> submit(const GenerationRequest& r, HttpResponse& res) {
    check_work(r);
    note_prompt(r, res);
    auto id = shutting_down ? std::nullopt : queue.submit(work_for(r), r.steps.value_or(model.steps));
    if (!id && shutting_down) {
      res.set_header("Retry-After", "5");
      send_error(res, 503, "the server is shutting down", "", "server_error");
    } else if (!id) {
      const double wait = std::max(1.0, std::ceil(queue.retry_after_seconds()));
      res.set_header("Retry-After", std::to_string(static_cast<int64_t>(wait)));
      send_error(res, 429, "the server is busy: " + std::to_string(queue.queued()) + " jobs are waiting; retry in " +
                               std::to_string(static_cast<int64_t>(wait)) + " s",
                 "", "rate_limit_error");
    }
    return id;
  }

  // Synchronous APIs: queue, wait, then answer with the result or an error. A client that hangs up
  // cancels its job.
  std::shared_ptr<const JobResult> run_to_end(const GenerationRequest& r, const HttpRequest& req, HttpResponse& res) {
    auto id = submit(r, res);
    if (!id) return nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options.wait_seconds * 1000));
    std::optional<JobInfo> info;
    for (;;) {
      info = queue.wait(*id, std::chrono::milliseconds(200));
      if (!info || is_finished(info->state) || std::chrono::steady_clock::now() >= deadline) break;
      if (req.client_gone()) {
        queue.cancel(*id);
        send_error(res, 499, "the client closed the connection", "", "client_closed");
        return nullptr;
      }
    }
    if (!info) {
      send_error(res, 500, "the job was lost", "", "server_error");
    } else if (info->state == JobState::Done) {
      return info->result;
    } else if (info->state == JobState::Failed) {
      send_error(res, 500, "generation failed: " + info->error, "", "server_error");
    } else if (info->state == JobState::Cancelled) {
      send_error(res, 503, "the job was cancelled (the server is shutting down)", "", "server_error");
    } else {
      queue.cancel(*id);
      send_error(res, 504, "the job did not finish within " + std::to_string(static_cast<int64_t>(options.wait_seconds)) + " s",
                 "", "server_error");
    }
    return nullptr;
  }

  json job_json(const JobInfo& info) const {
    json j = {{"id", info.id}, {"status", to_string(info.state)}, {"step", info.step}, {"steps", info.steps}};
    if (info.state == JobState::Queued) j["position"] = info.position;
    if (info.state == JobState::Failed) j["error"] = info.error;
    if (info.result) {
      json urls = json::array();
      for (std::size_t k = 0; k < info.result->images.size(); ++k)
        urls.push_back("/api/jobs/" + info.id + "/images/" + std::to_string(k) + ".png");
      j["images"] = urls;
      j["seeds"] = info.result->seeds;
      j["parameters"] = info.result->parameters;
    }
    j["queued_seconds"] = info.queued_seconds;
    j["run_seconds"] = info.run_seconds;
    return j;
  }

  // A handler body that turns request errors into 400s naming the field.
  template <typename F>
  Handler checked(F f) {
    return [f](const HttpRequest& req, HttpResponse& res) {
      try {
        f(req, res);
      } catch (const RequestError& e) {
        send_error(res, 400, e.what(), e.field());
      } catch (const HttpError& e) {
        send_error(res, e.status(), e.what(), e.field());
      } catch (const Error& e) {
        send_error(res, 400, e.what());
      }
    };
  }

  void routes();
};

void ImageServer::State::routes() {
  using R = const HttpRequest&;
  using W = HttpResponse&;
  // -------------------------------------------------------------------------------------------
  // The page and what it asks.
  // -------------------------------------------------------------------------------------------
  router.add("GET", "/", BodyKind::None, false, [](R, W res) {
    res.content_type = "text/html; charset=utf-8";
    res.body = std::string(index_html());
  });
  router.add("GET", "/health", BodyKind::None, false, [this](R, W res) {
    send_json(res, 200, {{"status", shutting_down ? "stopping" : "ok"}, {"model", model.name}, {"queued", queue.queued()},
                         {"capacity", queue.capacity()}, {"auth", !options.api_key.empty()}});
  });
  router.add("GET", "/api/config", BodyKind::None, false, [this](R, W res) {
    send_json(res, 200,
              {{"model", model.name},
               {"resolution", model.resolution},
               {"size_multiple", model.size_multiple},
               {"trained_sizes", model.trained_sizes},  // the page offers these; others get 400 unless any_size
               {"any_size", limits.any_size},
               {"max_size", limits.max_size},
               {"max_steps", limits.max_steps},
               {"max_count", limits.max_count},
               {"max_work", options.max_work},
               {"samplers", {"euler", "heun"}},
               {"defaults", {{"steps", model.steps}, {"cfg_scale", model.cfg_scale}, {"sampler", model.sampler}, {"strength", 0.75},
                             // pictures larger than hires_from are drawn in two passes (0: one pass)
                             {"hires_from", model.hires_from}, {"hires_strength", model.hires_strength}}}});
  });

  // -------------------------------------------------------------------------------------------
  // Jobs: queue, poll, download, cancel.
  // -------------------------------------------------------------------------------------------
  router.add("POST", "/api/jobs", BodyKind::Json, true, checked([this](R req, W res) {
               auto job = parse_jobs_request(parse_json_body(req.body), limits);
               if (auto id = submit(job.request, res)) send_json(res, 202, {{"id", *id}, {"status", "queued"}});
             }));
  router.add("GET", R"(/api/jobs/([0-9a-f]{1,32}))", BodyKind::None, false, [this](R req, W res) {
    auto info = queue.info(req.matches[0]);
    if (!info) return send_error(res, 404, "no job " + req.matches[0] + " (unknown, or forgotten)", "id");
    send_json(res, 200, job_json(*info));
  });
  router.add("GET", R"(/api/jobs/([0-9a-f]{1,32})/images/(\d{1,3})\.png)", BodyKind::None, false, [this](R req, W res) {
    auto info = queue.info(req.matches[0]);
    const std::size_t k = std::stoul(req.matches[1]);
    if (!info || !info->result || k >= info->result->images.size())
      return send_error(res, 404, "no image " + req.matches[1] + " of job " + req.matches[0], "id");
    res.set_header("Content-Disposition", "inline; filename=\"luminars-" + std::to_string(info->result->seeds[k]) + ".png\"");
    res.content_type = "image/png";
    res.body = info->result->images[k];
  });
  router.add("DELETE", R"(/api/jobs/([0-9a-f]{1,32}))", BodyKind::None, false, [this](R req, W res) {
    const std::string& id = req.matches[0];
    if (queue.cancel(id)) return send_json(res, 200, {{"id", id}, {"status", "cancelled"}});
    auto info = queue.info(id);
    if (!info) return send_error(res, 404, "no job " + id, "id");
    send_error(res, 409, "job " + id + " has already finished (" + to_string(info->state) + ")", "id");
  });

  // -------------------------------------------------------------------------------------------
  // OpenAI images API.
  // -------------------------------------------------------------------------------------------
  auto openai_answer = [](const JobResult& r, W res) {
    json data = json::array();
    for (const auto& png : r.images) data.push_back({{"b64_json", base64_encode(png)}});
    send_json(res, 200, {{"created", static_cast<int64_t>(std::time(nullptr))}, {"data", data}});
  };
  router.add("POST", "/v1/images/generations", BodyKind::Json, true, checked([this, openai_answer](R req, W res) {
               auto job = parse_openai_generation(parse_json_body(req.body), limits);
               if (auto r = run_to_end(job.request, req, res)) openai_answer(*r, res);
             }));
  router.add("POST", "/v1/images/edits", BodyKind::Multipart, true, checked([this, openai_answer](R req, W res) {
               auto job = parse_openai_edit(req.fields, req.files, limits);
               if (auto r = run_to_end(job.request, req, res)) openai_answer(*r, res);
             }));
  router.add("GET", "/v1/models", BodyKind::None, false, [this](R, W res) {
    send_json(res, 200, {{"object", "list"}, {"data", {{{"id", model.name}, {"object", "model"}, {"created", 0}, {"owned_by", "luminars"}}}}});
  });

  // -------------------------------------------------------------------------------------------
  // AUTOMATIC1111 web API.
  // -------------------------------------------------------------------------------------------
  auto a1111 = [this](bool img2img) {
    return checked([this, img2img](R req, W res) {
      auto job = parse_a1111_request(parse_json_body(req.body), limits, img2img);
      auto r = run_to_end(job.request, req, res);
      if (!r) return;
      json images = json::array();
      for (const auto& png : r->images) images.push_back(base64_encode(png));
      const auto& q = job.request;
      json parameters = {{"prompt", q.prompt},       {"negative_prompt", q.negative}, {"steps", q.steps.value_or(model.steps)},
                         {"cfg_scale", q.cfg_scale.value_or(model.cfg_scale)},          {"seed", q.seed},
                         {"batch_size", q.batch},    {"sampler_name", q.sampler.value_or(model.sampler)}};
      if (q.width) parameters["width"] = *q.width;
      if (q.height) parameters["height"] = *q.height;
      if (img2img) parameters["denoising_strength"] = q.strength;
      send_json(res, 200, {{"images", images}, {"parameters", parameters}, {"info", r->info}});
    });
  };
  router.add("POST", "/sdapi/v1/txt2img", BodyKind::Json, true, a1111(false));
  router.add("POST", "/sdapi/v1/img2img", BodyKind::Json, true, a1111(true));
  // AUTOMATIC1111's list of LoRAs: name, alias, path and the file's metadata (trigger words, base, ...).
  router.add("GET", "/sdapi/v1/loras", BodyKind::None, false, [this](R, W res) {
    json list = json::array();
    for (const auto& name : list_loras(model.lora_dir)) {
      const std::string path = (std::filesystem::path(model.lora_dir) / (name + ".safetensors")).string();
      json metadata = json::object();
      try {
        const safetensors::Reader file(path);
        for (const auto& [k, v] : file.metadata()) metadata[k] = v;
      } catch (const std::exception& e) {
        metadata = {{"error", e.what()}};
      }
      list.push_back({{"name", name}, {"alias", name}, {"path", path}, {"metadata", metadata}});
    }
    send_json(res, 200, list);
  });
  router.add("GET", "/sdapi/v1/sd-models", BodyKind::None, false, [this](R, W res) {
    send_json(res, 200, json::array({{{"title", model.name}, {"model_name", model.name}, {"hash", nullptr},
                                      {"sha256", nullptr}, {"filename", model.path}, {"config", nullptr}}}));
  });
}

ImageServer::ImageServer(ServerOptions options, ModelInfo model, GenerateFn generate)
    : state_(std::make_unique<State>(std::move(options), std::move(model), std::move(generate))) {
  auto& s = *state_;
  s.routes();
  HttpPolicy policy;
  policy.host = s.options.host;
  policy.api_key = s.options.api_key;
  policy.cors_origins = s.options.cors_allow_origins;
  HttpLimits http_limits = s.options.http;
  http_limits.max_body_bytes = s.options.max_body_bytes;
  s.engine = std::make_unique<HttpEngine>(s.router, policy, http_limits);
  std::function<void(const std::string&)> log;
  if (s.options.log_requests) log = [](const std::string& line) { std::cerr << "luminars serve: " << line << std::endl; };
  s.http = std::make_unique<HttpServer>(*s.engine, std::move(log));
}

ImageServer::~ImageServer() {
  stop();
  state_->http.reset();  // waits for run() and the handlers to end
}

void check_exposure(const ServerOptions& o) {
  if (!HttpPolicy::is_loopback(o.host) && o.api_key.empty() && !o.insecure)
    throw Error("refusing to listen on " + o.host +
                " without an API key: anyone who can reach this machine could use the server (give --api-key KEY, or "
                "--insecure to allow it anyway)");
}

int ImageServer::bind() {
  auto& s = *state_;
  check_exposure(s.options);
  return s.http->bind(s.options.host, s.options.port);
}

void ImageServer::run() { state_->http->run(); }

std::vector<std::string> ImageServer::respond_to_bytes(std::string_view raw) {
  return serve::respond_to_bytes(*state_->engine, raw);
}

void ImageServer::stop() {
  auto& s = *state_;
  std::call_once(s.stopped, [&] {
    s.shutting_down = true;
    s.queue.shutdown();  // waiting calls get their answers (cancelled) before the listener closes
    s.http->stop();
  });
}

}  // namespace luminars::serve

#include "serve/server.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "serve/api_requests.h"
#include "serve/job_queue.h"
#include "serve/web_page.h"

namespace luminars::serve {

namespace {

using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& type = "invalid_request_error") {
  json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  send_json(res, status, {{"error", e}});
}

std::string status_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "the request body is too large";
    default: return "HTTP error " + std::to_string(status);
  }
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
  httplib::Server http;
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

  // Queues a job; on a full queue answers 429 with Retry-After and returns nullopt.
  std::optional<std::string> submit(const GenerationRequest& r, httplib::Response& res) {
    auto id = queue.submit(work_for(r), r.steps.value_or(model.steps));
    if (!id) {
      const double wait = std::max(1.0, std::ceil(queue.retry_after_seconds()));
      res.set_header("Retry-After", std::to_string(static_cast<int64_t>(wait)));
      send_error(res, 429, "the server is busy: " + std::to_string(queue.queued()) + " jobs are waiting; retry in " +
                               std::to_string(static_cast<int64_t>(wait)) + " s",
                 "", "rate_limit_error");
    }
    return id;
  }

  // Synchronous APIs: queue, wait, then answer with the result or an error.
  std::shared_ptr<const JobResult> run_to_end(const GenerationRequest& r, httplib::Response& res) {
    auto id = submit(r, res);
    if (!id) return nullptr;
    auto info = queue.wait(*id, std::chrono::milliseconds(static_cast<int64_t>(options.wait_seconds * 1000)));
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
  httplib::Server::Handler checked(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const RequestError& e) {
        send_error(res, 400, e.what(), e.field());
      } catch (const Error& e) {
        send_error(res, 400, e.what());
      }
    };
  }

  void routes();
};

void ImageServer::State::routes() {
  // -------------------------------------------------------------------------------------------
  // The page and what it asks.
  // -------------------------------------------------------------------------------------------
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(index_html()), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"model", model.name}, {"queued", queue.queued()}, {"capacity", queue.capacity()}});
  });
  http.Get("/api/config", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"model", model.name},
               {"resolution", model.resolution},
               {"size_multiple", model.size_multiple},
               {"max_size", limits.max_size},
               {"max_steps", limits.max_steps},
               {"max_count", limits.max_count},
               {"samplers", {"euler", "heun"}},
               {"defaults", {{"steps", model.steps}, {"cfg_scale", model.cfg_scale}, {"sampler", model.sampler}, {"strength", 0.75}}}});
  });

  // -------------------------------------------------------------------------------------------
  // Jobs: queue, poll, download, cancel.
  // -------------------------------------------------------------------------------------------
  http.Post("/api/jobs", checked([this](const httplib::Request& req, httplib::Response& res) {
              auto job = parse_jobs_request(parse_json_body(req.body), limits);
              if (auto id = submit(job.request, res)) send_json(res, 202, {{"id", *id}, {"status", "queued"}});
            }));
  http.Get(R"(/api/jobs/([0-9a-f]{1,32}))", [this](const httplib::Request& req, httplib::Response& res) {
    auto info = queue.info(req.matches[1]);
    if (!info) return send_error(res, 404, "no job " + std::string(req.matches[1]) + " (unknown, or forgotten)", "id");
    send_json(res, 200, job_json(*info));
  });
  http.Get(R"(/api/jobs/([0-9a-f]{1,32})/images/(\d{1,3})\.png)", [this](const httplib::Request& req, httplib::Response& res) {
    auto info = queue.info(req.matches[1]);
    const std::size_t k = std::stoul(req.matches[2]);
    if (!info || !info->result || k >= info->result->images.size())
      return send_error(res, 404, "no image " + std::string(req.matches[2]) + " of job " + std::string(req.matches[1]), "id");
    res.set_header("Content-Disposition", "inline; filename=\"luminars-" + std::to_string(info->result->seeds[k]) + ".png\"");
    res.set_content(info->result->images[k], "image/png");
  });
  http.Delete(R"(/api/jobs/([0-9a-f]{1,32}))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (queue.cancel(id)) return send_json(res, 200, {{"id", id}, {"status", "cancelled"}});
    auto info = queue.info(id);
    if (!info) return send_error(res, 404, "no job " + id, "id");
    send_error(res, 409, "job " + id + " has already finished (" + to_string(info->state) + ")", "id");
  });

  // -------------------------------------------------------------------------------------------
  // OpenAI images API.
  // -------------------------------------------------------------------------------------------
  auto openai_answer = [](const JobResult& r, httplib::Response& res) {
    json data = json::array();
    for (const auto& png : r.images) data.push_back({{"b64_json", base64_encode(png)}});
    send_json(res, 200, {{"created", static_cast<int64_t>(std::time(nullptr))}, {"data", data}});
  };
  http.Post("/v1/images/generations", checked([this, openai_answer](const httplib::Request& req, httplib::Response& res) {
              auto job = parse_openai_generation(parse_json_body(req.body), limits);
              if (auto r = run_to_end(job.request, res)) openai_answer(*r, res);
            }));
  http.Post("/v1/images/edits", checked([this, openai_answer](const httplib::Request& req, httplib::Response& res) {
              if (!req.is_multipart_form_data())
                throw RequestError("body", "the body must be multipart/form-data with image, mask and prompt");
              std::map<std::string, std::string> fields, files;
              for (const auto& [name, part] : req.files) (part.filename.empty() ? fields : files)[name] = part.content;
              auto job = parse_openai_edit(fields, files, limits);
              if (auto r = run_to_end(job.request, res)) openai_answer(*r, res);
            }));
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", {{{"id", model.name}, {"object", "model"}, {"created", 0}, {"owned_by", "luminars"}}}}});
  });

  // -------------------------------------------------------------------------------------------
  // AUTOMATIC1111 web API.
  // -------------------------------------------------------------------------------------------
  auto a1111 = [this](bool img2img) {
    return checked([this, img2img](const httplib::Request& req, httplib::Response& res) {
      auto job = parse_a1111_request(parse_json_body(req.body), limits, img2img);
      auto r = run_to_end(job.request, res);
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
  http.Post("/sdapi/v1/txt2img", a1111(false));
  http.Post("/sdapi/v1/img2img", a1111(true));
  http.Get("/sdapi/v1/sd-models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, json::array({{{"title", model.name}, {"model_name", model.name}, {"hash", nullptr},
                                      {"sha256", nullptr}, {"filename", model.path}, {"config", nullptr}}}));
  });

  // -------------------------------------------------------------------------------------------
  // Errors as JSON: unknown paths, oversized bodies, handler exceptions.
  // -------------------------------------------------------------------------------------------
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404 ? "no such endpoint: " + req.method + " " + req.path : status_text(res.status);
    send_error(res, res.status, message, res.status == 413 ? "body" : "");
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "internal error: " + what, "", "server_error");
  });
}

ImageServer::ImageServer(ServerOptions options, ModelInfo model, GenerateFn generate)
    : state_(std::make_unique<State>(std::move(options), std::move(model), std::move(generate))) {
  auto& s = *state_;
  const int threads = std::max(2, s.options.threads);
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  s.http.set_payload_max_length(s.options.max_body_bytes);
  s.http.set_keep_alive_timeout(2);
  s.http.set_read_timeout(30);
  s.routes();
}

ImageServer::~ImageServer() { stop(); }

int ImageServer::bind() {
  auto& s = *state_;
  const int port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                                       : (s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1);
  if (port < 0)
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (in use, or not an address of this machine)");
  return port;
}

void ImageServer::run() { state_->http.listen_after_bind(); }

void ImageServer::stop() {
  auto& s = *state_;
  std::call_once(s.stopped, [&] {
    s.queue.shutdown();  // waiting calls get their answers (cancelled) before the listener closes
    s.http.stop();
  });
}

}  // namespace luminars::serve

// luminars serve: the model loaded once behind a local HTTP server (web page, jobs API, OpenAI and
// AUTOMATIC1111 APIs). SIGINT and SIGTERM stop it gracefully.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "commands.h"
#include "pipeline/export_model.h"
#include "pipeline/lora_prompt.h"
#include "pipeline/pipeline.h"
#include "serve/server.h"

namespace luminars::cli {

namespace {
int stop_pipe = -1;  // written by the signal handler
}  // namespace

void register_serve(CLI::App& app, GlobalOptions& g) {
  auto po = std::make_shared<PipelineOptions>();
  auto so = std::make_shared<serve::ServerOptions>();
  struct Extra {
    bool no_bf16 = false;
    double max_body_mb = 32;
    bool quiet = false;
  };
  auto x = std::make_shared<Extra>();
  auto* cmd = app.add_subcommand("serve", "serve a model over HTTP: web page, jobs API, OpenAI and AUTOMATIC1111 APIs");
  cmd->add_option("--model", po->model_dir, "model folder; default: the shipped models/emoji");
  cmd->add_option("--lora-dir", po->lora_dir,
                  "folder of LoRAs requests may name (<lora:NAME:WEIGHT> or \"loras\"); default: the model folder's loras/");
  cmd->add_option("--host", so->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", so->port, "port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--queue", so->queue, "jobs that may wait behind the running one (more: 429)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--max-size", so->max_size, "largest width or height in pixels")->capture_default_str()->check(CLI::Range(8, 4096));
  cmd->add_option("--max-steps", so->max_steps, "most sampling steps a request may ask")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--max-count", so->max_count, "most images per request")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--max-body-mb", x->max_body_mb, "largest request body in MiB (more: 413)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1024.0));
  cmd->add_option("--max-work", so->max_work,
                  "most work one request may ask: width x height x pictures x steps (more: 400)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--api-key", so->api_key,
                  "require 'Authorization: Bearer KEY' on every route but / and /health (default: $LUMINARS_API_KEY)")
      ->envname("LUMINARS_API_KEY");
  cmd->add_flag("--insecure", so->insecure, "allow listening beyond loopback without an API key");
  cmd->add_option("--cors-allow-origin", so->cors_allow_origins,
                  "a web origin (e.g. http://localhost:3000, or *) whose pages may call the API; repeatable");
  cmd->add_flag("--log-prompts", so->log_prompts, "put each request's prompt in its log line");
  cmd->add_flag("--quiet", x->quiet, "no log line per request");
  cmd->add_flag("--any-size", so->any_size,
                "accept sizes the model was not trained at (luminars.json trained_sizes; others get 400), "
                "a request's two-pass first size included");
  po->device = "auto";
  cmd->add_option("--device", po->device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--no-bf16", x->no_bf16, "sample in float32 (default: bf16 autocast on CUDA and on CPUs with native bf16)");
  cmd->callback([po, so, x, &g] {
    apply_global(g);
    if (po->model_dir.empty()) po->model_dir = default_model_dir();
    if (po->lora_dir.empty()) po->lora_dir = default_lora_dir(po->model_dir);
    po->bf16 = !x->no_bf16;
    po->keep_loaded = true;
    so->max_body_bytes = static_cast<std::size_t>(x->max_body_mb * 1024 * 1024);
    so->log_requests = !x->quiet;
    serve::check_exposure(*so);  // before the model loads: fail fast

    Pipeline pipeline(*po);
    serve::ModelInfo model;
    model.name = pipeline.model_name();
    model.path = pipeline.folder().dir;
    model.resolution = pipeline.resolution();
    model.size_multiple = pipeline.size_multiple();
    model.trained_sizes = pipeline.folder().trained_sizes;
    model.steps = pipeline.folder().sampler.steps;
    model.hires_from = pipeline.folder().sampler.hires_from;
    model.hires_strength = pipeline.folder().sampler.hires_strength;
    model.cfg_scale = pipeline.folder().sampler.cfg_scale;
    model.sampler = pipeline.folder().sampler.method;
    model.lora_dir = po->lora_dir;
    serve::ImageServer server(*so, model, [&pipeline](const GenerationRequest& r) { return pipeline.generate(r); });
    const int port = server.bind();
    std::cout << "luminars serve: model " << model.name << " (" << model.resolution << " px); listening on http://" << so->host
              << ":" << port << " (Ctrl-C stops)" << std::endl;

    // SIGINT/SIGTERM: the handler only writes the signal's number to a pipe (async-signal-safe);
    // a watcher thread reads it and stops the server: the running job ends at its next step,
    // waiting ones are cancelled, open requests get their answers.
    int wake[2];
    if (pipe(wake) != 0) throw Error("cannot create a pipe for signal handling");
    stop_pipe = wake[1];
    struct sigaction sa {};
    sa.sa_handler = [](int sig) {
      const char byte = static_cast<char>(sig);
      [[maybe_unused]] auto n = write(stop_pipe, &byte, 1);
    };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::thread watcher([&server, fd = wake[0]] {
      char sig = 0;
      if (read(fd, &sig, 1) == 1 && sig != 0) {
        std::cerr << "luminars serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping" << std::endl;
        server.stop();
      }
    });
    server.run();
    server.stop();
    const char zero = 0;  // wakes the watcher when the server ended without a signal
    [[maybe_unused]] auto n = write(wake[1], &zero, 1);
    watcher.join();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    close(wake[0]);
    close(wake[1]);
    std::cout << "luminars serve: stopped" << std::endl;
  });
}

}  // namespace luminars::cli

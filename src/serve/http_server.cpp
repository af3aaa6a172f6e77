#include "serve/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/utf8.h"
#include "serve/content_decoding.h"
#include "serve/multipart.h"

namespace luminars::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using Parser = http::request_parser<http::string_body>;
using Message = http::response<http::string_body>;

std::chrono::milliseconds ms(double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); }

// The head of a parsed request as an HttpRequest (no body yet).
HttpRequest head_of(const Parser& parser, std::string remote) {
  const auto& m = parser.get();
  HttpRequest req;
  req.method = std::string(m.method_string());
  req.target = std::string(m.target());
  for (const auto& f : m) req.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
  req.remote = std::move(remote);
  return req;
}

// An answer as Beast writes it. The body of a JSON or text answer is made valid UTF-8 here, whatever
// a handler put in it.
Message to_message(HttpResponse res, bool keep_alive, unsigned version) {
  Message msg{static_cast<http::status>(res.status), version};
  msg.set(http::field::server, "luminars");
  if (!res.content_type.empty()) {
    msg.set(http::field::content_type, res.content_type);
    if (res.content_type.rfind("application/json", 0) == 0 || res.content_type.rfind("text/", 0) == 0)
      res.body = to_valid_utf8(res.body);
  }
  for (auto& [name, value] : res.headers) msg.insert(name, to_valid_utf8(value));
  msg.body() = std::move(res.body);
  msg.keep_alive(keep_alive);
  msg.prepare_payload();
  return msg;
}

// What the parser's error means for the client: a status and a message, or 0 for "just close".
std::pair<int, std::string> parse_failure(const beast::error_code& ec, std::size_t max_body) {
  if (ec == http::error::body_limit)
    return {413, "the request body is larger than " + std::to_string(max_body) + " bytes"};
  if (ec == http::error::header_limit) return {431, "the request's headers are too large"};
  if (ec == http::error::bad_content_length) return {400, "the Content-Length header is not a valid length"};
  if (ec == http::error::bad_transfer_encoding) return {400, "the Transfer-Encoding is not chunked"};
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset || ec == http::error::partial_message)
    return {0, ""};
  return {400, "the request is not valid HTTP/1.1 (" + ec.message() + ")"};
}

void release_memory_after(std::size_t body_bytes) {
#if defined(__GLIBC__)
  if (body_bytes > (1u << 20)) malloc_trim(0);  // large bodies: give the pages back
#else
  (void)body_bytes;
#endif
}

std::string printable(std::string_view s, std::size_t max = 200) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c < 0x20 || c >= 0x7f || c == '%') {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = value(s[i + 1]), lo = value(s[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HttpEngine
// ---------------------------------------------------------------------------------------------
HttpEngine::HttpEngine(const Router& router, HttpPolicy policy, HttpLimits limits)
    : router_(router), policy_(std::move(policy)), limits_(limits) {}

std::optional<HttpResponse> HttpEngine::admit(HttpRequest& req, Router::Match& match) const {
  std::string_view target = req.target;
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {  // absolute form
    const auto slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  const auto decoded = percent_decode(target.substr(0, target.find('?')));
  if (!decoded) return error_response(400, "the path has a bad percent escape", "path");
  if (!is_valid_utf8(*decoded)) return error_response(400, "the path is not valid UTF-8 once percent-decoded", "path");
  req.path = *decoded;
  match = router_.match(req.method, req.path);
  return policy_.check(req, match);
}

HttpResponse HttpEngine::respond(HttpRequest& req, const Router::Match& match) const {
  HttpResponse res;
  const std::size_t received = req.body.size();
  try {
    if (!req.body.empty() && req.has_header("content-encoding"))
      req.body = decode_content(std::move(req.body), req.header("content-encoding"), limits_.max_body_bytes);
    if (match.route->body == BodyKind::Multipart) {
      auto form = parse_multipart(req.body, multipart_boundary(req.header("content-type")));
      req.fields = std::move(form.fields);
      req.files = std::move(form.files);
    }
    req.matches = match.captures;
    match.route->handler(req, res);
  } catch (const HttpError& e) {
    res = error_response(e.status(), e.what(), e.field());
  } catch (const std::bad_alloc&) {
    res = error_response(503, "the server ran out of memory for this request", "", "server_error");
  } catch (const std::exception& e) {
    res = error_response(500, std::string("internal error: ") + e.what(), "", "server_error");
  } catch (...) {
    res = error_response(500, "internal error", "", "server_error");
  }
  policy_.add_cors_headers(req, res);
  std::string().swap(req.body);
  req.fields.clear();
  req.files.clear();
  release_memory_after(std::max(received, res.body.size()));
  return res;
}

std::vector<std::string> respond_to_bytes(const HttpEngine& engine, std::string_view raw) {
  std::vector<std::string> out;
  auto write = [&](HttpResponse res, bool keep_alive, unsigned version) {
    Message msg = to_message(std::move(res), keep_alive, version);
    std::ostringstream os;
    os << msg;
    out.push_back(os.str());
  };
  while (!raw.empty()) {
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(engine.limits().max_header_bytes));
    parser.body_limit(engine.limits().max_body_bytes);
    parser.eager(false);
    beast::error_code ec;
    // The head first (as the server reads it), then the body.
    std::size_t used = 0;
    while (!parser.is_header_done() && used < raw.size()) {
      const std::size_t n = parser.put(asio::buffer(raw.data() + used, raw.size() - used), ec);
      if (ec == http::error::need_more) ec = {};
      if (ec || n == 0) break;
      used += n;
    }
    if (ec || !parser.is_header_done()) {
      auto [status, message] = parse_failure(ec ? ec : http::error::partial_message, engine.limits().max_body_bytes);
      if (status) write(error_response(status, message, status == 413 ? "body" : ""), false, 11);
      return out;
    }
    HttpRequest req = head_of(parser, "fuzz");
    Router::Match match;
    if (auto refusal = engine.admit(req, match)) {
      const bool body_left = !parser.is_done();
      write(std::move(*refusal), !body_left && parser.get().keep_alive(), parser.get().version());
      if (body_left) return out;
      raw.remove_prefix(used);
      continue;
    }
    parser.eager(true);
    while (!parser.is_done() && used < raw.size()) {
      const std::size_t n = parser.put(asio::buffer(raw.data() + used, raw.size() - used), ec);
      if (ec == http::error::need_more) ec = {};
      if (ec || n == 0) break;
      used += n;
    }
    if (!ec && !parser.is_done()) {
      parser.put_eof(ec);  // the bytes ended: a body without a length ends here
      if (!ec && !parser.is_done()) ec = http::error::partial_message;
    }
    if (ec) {
      auto [status, message] = parse_failure(ec, engine.limits().max_body_bytes);
      if (status) write(error_response(status, message, status == 413 ? "body" : ""), false, 11);
      return out;
    }
    req.body = std::move(parser.get().body());
    const bool keep_alive = parser.get().keep_alive();
    write(engine.respond(req, match), keep_alive, parser.get().version());
    if (!keep_alive) return out;
    raw.remove_prefix(used);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HttpServer: the acceptor, the network threads and one Session per connection.
// ---------------------------------------------------------------------------------------------
struct HttpServer::Core : std::enable_shared_from_this<HttpServer::Core> {
  const HttpEngine& engine;
  std::function<void(const std::string&)> log;
  std::mutex log_mutex;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_retry{ioc};
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> busy{0};  // blocking handlers running, and answers being written
  std::mutex run_mutex;
  std::condition_variable run_done;
  bool ran = false, finished = false;
  std::size_t handler_threads = 0;  // under run_mutex; the destructor waits for 0
  std::mutex sessions_mutex;
  std::map<uint64_t, std::function<void()>> closers;  // one per open connection: closes it
  uint64_t next_session = 0;

  void handler_started() {
    std::lock_guard lock(run_mutex);
    ++handler_threads;
  }
  void handler_ended() {
    std::lock_guard lock(run_mutex);
    --handler_threads;
    run_done.notify_all();
  }
  uint64_t add_session(std::function<void()> closer) {
    std::lock_guard lock(sessions_mutex);
    closers.emplace(next_session, std::move(closer));
    return next_session++;
  }
  void remove_session(uint64_t id) {
    std::lock_guard lock(sessions_mutex);
    closers.erase(id);
  }
  void close_sessions() {
    std::map<uint64_t, std::function<void()>> all;
    {
      std::lock_guard lock(sessions_mutex);
      all = closers;
    }
    for (auto& [id, close] : all) close();
  }

  Core(const HttpEngine& e, std::function<void(const std::string&)> l) : engine(e), log(std::move(l)) {}

  void write_log(const std::string& line) {
    if (!log) return;
    std::lock_guard lock(log_mutex);
    log(line);
  }

  void accept();
  void shut_down(double grace_seconds);
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServer::Core> core, tcp::socket socket)
      : core_(std::move(core)), stream_(std::move(socket)) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "?" : peer.address().to_string();
    ++core_->connections;
  }
  ~Session() {
    core_->remove_session(id_);
    --core_->connections;
  }

  void start() {
    id_ = core_->add_session([weak = weak_from_this()] {
      if (auto self = weak.lock()) asio::post(self->stream_.get_executor(), [self] { self->close(); });
    });
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read_head, shared_from_this()));
  }

 private:
  const HttpLimits& limits() const { return core_->engine.limits(); }

  void read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_header_bytes));
    parser_->body_limit(limits().max_body_bytes);
    // A new connection has header_seconds to send its first head; a kept-alive one idle_seconds
    // to start the next (a head already begun in the buffer gets the longer deadline).
    stream_.expires_after(ms(served_ == 0 || buffer_.size() > 0 ? limits().header_seconds : limits().idle_seconds));
    http::async_read_header(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_head, shared_from_this()));
  }

  void on_head(beast::error_code ec, std::size_t) {
    started_ = Clock::now();
    if (ec) return fail(ec);
    req_ = head_of(*parser_, remote_);
    version_ = parser_->get().version();
    keep_alive_ = parser_->get().keep_alive();
    if (core_->stopping) {
      HttpResponse res = error_response(503, "the server is shutting down", "", "server_error");
      res.set_header("Retry-After", "5");
      return answer(std::move(res), /*close=*/true);
    }
    match_ = {};
    if (auto refusal = core_->engine.admit(req_, match_)) return answer(std::move(*refusal), /*close=*/!parser_->is_done());
    if (match_.route->blocking && core_->busy >= limits().max_blocking) {
      HttpResponse res = error_response(503, "the server has too many requests in progress; retry shortly", "", "server_error");
      res.set_header("Retry-After", "2");
      return answer(std::move(res), !parser_->is_done());
    }
    if (ascii_lower(req_.header("expect")) == "100-continue" && !parser_->is_done()) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, version_);
      stream_.expires_after(ms(limits().write_seconds));
      return http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code e, std::size_t) {
        if (e) return self->fail(e);
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(ms(limits().body_seconds));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (ec) return fail(ec);
    req_.body = std::move(parser_->get().body());
    if (!match_.route->blocking) return answer(core_->engine.respond(req_, match_), false);

    // A handler that waits: on a thread of its own, while this connection watches for a hang-up.
    ++core_->busy;  // held until the answer's write has begun (or the connection is closed)
    holding_busy_ = true;
    gone_ = std::make_shared<std::atomic<bool>>(false);
    req_.client_gone = [gone = gone_] { return gone->load(); };
    handler_done_ = false;
    core_->handler_started();
    std::thread([core = core_, self = shared_from_this()]() mutable {
      HttpResponse res = self->core_->engine.respond(self->req_, self->match_);
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->handler_finished(std::move(res)); });
      self.reset();
      core->handler_ended();
    }).detach();
    watch();
  }

  // Reads what the client sends while its handler runs: nothing, a pipelined next request (kept in
  // the buffer), or the end of the connection — which tells the handler to give up.
  void watch() {
    if (buffer_.size() >= 64 * 1024) return;  // enough pipelined bytes waiting: stop reading
    watching_ = true;
    stream_.expires_never();
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->watching_ = false;
      self->buffer_.commit(n);
      if (self->handler_done_) return self->answer(std::move(self->pending_), false);
      if (ec) {
        self->gone_->store(true);
        return;
      }
      self->watch();
    });
  }

  void handler_finished(HttpResponse res) {
    handler_done_ = true;
    if (gone_->load()) return close();
    if (watching_) {
      pending_ = std::move(res);
      beast::error_code ec;
      stream_.socket().cancel(ec);  // the watch ends, then answers
      return;
    }
    answer(std::move(res), false);
  }

  void answer(HttpResponse res, bool close) {
    if (close || core_->stopping) keep_alive_ = false;
    const int status = res.status;
    std::string line = req_.remote + " " + req_.method + " " + printable(req_.target.substr(0, req_.target.find('?'))) + " " +
                       std::to_string(status) + " " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count()) + " ms";
    if (!res.log_note.empty()) line += " " + res.log_note;
    core_->write_log(line);
    auto msg = std::make_shared<Message>(to_message(std::move(res), keep_alive_, version_));
    ++core_->busy;
    release_busy();
    stream_.expires_after(ms(limits().write_seconds));
    http::async_write(stream_, *msg, [self = shared_from_this(), msg](beast::error_code ec, std::size_t) {
      --self->core_->busy;
      if (ec) return self->close();
      ++self->served_;
      if (!msg->keep_alive() || self->core_->stopping) return self->close();
      self->read_head();
    });
  }

  void fail(beast::error_code ec) {
    auto [status, message] = parse_failure(ec, limits().max_body_bytes);
    if (status == 0) return close();
    if (req_.method.empty()) req_.remote = remote_;
    answer(error_response(status, message, status == 413 ? "body" : (status == 431 ? "headers" : "")), /*close=*/true);
  }

  // A blocking handler's hold on `busy` (which keeps stop() waiting) ends once its answer is on
  // its way or its connection is gone.
  void release_busy() {
    if (holding_busy_) --core_->busy;
    holding_busy_ = false;
  }

  void close() {
    release_busy();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  std::shared_ptr<HttpServer::Core> core_;
  uint64_t id_ = 0;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{16 * 1024};
  std::optional<Parser> parser_;
  std::string remote_;
  HttpRequest req_;
  Router::Match match_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::size_t served_ = 0;
  Clock::time_point started_ = Clock::now();
  std::shared_ptr<std::atomic<bool>> gone_;
  bool watching_ = false, handler_done_ = false, holding_busy_ = false;
  HttpResponse pending_;
};

}  // namespace

void HttpServer::Core::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopping || !self->acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or memory: wait a moment instead of spinning on the error.
      self->accept_retry.expires_after(std::chrono::milliseconds(100));
      self->accept_retry.async_wait([self](beast::error_code) {
        if (!self->stopping) self->accept();
      });
      return;
    }
    if (self->connections >= self->engine.limits().max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // over the limit: closed at once rather than queued
    } else {
      std::make_shared<Session>(self, std::move(socket))->start();
    }
    self->accept();
  });
}

void HttpServer::Core::shut_down(double grace_seconds) {
  beast::error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  // Wait (on the network threads' clock) for the answers in flight, then let run() return.
  auto timer = std::make_shared<asio::steady_timer>(ioc);
  const auto deadline = Clock::now() + ms(grace_seconds);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [self = shared_from_this(), timer, deadline, poll] {
    if (self->busy == 0 || Clock::now() >= deadline) {
      // Every connection closed: their reads and writes end, and with no work left run() returns.
      self->close_sessions();
      self->work.reset();
      *poll = nullptr;  // breaks the cycle
      return;
    }
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([poll](beast::error_code) {
      if (*poll) (*poll)();
    });
  };
  (*poll)();
}

HttpServer::HttpServer(const HttpEngine& engine, std::function<void(const std::string&)> log)
    : core_(std::make_shared<Core>(engine, std::move(log))) {}

HttpServer::~HttpServer() {
  stop();
  auto& c = *core_;
  {
    std::unique_lock lock(c.run_mutex);
    c.run_done.wait(lock, [&] { return (!c.ran || c.finished) && c.handler_threads == 0; });
  }
  // What handler threads posted after run() returned (their answers, to closed connections) runs
  // now, so that no session is left holding the core.
  c.close_sessions();
  c.work.reset();
  c.ioc.restart();
  c.ioc.run();
}

int HttpServer::bind(const std::string& host, int port) {
  auto& c = *core_;
  const std::string where = host + ":" + std::to_string(port);
  try {
    tcp::resolver resolver(c.ioc);
    const auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service);
    if (results.empty()) throw Error("cannot listen on " + where + " (no such address)");
    const tcp::endpoint endpoint = *results.begin();
    c.acceptor.open(endpoint.protocol());
    c.acceptor.set_option(asio::socket_base::reuse_address(true));
    c.acceptor.bind(endpoint);
    c.acceptor.listen(asio::socket_base::max_listen_connections);
    return c.acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    beast::error_code ignored;
    c.acceptor.close(ignored);
    throw Error("cannot listen on " + where + " (" + e.code().message() + ")");
  }
}

void HttpServer::run() {
  auto& c = *core_;
  {
    std::lock_guard lock(c.run_mutex);
    if (c.stopping || c.ran) return;
    c.ran = true;
  }
  c.accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, c.engine.limits().network_threads); ++i) threads.emplace_back([&c] { c.ioc.run(); });
  c.ioc.run();
  for (auto& t : threads) t.join();
  // Blocking handlers still running hold their sessions; they post into a stopped context and end.
  std::lock_guard lock(c.run_mutex);
  c.finished = true;
  c.run_done.notify_all();
}

void HttpServer::stop(double grace_seconds) {
  auto& c = *core_;
  {
    std::lock_guard lock(c.run_mutex);
    if (c.stopping.exchange(true)) return;
    if (!c.ran) {  // never started: nothing to drain
      beast::error_code ec;
      c.acceptor.close(ec);
      return;
    }
  }
  asio::post(c.ioc, [core = core_, grace_seconds] { core->shut_down(grace_seconds); });
}

bool HttpServer::stopping() const { return core_->stopping; }

}  // namespace luminars::serve

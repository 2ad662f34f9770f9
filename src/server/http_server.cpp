#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <regex>
#include <thread>

#include "core/error.h"
#include "server/api_error.h"
#include "server/chat_page.h"
#include "server/connection.h"
#include "server/openai_json.h"
#include "server/request.h"

namespace toy::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// How often a waiting handler looks for new output and for a vanished client.
constexpr std::chrono::milliseconds kPoll{20};

// Per connection thread: what the access log line of the current request says.
struct RequestLog {
  Clock::time_point start;
  int64_t prompt_tokens = -1;  // -1: not a completion
  int64_t completion_tokens = 0;
};
thread_local RequestLog current_log;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, e.body());
}

const char* reason_of(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 413:
      return "request body too large";
    case 503:
      return "service unavailable";
    default:
      return "error";
  }
}

}  // namespace

bool constant_time_equals(std::string_view given, std::string_view expected) {
  // Every byte of `expected` is compared whatever the input; a length mismatch is
  // folded into the result instead of returning early.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  // Keep the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

struct HttpServer::Impl {
  Impl(const ServerConfig& c, const tokenizer::Tokenizer& t, Scheduler& s, Metrics& m)
      : config(c), tok(t), scheduler(s), metrics(m) {}

  ServerConfig config;
  const tokenizer::Tokenizer& tok;
  Scheduler& scheduler;
  Metrics& metrics;
  httplib::Server http;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};
  int listen_fd = -1;  // the bound socket (set by the socket-options callback)

  // Counts a completion from submission until its response is written or abandoned.
  struct InFlight {
    explicit InFlight(std::atomic<int64_t>& n) : n(n) { n.fetch_add(1); }
    ~InFlight() { n.fetch_sub(1); }
    std::atomic<int64_t>& n;
  };

  // Every route registers through get() / post(), which also record its pattern and
  // method: a known path asked with another method gets 405 and the Allow header from the
  // same table (allowed_methods). Filled before the server starts, then only read.
  struct Route {
    std::regex pattern;
    bool post;
  };
  std::vector<Route> route_table;
  void get(const std::string& pattern, httplib::Server::Handler handler) {
    route_table.push_back({std::regex(pattern), false});
    http.Get(pattern, std::move(handler));
  }
  void post(const std::string& pattern, httplib::Server::HandlerWithContentReader handler) {
    route_table.push_back({std::regex(pattern), true});
    http.Post(pattern, std::move(handler));
  }
  // The methods a known path answers (405's Allow header); empty for unknown paths.
  std::string allowed_methods(const std::string& path) const {
    bool gets = false, posts = false;
    for (const Route& route : route_table)
      if (std::regex_match(path, route.pattern)) (route.post ? posts : gets) = true;
    if (!gets && !posts) return "";
    return std::string(gets ? "GET, HEAD, " : "") + (posts ? "POST, " : "") + "OPTIONS";
  }

  void routes();
  void check_key(const httplib::Request& req) const;
  void check_model(const std::string& model) const;
  std::vector<int32_t> prompt_tokens(const CompletionRequest& r) const;
  void completion(const std::string& body, const httplib::Request& req, httplib::Response& res,
                  bool chat);
  void models(const httplib::Request& req, httplib::Response& res, const std::string& id);
  json model_json() const;

  using BodyHandler =
      std::function<void(const httplib::Request&, const std::string& body, httplib::Response&)>;

  // Wraps a handler: key check, ApiError -> OpenAI error object, anything else -> 500.
  httplib::Server::Handler api(
      bool needs_key, std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return
        [this, needs_key, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
          try {
            if (needs_key) check_key(req);
            fn(req, res);
          } catch (const ApiError& e) {
            send_error(res, e);
          } catch (const toy::Error& e) {
            // Library errors reached from a request are about the input (e.g. a token id).
            send_error(res, ApiError(400, e.message()));
          } catch (const std::bad_alloc&) {
            send_error(res, ApiError(500, "out of memory", "server_error"));
          } catch (const std::exception& e) {
            send_error(res, ApiError(500, e.what(), "server_error"));
          }
        };
  }

  // api() for a POST handler that reads its body itself: cpp-httplib parses a body sent as
  // application/x-www-form-urlencoded (curl -d's default type) as a form and refuses one over
  // 8 KiB with 413 whatever --max-body says; read here, the body is only held to the limit.
  httplib::Server::HandlerWithContentReader api_post(bool needs_key, BodyHandler fn) {
    return [this, needs_key, fn = std::move(fn)](const httplib::Request& req,
                                                 httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
      if (req.is_multipart_form_data()) {
        // Not read: close the connection rather than parse the rest as a next request.
        res.set_header("Connection", "close");
        send_error(res, ApiError(400, "the request body must be JSON, not multipart form data"));
        return;
      }
      std::string body;
      const bool complete = reader([&body](const char* data, size_t n) {
        body.append(data, n);
        return true;
      });
      if (!complete) {
        // Over --max-body (413, set by the reader) or a body that ended early.
        if (res.status < 400) res.status = 400;
        res.set_header("Connection", "close");
        return;
      }
      api(needs_key, [&](const httplib::Request& r, httplib::Response& out) { fn(r, body, out); })(
          req, res);
    };
  }
};

void HttpServer::Impl::check_key(const httplib::Request& req) const {
  if (config.api_key.empty()) return;
  const std::string header = req.get_header_value("Authorization");
  const std::string_view prefix = "Bearer ";
  const bool bearer = header.compare(0, prefix.size(), prefix) == 0;
  const std::string_view given =
      bearer ? std::string_view(header).substr(prefix.size()) : std::string_view();
  if (!bearer || !constant_time_equals(given, config.api_key))
    throw ApiError(401,
                   header.empty() ? "missing API key: send the header 'Authorization: Bearer KEY'"
                                  : "invalid API key",
                   "invalid_request_error", "", "invalid_api_key");
}

void HttpServer::Impl::check_model(const std::string& model) const {
  if (model.empty() || model == config.model_id) return;
  for (const std::string& alias : config.model_aliases)
    if (model == alias) return;
  throw ApiError(
      404,
      str("The model '", model, "' does not exist; this server serves '", config.model_id, "'"),
      "invalid_request_error", "model", "model_not_found");
}

std::vector<int32_t> HttpServer::Impl::prompt_tokens(const CompletionRequest& r) const {
  std::vector<int32_t> ids;
  if (r.chat) {
    const std::string text = tokenizer::format_chat(config.chat_template, r.messages, true);
    ids = tok.tokenize(text, {.add_special = true, .parse_special = true});
  } else if (r.prompt_text) {
    ids = tok.tokenize(*r.prompt_text, {.add_special = true, .parse_special = true});
  } else {
    ids = r.prompt_tokens;
    for (int32_t id : ids)
      if (id >= config.n_vocab)
        bad_request(
            str("prompt token id ", id, " is outside the vocabulary [0, ", config.n_vocab, ")"),
            "prompt");
  }
  if (ids.empty()) bad_request("the prompt is empty", r.chat ? "messages" : "prompt");
  if (static_cast<int64_t>(ids.size()) >= config.n_ctx)
    throw ApiError(
        400,
        str("the prompt is ", ids.size(), " tokens long but the context holds ", config.n_ctx,
            " tokens (with room for at least one generated token); "
            "shorten it or start the server with a larger -c"),
        "invalid_request_error", r.chat ? "messages" : "prompt", "context_length_exceeded");
  for (const auto& [id, bias] : r.params.logit_bias)
    if (id >= config.n_vocab)
      bad_request(
          str("'logit_bias' token id ", id, " is outside the vocabulary [0, ", config.n_vocab, ")"),
          "logit_bias");
  return ids;
}

void HttpServer::Impl::completion(const std::string& body_text, const httplib::Request& req,
                                  httplib::Response& res, bool chat) {
  if (draining.load()) throw ApiError(503, "the server is shutting down", "server_error");
  const json body = parse_json_object(body_text);
  const CompletionRequest r = chat ? parse_chat_request(body) : parse_completion_request(body);
  check_model(r.model);
  std::vector<int32_t> prompt = prompt_tokens(r);
  current_log.prompt_tokens = static_cast<int64_t>(prompt.size());
  auto job = std::make_shared<Job>(std::move(prompt), r.params);
  auto guard = std::make_shared<InFlight>(in_flight);
  scheduler.submit(job);
  const CompletionHeader header =
      make_header(chat, r.model.empty() ? config.model_id : r.model, r.params.top_logprobs >= 0);
  const int fd = find_connection_socket(req.remote_addr, req.remote_port, req.local_port);

  if (!r.stream) {
    JobOutput out;
    while (!job->wait(out, kPoll)) {
      if (peer_closed(fd)) {
        job->cancel();     // nobody is left to read the answer
        res.status = 499;  // nginx's "client closed request", for the log line
        current_log.completion_tokens = job->generated();
        return;
      }
    }
    const JobResult& result = job->result();
    current_log.completion_tokens = result.completion_tokens;
    if (result.finish == FinishReason::Error)
      throw ApiError(500, "generation failed: " + result.error, "server_error");
    if (result.finish == FinishReason::Cancelled)
      throw ApiError(503, "the server is shutting down", "server_error");
    send_json(res, 200, completion_response(header, out.text, out.tokens, result, tok));
    return;
  }

  // Streaming: the provider is called again and again by the connection thread until
  // it calls sink.done(); each call blocks until there is something to send.
  struct Stream {
    std::shared_ptr<Job> job;
    std::shared_ptr<InFlight> guard;
    CompletionHeader header;
    bool include_usage = false;
    int fd = -1;
    bool first = true;
    ~Stream() { job->cancel(); }  // a response abandoned half-way stops its generation
  };
  auto st = std::make_shared<Stream>();
  st->job = job;
  st->guard = guard;
  st->header = header;
  st->include_usage = r.include_usage;
  st->fd = fd;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const tokenizer::Tokenizer& t = tok;
  res.set_chunked_content_provider("text/event-stream", [st, &t](size_t, httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (st->first && st->header.chat) {
      // OpenAI opens a chat stream with the assistant's role and empty content.
      st->first = false;
      return write(
          sse_event(stream_chunk(st->header, "", {}, nullptr, true, st->include_usage, t)));
    }
    JobOutput out;
    while (true) {
      const bool done = st->job->wait(out, kPoll);
      // Kept current for the log line, whether the stream ends, fails or is abandoned.
      current_log.completion_tokens = st->job->generated();
      if (!sink.is_writable() || peer_closed(st->fd)) {
        st->job->cancel();
        return false;
      }
      if (done) break;
      if (out.text.empty() && out.tokens.empty()) continue;
      const bool first = st->first;
      st->first = false;
      return write(sse_event(
          stream_chunk(st->header, out.text, out.tokens, nullptr, first, st->include_usage, t)));
    }
    const JobResult& result = st->job->result();
    current_log.completion_tokens = result.completion_tokens;
    std::string tail;
    if (result.finish == FinishReason::Error || result.finish == FinishReason::Cancelled) {
      if (!out.text.empty())
        tail += sse_event(stream_chunk(st->header, out.text, out.tokens, nullptr, st->first,
                                       st->include_usage, t));
      const ApiError e = result.finish == FinishReason::Error
                             ? ApiError(500, "generation failed: " + result.error, "server_error")
                             : ApiError(503, "the server is shutting down", "server_error");
      tail += sse_event(e.body());
    } else {
      tail += sse_event(stream_chunk(st->header, out.text, out.tokens,
                                     finish_reason_name(result.finish), st->first,
                                     st->include_usage, t));
      if (st->include_usage) tail += sse_event(usage_chunk(st->header, result));
    }
    tail += "data: [DONE]\n\n";
    if (!write(tail)) return false;
    sink.done();
    return true;
  });
}

json HttpServer::Impl::model_json() const {
  return {{"id", config.model_id},
          {"object", "model"},
          {"created", config.model_created},
          {"owned_by", "toy"},
          {"meta", {{"n_ctx", config.n_ctx}, {"n_vocab", config.n_vocab}}}};
}

void HttpServer::Impl::models(const httplib::Request&, httplib::Response& res,
                              const std::string& id) {
  if (id.empty()) {
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
    return;
  }
  check_model(id);
  send_json(res, 200, model_json());
}

void HttpServer::Impl::routes() {
  using httplib::Request;
  using httplib::Response;
  get("/", [](const Request&, Response& res) {
    const std::string_view page = chat_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  get("/health", [this](const Request&, Response& res) {
    if (draining.load())
      send_json(res, 503, {{"status", "shutting down"}});
    else
      send_json(res, 200, {{"status", "ok"}});
  });
  get("/metrics", api(true, [this](const Request&, Response& res) {
        res.set_content(metrics.prometheus(), "text/plain; version=0.0.4");
      }));
  for (const std::string prefix : {"/v1", ""}) {
    post(prefix + "/chat/completions",
         api_post(true, [this](const Request& req, const std::string& body, Response& res) {
           completion(body, req, res, true);
         }));
    post(prefix + "/completions",
         api_post(true, [this](const Request& req, const std::string& body, Response& res) {
           completion(body, req, res, false);
         }));
    get(prefix + "/models",
        api(true, [this](const Request& req, Response& res) { models(req, res, ""); }));
    get(prefix + R"(/models/(.+))",
        api(true, [this](const Request& req, Response& res) { models(req, res, req.matches[1]); }));
  }
  post("/tokenize", api_post(true, [this](const Request&, const std::string& body, Response& res) {
         const TokenizeRequest r = parse_tokenize_request(parse_json_object(body));
         const std::vector<int32_t> ids = tok.tokenize(
             r.content, {.add_special = r.add_special, .parse_special = r.parse_special});
         json tokens = json::array();
         for (int32_t id : ids) {
           if (r.with_pieces)
             tokens.push_back({{"id", id}, {"piece", std::string(tok.piece(id, true))}});
           else
             tokens.push_back(id);
         }
         send_json(res, 200, {{"tokens", tokens}});
       }));
  post("/detokenize",
       api_post(true, [this](const Request&, const std::string& body, Response& res) {
         const std::vector<int32_t> ids = parse_detokenize_request(parse_json_object(body));
         for (int32_t id : ids)
           if (id >= config.n_vocab)
             bad_request(
                 str("token id ", id, " is outside the vocabulary [0, ", config.n_vocab, ")"),
                 "tokens");
         send_json(res, 200, {{"content", tok.detokenize(ids)}});
       }));
  // CORS preflight, so browser clients on other origins can call the API.
  http.Options(".*", [](const Request&, Response& res) {
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
    res.status = 204;
  });
  http.set_default_headers({{"Access-Control-Allow-Origin", "*"}});

  // Statuses cpp-httplib sets itself (unknown path, body over the limit, a request it
  // cannot parse) get OpenAI's error object too.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = reason_of(res.status);
        if (res.status == 404) {
          const std::string allow = allowed_methods(req.path);
          if (allow.empty()) {
            message = str("no endpoint ", req.method, " ", req.path);
          } else {
            res.status = 405;
            res.set_header("Allow", allow);
            message =
                str(req.path, " answers ", allow.substr(0, allow.find(',')), ", not ", req.method);
          }
        }
        if (res.status == 413) message = "the request body is larger than the server accepts";
        send_error(res, ApiError(res.status, message,
                                 res.status >= 500 ? "server_error" : "invalid_request_error"));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    send_error(res, ApiError(500, "internal error", "server_error"));
  });
  http.set_pre_routing_handler([](const Request&, Response&) {
    current_log = RequestLog{Clock::now()};
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_logger([this](const Request& req, const Response& res) {
    metrics.requests_total.fetch_add(1);
    if (res.status >= 400) metrics.requests_failed.fetch_add(1);
    if (!config.log_requests) return;
    // A request cpp-httplib refused before routing has no start time.
    const bool timed = current_log.start != Clock::time_point{};
    const double ms =
        timed ? std::chrono::duration<double, std::milli>(Clock::now() - current_log.start).count()
              : 0.0;
    std::string tokens;
    if (current_log.prompt_tokens >= 0)
      tokens = str(" ", current_log.prompt_tokens, "+", current_log.completion_tokens, " tokens");
    std::fprintf(stderr, "toy serve: %s %s %d%s %.1f ms\n", req.method.c_str(),
                 printable(req.path).c_str(), res.status, tokens.c_str(), ms);
    current_log = RequestLog{};
  });
}

HttpServer::HttpServer(const ServerConfig& config, const tokenizer::Tokenizer& tokenizer,
                       Scheduler& scheduler, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, tokenizer, scheduler, metrics)) {
  httplib::Server& http = impl_->http;
  const size_t threads = static_cast<size_t>(std::max(config.http_threads, 2));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(config.max_body_bytes);
  http.set_tcp_nodelay(true);  // one SSE event per token: do not wait to fill packets
  // SO_REUSEADDR (a restart does not wait for TIME_WAIT) but not cpp-httplib's default
  // SO_REUSEPORT, which would let a second server bind the same port and split its traffic;
  // and the listening socket kept, to raise its backlog after bind (below).
  int* listen_fd = &impl_->listen_fd;
  http.set_socket_options([listen_fd](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listen_fd = sock;
  });
  impl_->routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const ServerConfig& c = impl_->config;
  if (c.port == 0) {
    const int port = impl_->http.bind_to_any_port(c.host);
    if (port <= 0) fail("cannot listen on ", c.host, " (any port)");
    return port;
  }
  if (!impl_->http.bind_to_port(c.host, c.port))
    fail("cannot listen on ", c.host, ":", c.port,
         " (address in use or not available; choose another with --port/--host)");
  return c.port;
}

void HttpServer::listen() {
  // Debian's cpp-httplib is compiled with a listen backlog of 5: a burst of clients
  // connecting at once (the load test's 100) overflows it and gets connections reset.
  // listen() again on the bound socket raises it.
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  impl_->http.listen_after_bind();
}

void HttpServer::drain() {
  impl_->draining.store(true);
}

int64_t HttpServer::in_flight() const {
  return impl_->in_flight.load();
}

void HttpServer::stop() {
  impl_->http.stop();
}

}  // namespace toy::server

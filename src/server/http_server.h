// The HTTP side of `toy serve` (cpp-httplib's thread pool): routes, API-key
// check, OpenAI error objects, server-sent events, request logging, and the
// graceful shutdown (drain, then stop). Handlers parse and validate, hand the
// generation to the Scheduler, and print what it produces.
//
//   POST /v1/chat/completions, /v1/completions   OpenAI
//   GET  /v1/models, /v1/models/{id}              OpenAI
//   GET  /health, /metrics; POST /tokenize, /detokenize   llama-server's
//   GET  /                                         the chat page
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace toy::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0: any free port (bind() says which)
  std::string api_key;                     // empty: no authentication
  std::string model_id;                    // the id /v1/models lists
  std::vector<std::string> model_aliases;  // also accepted as a request's "model"
  int64_t model_created = 0;               // seconds since the epoch (the file's time)
  size_t max_body_bytes = 8 << 20;         // larger request bodies get 413
  int http_threads = 128;                  // connections served at once
  tokenizer::ChatTemplate chat_template = tokenizer::ChatTemplate::ChatML;
  int64_t n_ctx = 0;
  int64_t n_vocab = 0;
  bool log_requests = true;  // one line per request on stderr
};

class HttpServer {
 public:
  // tokenizer, scheduler and metrics must outlive the server.
  HttpServer(const ServerConfig& config, const tokenizer::Tokenizer& tokenizer,
             Scheduler& scheduler, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; returns the port. Throws toy::Error when it cannot.
  int bind();
  // Serves until stop() (call from its own thread).
  void listen();
  // From now on completions are refused with 503 (the ones in flight go on).
  void drain();
  // Completions being generated or streamed.
  int64_t in_flight() const;
  // Closes the listening socket and waits for the connection threads.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compares a client's key with the expected one in time that depends only on the
// expected key's length (not on where they first differ).
bool constant_time_equals(std::string_view given, std::string_view expected);

}  // namespace toy::server

// toy serve -m MODEL: an OpenAI-compatible HTTP server (server/http_server.h)
// with continuous batching over --parallel sequences (server/scheduler.h).
// Binds loopback by default; logs one line per request on stderr; Ctrl-C or
// SIGTERM stops taking requests, lets the ones in flight finish (up to
// --shutdown-timeout seconds, then cancels them) and exits 0.
#ifdef TOY_NO_SERVER
#include "cli/commands.h"
#include "core/error.h"

namespace toy::cli {

int run_serve(int, char**) {
  fail("this toy was built without the HTTP server (configure with -DTOY_SERVER=ON; it needs ",
       "Debian's libcpp-httplib-dev)");
}

}  // namespace toy::cli
#else
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/adapters.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/prompt.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "infer/batch_decode.h"
#include "infer/kv_cache.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace toy::cli {
namespace {

using tokenizer::ChatTemplate;

// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so that
// only the main thread's sigtimedwait() sees them (no async-signal handler needed).
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client that disconnects mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Waits up to `seconds` for a stop signal; returns it, or 0 on timeout.
int wait_signal(const sigset_t& set, double seconds) {
  timespec ts{static_cast<time_t>(seconds),
              static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace

int run_serve(int argc, char** argv) {
  CommandLine cl("serve",
                 "An OpenAI-compatible HTTP server (chat, completions, models) with continuous "
                 "batching.");
  CLI::App& app = cl.app();
  std::string model_path, host = "127.0.0.1", api_key, alias, template_name, kv_type_name = "f16";
  int port = 8080, parallel = 4, http_threads = 128;
  int threads = default_thread_count();
  int64_t n_ctx = 0, max_body = 8 << 20, batch = 512;
  double shutdown_timeout = 10.0;
  bool quiet = false;
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("--host", host, "address to listen on (loopback unless you say otherwise)")
      ->capture_default_str();
  app.add_option("--port", port, "TCP port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option(
         "--parallel", parallel,
         "sequences decoded together (slots, also -np); each has its own KV cache of -c tokens")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--api-key", api_key,
                 "require 'Authorization: Bearer KEY' (default: $TOY_API_KEY, else none)");
  app.add_option("--alias", alias, "model id to report and accept (default: the file's name)");
  app.add_option("--template", template_name,
                 "chat template family (default: detected from the model)");
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  app.add_option("-b,--batch-size", batch, "prompt tokens per forward pass (prefill chunk)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-body", max_body, "largest request body in bytes (larger: 413)")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 32))
      ->capture_default_str();
  app.add_option("--http-threads", http_threads, "connections served at once")
      ->check(CLI::Range(2, 4096))
      ->capture_default_str();
  app.add_option("--shutdown-timeout", shutdown_timeout,
                 "seconds in-flight requests get to finish after Ctrl-C / SIGTERM")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "no line per request on stderr");
  cl.add_threads(threads);
  cl.add_context(n_ctx, "context length of each slot (default: the model's, at most 4096)");
  cl.add_gpu_layers();
  AttentionKernel attention = AttentionKernel::Auto;
  cl.add_flash_attention(attention);
  LoraOptions lora(cl);
  // llama-server spells --parallel -np (CLI11 would read it as -n with value "p").
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) {
    if (a == "-np" || a.starts_with("-np=")) a = "--parallel" + a.substr(3);
    arg_ptrs.push_back(a.data());
  }
  if (!cl.parse(argc, arg_ptrs.data())) return 0;
  lora.check();
  if (api_key.empty())
    if (const char* env = std::getenv("TOY_API_KEY")) api_key = env;
  const DType kv_type = parse_kv_type(kv_type_name);

  const sigset_t stop_signals = block_stop_signals();  // before any thread starts

  const Model model = Model::load(model_path);
  cl.check_context(n_ctx, model.config.n_ctx_train);
  if (!model.config.has_vocab)
    fail(model_path, " has no vocabulary (tokenizer.ggml.model is none): the server needs one ",
         "to read prompts and write text");
  const auto tok = tokenizer::Tokenizer::from_gguf(*model.file);
  const ChatTemplate family =
      choose_chat_template("serve", template_name, tok->vocab(), model_path);
  const LoraSet adapters = lora.load(model);

  ThreadPool pool(threads);
  BatchDecoderOptions options;
  options.n_slots = parallel;
  options.n_ctx = n_ctx;
  options.kv_type = kv_type;
  options.max_batch = batch;
  options.attention = attention;
  if (!adapters.empty()) options.lora = &adapters;
  BatchDecoder decoder(model, Compute{pool, cpu::host_backend()}, options);

  server::Metrics metrics;
  server::Scheduler scheduler(decoder, *tok, metrics, {.prefill_chunk = batch});
  server::ServerConfig config;
  config.host = host;
  config.port = port;
  config.api_key = api_key;
  const std::filesystem::path file(model_path);
  config.model_id = alias.empty() ? file.stem().string() : alias;
  config.model_aliases = {file.filename().string(), model_path};
  struct stat st {};
  if (::stat(model_path.c_str(), &st) == 0) config.model_created = st.st_mtime;
  config.max_body_bytes = static_cast<size_t>(max_body);
  config.http_threads = http_threads;
  config.chat_template = family;
  config.n_ctx = decoder.n_ctx();
  config.n_vocab = model.config.n_vocab;
  config.log_requests = !quiet;
  server::HttpServer http(config, *tok, scheduler, metrics);
  const int bound = http.bind();
  std::thread listener([&] { http.listen(); });

  std::fprintf(stderr,
               "toy serve: %s, %d slot%s x %lld tokens (%s KV cache), chat template %s, "
               "%d threads%s\n",
               config.model_id.c_str(), parallel, parallel == 1 ? "" : "s",
               static_cast<long long>(decoder.n_ctx()), kv_type_name.c_str(),
               std::string(tokenizer::chat_template_name(family)).c_str(), threads,
               api_key.empty() ? "" : ", API key required");
  for (size_t i = 0; i < adapters.size(); ++i)
    std::fprintf(stderr, "toy serve: LoRA adapter %s (%zu matrices, scale %g)\n",
                 adapters.adapter(i).path.c_str(), adapters.adapter(i).weights.size(),
                 static_cast<double>(adapters.scale(i)));
  std::fprintf(stderr, "toy serve: listening on http://%s:%d\n", host.c_str(), bound);
  std::fflush(stderr);

  int sig = 0;
  while (!(sig = wait_signal(stop_signals, 3600.0))) {
  }
  std::fprintf(stderr,
               "toy serve: %s received: finishing %lld request%s (up to %g s; again to stop "
               "now)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(http.in_flight()),
               http.in_flight() == 1 ? "" : "s", shutdown_timeout);
  http.drain();
  const Timer timer;
  while (http.in_flight() > 0 && timer.seconds() < shutdown_timeout) {
    if (wait_signal(stop_signals, 0.05)) break;  // a second signal: stop now
  }
  if (http.in_flight() > 0) {
    std::fprintf(stderr, "toy serve: cancelling %lld request%s\n",
                 static_cast<long long>(http.in_flight()), http.in_flight() == 1 ? "" : "s");
    scheduler.cancel_all();
    const Timer grace;
    while (http.in_flight() > 0 && grace.seconds() < 2.0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  http.stop();
  listener.join();
  std::fprintf(stderr, "toy serve: stopped\n");
  return 0;
}

}  // namespace toy::cli
#endif  // TOY_NO_SERVER

// toy init --arch llama --n-embd E --n-layer L --n-head H --n-head-kv K --n-ff F
//          --vocab V [--tied] [--seed S] [-c N] [--rope-base B]
//          [--layer-pattern attn,gdn,gdn,gdn] -o MODEL.gguf
//
// Writes a random-weight F32 model in llama.cpp's GGUF layout (the tensor names
// and shapes come from the model layer's for_each_tensor, the one tensor list), for
// benchmarks and from-scratch training. Weights: N(0, 1/sqrt(fan_in)) for every
// matrix; the token embedding N(0, 0.15), as ../shared/bench/REFERENCE.md's
// benchmark model (a unit-ish spread keeps the first RMSNorm well conditioned);
// norms 1. Deterministic per seed: every row has its own random stream, so the
// bytes do not depend on the thread count. Tensors are generated while the file is
// written (one tensor in memory at a time).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "gguf/writer.h"
#include "model/arch.h"
#include "model/config.h"
#include "model/weights.h"

namespace toy::cli {
namespace {

constexpr float kEmbeddingStd = 0.15f;
constexpr float kRmsEps = 1e-5f;

struct InitOptions {
  std::string arch = "llama";
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0;
  int64_t n_ctx = 2048;
  float rope_base = 10000.0f;
  bool tied = false;
  uint64_t seed = 42;
  std::string name = "toy-random";
  std::string output;
  std::string layer_pattern;  // "attn,gdn,gdn,gdn": gated delta-net layers (empty: all attention)
  int threads = 0;
};

// splitmix64: a tiny counter-based generator, good enough for initial weights.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// n Gaussian samples N(0, std) from the stream (seed, tensor, row) (Box-Muller).
void gaussian_row(float* dst, int64_t n, float std, uint64_t seed, uint64_t tensor, uint64_t row) {
  uint64_t state = seed * 0xD1B54A32D192ED03ull ^ (tensor << 40) ^ row;
  splitmix64(state);
  constexpr double kTwoPi = 6.283185307179586;
  for (int64_t i = 0; i < n; i += 2) {
    // u1 in (0, 1]: never log(0).
    const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    dst[i] = static_cast<float>(std * r * std::cos(kTwoPi * u2));
    if (i + 1 < n) dst[i + 1] = static_cast<float>(std * r * std::sin(kTwoPi * u2));
  }
}

void validate(const InitOptions& o) {
  auto positive = [](const char* flag, int64_t v) {
    if (v <= 0) usage_error(flag, " must be positive, got ", v);
  };
  positive("--n-embd", o.n_embd);
  positive("--n-layer", o.n_layer);
  positive("--n-head", o.n_head);
  positive("--n-head-kv", o.n_head_kv);
  positive("--n-ff", o.n_ff);
  positive("--vocab", o.n_vocab);
  positive("-c/--ctx-size", o.n_ctx);
  if (o.n_embd % o.n_head != 0)
    usage_error("--n-embd (", o.n_embd, ") must be a multiple of --n-head (", o.n_head, ")");
  if (o.n_head % o.n_head_kv != 0)
    usage_error("--n-head (", o.n_head, ") must be a multiple of --n-head-kv (", o.n_head_kv, ")");
  if ((o.n_embd / o.n_head) % 2 != 0)
    usage_error("head dimension --n-embd / --n-head = ", o.n_embd / o.n_head,
                " must be even (RoPE rotates pairs)");
  if (!(o.rope_base > 0.0f)) usage_error("--rope-base must be positive, got ", o.rope_base);
  if (o.arch != "llama")
    usage_error("--arch '", o.arch, "' is not supported by toy init (supported: llama)");
}

ModelConfig make_config(const InitOptions& o) {
  ModelConfig c;
  c.traits = &arch_traits(o.arch);
  c.source = o.output;
  c.n_vocab = o.n_vocab;
  c.n_ctx_train = o.n_ctx;
  c.n_embd = o.n_embd;
  c.n_layer = o.n_layer;
  c.n_ff = o.n_ff;
  c.n_head = o.n_head;
  c.n_head_kv = o.n_head_kv;
  c.head_dim = o.n_embd / o.n_head;
  c.head_dim_v = c.head_dim;
  c.rms_eps = kRmsEps;
  c.rope.n_rot = static_cast<int>(c.head_dim);
  c.rope.freq_base = o.rope_base;
  if (!o.layer_pattern.empty()) set_layer_kinds(c, parse_layer_pattern(o.layer_pattern, c.n_layer));
  return c;
}

void set_metadata(gguf::Writer& writer, const InitOptions& o, const ModelConfig& c) {
  using gguf::Value;
  c.write_gguf_metadata(writer);
  writer.set("general.name", Value::string(o.name));
  writer.set("general.file_type", Value::u32(0));  // LLAMA_FTYPE_ALL_F32
  writer.set("tokenizer.ggml.model", Value::string("none"));
}

int run(const InitOptions& o) {
  validate(o);
  check_output({"-o", o.output});
  const ModelConfig config = make_config(o);
  Weights slots;
  slots.layers.resize(static_cast<size_t>(config.n_layer));
  gguf::Writer writer;
  set_metadata(writer, o, config);
  ThreadPool pool(o.threads > 0 ? o.threads : default_thread_count());

  uint64_t tensor_index = 0, n_params = 0;
  for_each_tensor(config, slots, [&](const TensorSpec& spec, Tensor&) {
    const bool wanted = spec.required || (spec.name == "output.weight" && !o.tied);
    if (!wanted) return;
    const uint64_t index = tensor_index++;
    const int64_t n_in = spec.ne[0];
    const int64_t rows = spec.ne[1] * spec.ne[2] * spec.ne[3];
    n_params += static_cast<uint64_t>(n_in * rows);
    std::vector<int64_t> ne(spec.ne.begin(), spec.ne.begin() + spec.n_dims);
    // Vectors are norm weights (1) or a GDN layer's decay parameters; the GDN
    // convolution kernel (a plain-F32 matrix) is random like the matrices.
    const bool gdn_vector = gdn_initial_value(spec.name, 0, 1).has_value();
    const bool is_norm = spec.plain_f32 && spec.n_dims == 1 && !gdn_vector;
    TOY_CHECK(!is_norm || spec.name.find("norm") != std::string::npos,
              "toy init does not know how to initialise ", spec.name);
    const std::string name = spec.name;
    const float std = spec.name == "token_embd.weight"
                          ? kEmbeddingStd
                          : static_cast<float>(1.0 / std::sqrt(static_cast<double>(n_in)));
    const uint64_t seed = o.seed;
    writer.add_tensor(spec.name, DType::F32, ne, [=, &pool](uint8_t* dst) {
      float* out = reinterpret_cast<float*>(dst);  // (rows, n_in)
      if (gdn_vector) {
        for (int64_t i = 0; i < n_in; ++i) out[i] = *gdn_initial_value(name, i, n_in);
        return;
      }
      if (is_norm) {
        for (int64_t i = 0; i < n_in * rows; ++i) out[i] = 1.0f;
        return;
      }
      pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          gaussian_row(out + r * n_in, n_in, std, seed, index, static_cast<uint64_t>(r));
      });
    });
  });

  Timer timer;
  writer.write(o.output);
  std::printf("toy init: wrote %s (%s, %llu parameters, %llu tensors, %.1f s)\n", o.output.c_str(),
              o.arch.c_str(), static_cast<unsigned long long>(n_params),
              static_cast<unsigned long long>(tensor_index), timer.seconds());
  return 0;
}

}  // namespace

int run_init(int argc, char** argv) {
  CommandLine cl("init", "Write a random-weight F32 model (llama.cpp GGUF layout)");
  CLI::App& app = cl.app();
  InitOptions o;
  app.add_option("--arch", o.arch, "architecture (llama)")->capture_default_str();
  app.add_option("--n-embd", o.n_embd, "embedding width")->required()->check(at_least(1));
  app.add_option("--n-layer", o.n_layer, "number of layers")->required()->check(at_least(1));
  app.add_option("--n-head", o.n_head, "attention heads")->required()->check(at_least(1));
  app.add_option("--n-head-kv", o.n_head_kv, "key/value heads (default: n-head)")
      ->check(at_least(1));
  app.add_option("--n-ff", o.n_ff, "feed-forward width")->required()->check(at_least(1));
  app.add_option("--vocab", o.n_vocab, "vocabulary size")->required()->check(at_least(1));
  app.add_flag("--tied", o.tied, "no output.weight: logits use token_embd");
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  cl.add_context(o.n_ctx, "context length", ",--ctx")->check(at_least(1))->capture_default_str();
  app.add_option("--rope-base", o.rope_base, "RoPE frequency base")
      ->check(greater_than(0))
      ->capture_default_str();
  app.add_option("--name", o.name, "general.name")->capture_default_str();
  app.add_option("--layer-pattern", o.layer_pattern,
                 "per-layer kind, repeated over the layers: attn,gdn,gdn,gdn (gdn: a gated "
                 "delta-net layer; default all attention)");
  cl.add_threads(o.threads, "threads (default: physical cores)");
  app.add_option("-o,--output", o.output, "output GGUF file (written atomically)")->required();
  if (!cl.parse(argc, argv)) return 0;
  if (o.n_head_kv == 0) o.n_head_kv = o.n_head;
  return run(o);
}

}  // namespace toy::cli

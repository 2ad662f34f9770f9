// Session: one sequence being run through a model — a KV cache, the scratch of
// the forward pass and the logits, all allocated at construction (no allocation
// while decoding).
//
//   toy::ThreadPool pool(toy::default_thread_count());
//   toy::Model model = toy::Model::load("model.gguf");
//   toy::Session session(model, pool, {.kv_type = toy::DType::F16});
//   std::span<const float> logits = session.prefill(prompt_ids);  // (n_vocab), last position
//   while (...) logits = session.decode(next_id);                  // (n_vocab)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "infer/kv_cache.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/forward.h"
#include "model/lora.h"
#include "model/model.h"

namespace toy {

// The default context is capped (like llama.cpp's 4096) because a model trained
// for 128k positions would otherwise reserve gigabytes of KV cache; -c raises it.
inline constexpr int64_t kDefaultMaxContext = 4096;

struct SessionOptions {
  int64_t n_ctx = 0;           // context length; 0: the model's context_length
  DType kv_type = DType::F16;  // F32, F16 or Q8_0
  MatmulMode mode = MatmulMode::Fast;
  int64_t max_batch = 512;  // positions per forward pass (longer prompts are chunked)
  AttentionKernel attention = AttentionKernel::Auto;  // -fa on|off|auto
  const LoraSet* lora = nullptr;    // adapters (model/lora.h), must outlive the session; null: none
  bool chunked_delta_rule = false;  // GDN layers: the chunked form instead of the faster one
};

// Not thread-safe: one thread drives a session (the pool parallelizes inside each call).
class Session {
 public:
  // The model and the pool must outlive the session. `compute` names the pool and
  // the CPU backend; the ThreadPool form runs this machine's best backend
  // (cpu::host_backend(), which TOY_BACKEND can force).
  Session(const Model& model, const Compute& compute, const SessionOptions& options = {});
  Session(const Model& model, ThreadPool& pool, const SessionOptions& options = {});

  // Runs the tokens (at positions n_past()..) and returns the logits of the last
  // one (n_vocab floats, valid until the next call). Throws toy::Error when the
  // context would overflow (nothing is run then) or a token id is out of range.
  std::span<const float> prefill(std::span<const int32_t> tokens);
  // Like prefill, but writes the logits of every position: out (T, n_vocab).
  void prefill_all(std::span<const int32_t> tokens, float* out);
  // One token through the KV cache: prefill of a single token.
  std::span<const float> decode(int32_t token);

  int64_t n_past() const { return n_past_; }  // positions in the cache
  int64_t n_ctx() const { return cache_.n_ctx(); }
  int64_t n_vocab() const { return model_.config.n_vocab; }
  // Forgets the sequence (the cache is overwritten as it refills) and any mark() of it.
  void reset() { truncate(0); }
  // Keeps the first n positions (a shared prompt prefix) and forgets the rest. A
  // hybrid (gated delta-net layers) keeps 0, all, or the marked positions only:
  // its recurrent state cannot be rewound (toy::Error otherwise).
  void truncate(int64_t n);
  // Remembers the recurrent state at n_past() so truncate(n_past()) can return to it
  // later (a hybrid's shared prefix; a no-op copy for an all-attention model).
  void mark();
  const Model& model() const { return model_; }
  const KvCache& cache() const { return cache_; }
  // Activation taps (model/taps.h) fed by every forward from now on; null: none.
  void set_taps(LayerTaps* taps) { scratch_.taps = taps; }

 private:
  void check_tokens(std::span<const int32_t> tokens) const;  // ids in range, room in the cache
  void check_room(int64_t n) const;

  const Model& model_;
  Compute compute_;
  SessionOptions options_;
  KvCache cache_;
  ForwardScratch scratch_;
  std::vector<float> logits_;  // (n_vocab) of the last position
  int64_t n_past_ = 0;
  int64_t marked_ = -1;           // position of the saved recurrent state, -1: none
  std::vector<float> recurrent_;  // the GDN layers' state at marked_
};

}  // namespace toy

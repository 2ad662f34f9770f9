// BatchDecoder: P sequences ("slots") run through one model together, for
// continuous batching (the HTTP server). Each slot has its own KV cache and
// remembers the tokens in it, so a new prompt reuses the cached prefix it shares
// with the slot's previous one; one decode step runs the next token of every
// listed slot through ONE forward pass (model/forward.h forward_rows: each weight
// product is a matrix product over the slots' rows). Prompts are prefilled one
// slot at a time, in chunks, between steps.
//
//   BatchDecoder batch(model, compute, {.n_slots = 4});
//   batch.truncate(0, batch.common_prefix(0, prompt));      // keep the shared prefix
//   logits = batch.prefill(0, rest_of_prompt);               // (n_vocab)
//   logits = batch.decode(slots, tokens);                    // (slots.size(), n_vocab)
//
// Everything is allocated at construction; not thread-safe (one scheduler thread
// drives it, the pool parallelizes inside each call).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "infer/kv_cache.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/forward.h"
#include "model/lora.h"
#include "model/model.h"

namespace toy {

struct BatchDecoderOptions {
  int n_slots = 1;             // sequences decoded together (P)
  int64_t n_ctx = 0;           // context length of each slot; 0: the model's, at most 4096
  DType kv_type = DType::F16;  // F32, F16 or Q8_0
  MatmulMode mode = MatmulMode::Fast;
  int64_t max_batch = 512;  // positions per prefill forward pass (longer prompts are chunked)
  AttentionKernel attention = AttentionKernel::Auto;
  const LoraSet* lora = nullptr;  // must outlive the decoder; null: none
};

class BatchDecoder {
 public:
  // The model and compute's pool must outlive the decoder.
  BatchDecoder(const Model& model, const Compute& compute, const BatchDecoderOptions& options);

  int n_slots() const { return static_cast<int>(caches_.size()); }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_vocab() const { return model_.config.n_vocab; }
  int64_t max_batch() const { return max_batch_; }
  // The tokens in slot s's cache, in position order (n_past = size()).
  std::span<const int32_t> tokens(int slot) const;
  int64_t n_past(int slot) const { return static_cast<int64_t>(tokens(slot).size()); }
  // Length of the common prefix of slot s's cached tokens and `prompt`.
  int64_t common_prefix(int slot, std::span<const int32_t> prompt) const;
  // Keeps the first n cached positions of slot s and forgets the rest.
  void truncate(int slot, int64_t n);

  // Runs tokens at positions n_past(slot).. of slot s (in chunks of max_batch) and
  // returns the logits of the last one (n_vocab floats, valid until the next call).
  // Throws toy::Error, changing nothing, for an empty list, an id outside the
  // vocabulary or a context overflow.
  std::span<const float> prefill(int slot, std::span<const int32_t> tokens);
  // One step: tokens[i] goes to slot slots[i] at position n_past(slots[i]), all in one
  // forward pass. Returns the logits (slots.size(), n_vocab), row i for slots[i], valid
  // until the next call. Slots must be distinct and have room (n_past < n_ctx).
  std::span<const float> decode(std::span<const int> slots, std::span<const int32_t> tokens);

 private:
  void check_slot(int slot) const;

  const Model& model_;
  Compute compute_;
  BatchDecoderOptions options_;
  int64_t n_ctx_;
  int64_t max_batch_;
  std::vector<KvCache> caches_;               // (P) one cache per slot
  std::vector<std::vector<int32_t>> cached_;  // (P) tokens in each cache, capacity n_ctx
  ForwardScratch scratch_;                    // max(P, max_batch) rows
  std::vector<float> logits_;                 // (max(P, 1), n_vocab)
  std::vector<SequenceRow> rows_;             // (P) rows of a decode step
};

}  // namespace toy

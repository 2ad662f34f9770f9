// The transformer forward pass for inference: a batch of T consecutive
// positions in one pass, every weight matmul batched over the T positions (and
// all heads), K/V rows appended to a cache owned by the caller. This is the
// inference mode (sink) of the one forward in model/forward_pass.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "model/linear.h"
#include "model/model.h"

namespace toy {

class LayerTaps;

// One layer's cache, owned by the caller (infer::KvCache). An attention layer has k
// and v, each ne = [n_head_kv*head_dim, n_ctx] (row p = position p), type F32, F16
// or Q8_0. A gated delta-net layer has instead its recurrent memory after the
// sequence's last position, F32: state ne = [d_v, d_k, n_v_head] and conv, the last
// d_conv − 1 rows of its convolution input, ne = [conv_channels, d_conv − 1].
struct KvLayer {
  Tensor k;
  Tensor v;
  Tensor state;
  Tensor conv;
};

// The positions a cache holds: its attention layers' rows (unbounded when every
// layer is recurrent).
int64_t cache_context_length(std::span<const KvLayer> cache);

// One row of a multi-sequence decode step (continuous batching): one token at
// position `pos` of a sequence whose cache is `cache` (its rows < pos hold that
// sequence's earlier positions).
struct SequenceRow {
  std::span<const KvLayer> cache;
  int64_t pos = 0;
};

// Which positions get logits.
enum class LogitRows { Last, All };

// Which attention kernel the forward uses (llama.cpp's -fa on|off|auto):
// Flash = kernels/attention_flash.h (query blocks × key tiles, online softmax),
// Plain = kernels/attention.h (one query at a time over its whole score row),
// Auto = the one measured faster (the tiled one at every length measured).
enum class AttentionKernel { Auto, Flash, Plain };

// Every buffer one forward call needs, allocated once (no allocation per call).
class ForwardScratch {
 public:
  // max_tokens: the largest batch; n_ctx: the cache length; kv_type: the cache type
  // (a type attention cannot read directly gets an F32 staging copy); n_threads: pool size.
  ForwardScratch(const ModelConfig& config, int64_t max_tokens, int64_t n_ctx, DType kv_type,
                 int n_threads);
  int64_t max_tokens() const { return max_tokens_; }
  AttentionKernel attention = AttentionKernel::Auto;
  LayerTaps* taps = nullptr;        // activation taps fed by every forward through this scratch
  bool chunked_delta_rule = false;  // GDN layers: the chunked form instead of gdn_forward's

 private:
  friend class KvCacheSink;
  friend void forward_rows(const Model&, std::span<const int32_t>, std::span<const SequenceRow>,
                           ForwardScratch&, float*, const LinearContext&);
  int64_t max_tokens_;
  std::vector<float> x;       // (T, n_embd) residual stream
  std::vector<float> xn;      // (T, n_embd) normalised input of a block
  std::vector<float> q;       // (T, n_head*head_dim)
  std::vector<float> k;       // (T, n_head_kv*head_dim)
  std::vector<float> v;       // (T, n_head_kv*head_dim)
  std::vector<float> att;     // (T, n_head*head_dim) attention output
  std::vector<float> proj;    // (T, n_embd) block output before the residual add
  std::vector<float> gate;    // (T, max FFN width)
  std::vector<float> up;      // (T, max FFN width)
  std::vector<float> k_f32;   // (n_ctx, n_head_kv*head_dim) staged keys (non-F32 cache)
  std::vector<float> v_f32;   // (n_ctx, n_head_kv*head_dim) staged values
  std::vector<float> scores;  // (n_threads, n_head/n_head_kv, n_ctx) attention scores
  // Mixture of experts.
  std::vector<float> router;        // (T, n_expert)
  std::vector<int32_t> expert_ids;  // (T, n_expert_used)
  std::vector<float> expert_w;      // (T, n_expert_used)
  std::vector<int32_t> routed;      // (T * n_expert_used) flat (t, slot) indices of one expert
  std::vector<float> gathered;      // (T, n_embd) inputs routed to one expert
  std::vector<float> expert_out;    // (T, n_embd)
  std::vector<float> shared_gate;   // (T)
  std::vector<int32_t> row_pos;     // (T) RoPE position of each row of a multi-sequence step
  // Gated delta-net layers (C = conv_channels, D = d_inner, H = n_v_head).
  std::vector<float> gdn_qkv;      // (T, C)
  std::vector<float> gdn_conv;     // (T, C) conv output, SiLU in place
  std::vector<float> gdn_z;        // (T, D)
  std::vector<float> gdn_beta;     // (T, H)
  std::vector<float> gdn_alpha;    // (T, H)
  std::vector<float> gdn_gate;     // (T, H)
  std::vector<float> gdn_core;     // (T, D) delta-rule output, gated norm in place
  std::vector<float> gdn_scratch;  // the delta rule's per-thread scratch
};

// Runs tokens[0..T) at positions pos0..pos0+T-1 (T <= scratch.max_tokens()).
// Rows pos0..pos0+T-1 of every layer's cache are written; rows < pos0 must hold
// the earlier positions. logits: (1, n_vocab) for LogitRows::Last, (T, n_vocab) for All.
// Throws toy::Error for a token id outside [0, n_vocab) or a batch past the cache.
void forward(const Model& model, std::span<const int32_t> tokens, int64_t pos0,
             std::span<const KvLayer> cache, ForwardScratch& scratch, LogitRows rows, float* logits,
             const LinearContext& ctx);

// Runs one token of each of n = tokens.size() sequences in ONE pass: every weight
// product is over n rows (a matrix product, not n matrix-vector products), RoPE
// puts row r at rows[r].pos, and row r's K/V go to, and its attention reads,
// its own sequence's cache. logits: (n, n_vocab). n <= scratch.max_tokens().
// Throws toy::Error for a token id outside [0, n_vocab) or a position past a cache.
void forward_rows(const Model& model, std::span<const int32_t> tokens,
                  std::span<const SequenceRow> rows, ForwardScratch& scratch, float* logits,
                  const LinearContext& ctx);

}  // namespace toy

// Gated delta-net (GDN): the linear-attention recurrence of Yang, Kautz and
// Hatamizadeh, "Gated Delta Networks" (2024), as Qwen3-Next uses it and
// llama.cpp's GGML_OP_GATED_DELTA_NET computes it. Per sequence and value head h,
// with a state S of d_k × d_v and for each token t:
//
//   q̂ = q / ‖q‖,  k̂ = k / ‖k‖             (L2 per head; ‖·‖ floored at eps as ggml_l2_norm)
//   S ← diag(a) · S,  a = exp(g_t)        (g a scalar per head, or per key channel: "KDA")
//   δ = β_t · (v_t − Sᵀ k̂)                 (the delta rule: correct what S recalls for k̂)
//   S ← S + k̂ δᵀ
//   o_t = Sᵀ q̂ / sqrt(d_k)
//
// Three forms of the same function:
//   gdn_reference  per-token recurrence, double sums, templated (gradient checks);
//   gdn_recurrent  the optimized per-token step (decode);
//   gdn_chunked    blocks of C tokens in the WY/UT form (Yang et al., "Parallelizing
//                  linear transformers with the delta rule over sequence length",
//                  2024): inside a chunk the deltas solve a unit lower-triangular
//                  system, so the work is products of (C × d) matrices (prefill).
// gdn_forward picks between the last two by measurement (bench/gdn_bench.cpp). The backward
// (training) is in gated_delta_net_backward.h.
//
// Layout (ggml order, ne[0] contiguous). N = n_seq · n_tok rows, row s·n_tok + t:
//   q, k   (N, row_stride) head kh at offset kh·d_k (q_offset/k_offset already applied)
//   v      (N, row_stride) head h at offset h·d_v
//   g      (N, n_v_head) or, per channel, (N, n_v_head · d_k)
//   beta   (N, n_v_head)   already through the sigmoid
//   out    (N, n_v_head · d_v)
//   state  (n_seq, n_v_head, d_k, d_v): S[i][j], row i a key channel; read as the
//          start state and overwritten with the state after the last token.
// Value head h reads key/query head h / (n_v_head / n_k_head) (Qwen3-Next's
// repeat_interleave when there are more value heads than key heads).
#pragma once

#include <cstdint>

#include "kernels/compute.h"

namespace toy {

struct GdnDims {
  int64_t n_seq = 1;
  int64_t n_tok = 0;  // tokens per sequence
  int64_t n_k_head = 1;
  int64_t n_v_head = 1;
  int64_t d_k = 0;
  int64_t d_v = 0;
  int64_t row_stride = 0;         // elements between consecutive rows of q, k and v
  bool per_channel_gate = false;  // g holds d_k values per head (KDA)
  float eps = 1e-6f;              // floor of the L2 norm

  int64_t rows() const { return n_seq * n_tok; }
  int64_t gate_width() const { return per_channel_gate ? n_v_head * d_k : n_v_head; }
  int64_t state_floats() const { return n_seq * n_v_head * d_k * d_v; }
  int64_t k_head_of(int64_t h) const { return h / (n_v_head / n_k_head); }
};

// Throws toy::Error when the dimensions are inconsistent (naming the field).
void gdn_check_dims(const GdnDims& d);

// The per-token recurrence with double sums (Real = float or double).
template <typename Real>
void gdn_reference(Real* out, Real* state, const Real* q, const Real* k, const Real* v,
                   const Real* g, const Real* beta, const GdnDims& d);

// Floats of scratch gdn_recurrent / gdn_chunked / gdn_forward need for n_threads
// threads and chunks of `chunk` tokens (preallocated so decode allocates nothing).
int64_t gdn_scratch_floats(const GdnDims& d, int64_t chunk, int n_threads);

inline constexpr int64_t kGdnChunk = 64;

void gdn_recurrent(float* out, float* state, const float* q, const float* k, const float* v,
                   const float* g, const float* beta, const GdnDims& d, float* scratch,
                   const Compute& cx);

void gdn_chunked(float* out, float* state, const float* q, const float* k, const float* v,
                 const float* g, const float* beta, const GdnDims& d, int64_t chunk, float* scratch,
                 const Compute& cx);

// The form measured faster on this CPU (today the recurrence at every batch size;
// see the .cpp). scratch: gdn_scratch_floats(d, kGdnChunk, cx.size()) floats.
void gdn_forward(float* out, float* state, const float* q, const float* k, const float* v,
                 const float* g, const float* beta, const GdnDims& d, float* scratch,
                 const Compute& cx);

}  // namespace toy

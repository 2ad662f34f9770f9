// Rotary position embedding (Su et al., RoFormer) for inference, with every
// variant llama.cpp applies from GGUF metadata: both pair layouts, linear
// scaling, YaRN (Peng et al., "YaRN: Efficient Context Window Extension") and
// llama3 per-pair frequency factors.
//
// For pair i of n_rot/2 at position p:
//   θ_extrap = p · base^(−2i/n_rot) / factor_i
//   θ_interp = freq_scale · θ_extrap
//   θ = θ_interp                                  (no YaRN)
//   θ = θ_interp·(1 − ramp_i) + θ_extrap·ramp_i,  mscale ·= 1 + 0.1·ln(1/freq_scale)   (YaRN)
// and the pair is rotated by θ with cos/sin scaled by mscale. ramp_i is 1 for
// pairs below the "low" correction dim and 0 above the "high" one (ggml's
// rope_yarn_ramp over the dims where beta_fast / beta_slow rotations fit the
// original context).
#pragma once

#include <cstdint>

namespace toy {

enum class RopeMode {
  AdjacentPairs,  // (x[2i], x[2i+1])          ggml "norm": llama, Mixtral
  HalfSplit,      // (x[i], x[i + n_rot/2])    ggml "neox": qwen*, gemma2, olmoe
};

struct RopeParams {
  RopeMode mode = RopeMode::AdjacentPairs;
  int64_t n_rot = 0;     // leading dims of each head that rotate (even, <= head_dim)
  int64_t head_dim = 0;  // stride between heads
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;   // 1/factor for linear and YaRN scaling
  bool yarn = false;         // YaRN ramp and magnitude correction
  float attn_factor = 1.0f;  // base magnitude of cos/sin
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;               // original training context (YaRN)
  const float* freq_factors = nullptr;  // (n_rot/2) divisors of θ, or null
};

// The largest n_rot supported (angles of one position fit a fixed stack buffer).
inline constexpr int64_t kMaxRopeDims = 2048;

// cos/sin of each pair at position pos: cos_out, sin_out (n_rot/2).
void rope_angles(float* cos_out, float* sin_out, int64_t pos, const RopeParams& p);

// Rotates in place every head of every row: x (T, n_heads*head_dim), row t at
// position pos0 + t. Dims [n_rot, head_dim) of each head are left alone.
void rope_forward(float* x, int64_t T, int64_t n_heads, int64_t pos0, const RopeParams& p);

// Straightforward double-precision reference of rope_forward (for tests).
void rope_reference(float* x, int64_t T, int64_t n_heads, int64_t pos0, const RopeParams& p);

}  // namespace toy

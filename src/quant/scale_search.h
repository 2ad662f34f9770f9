// Scale searches shared by the quantizers: given a group of values, choose the
// integer levels L[i] and the float scale (and min) that minimise a weighted
// squared error. The algorithms are those of ggml-quants.c (make_qx_quants,
// make_qkx2_quants, make_q3_quants), rewritten here.
#pragma once

#include <cstdint>
#include <cstring>

namespace toy::quant {

// Below this a group is treated as all zeros (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |v| < 2^22 (ggml's nearest_int): adding
// 1.5 * 2^23 puts the integer part in the low mantissa bits. Never UB: for
// non-finite or huge v the result is some int, which callers clamp.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007FFFFF) - 0x00400000;
}

// (int)v clamped to [lo, hi]; NaN maps to lo. A float -> int cast of an out-of-range
// value is UB, so every truncating conversion of user data goes through here.
inline int truncate_clamped(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

inline int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Symmetric levels L[i] in 0..2*nmax-1 (value l - nmax) with x ~ scale * (L - nmax).
// rmse_type 0: plain max scaling; 1: weights x^2 (or qw) and a search over 18
// nearby scales keeping the best weighted fit. Returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Asymmetric levels L[i] in 0..nmax with x ~ scale * L - the_min (the_min >= 0): the
// min-max start, then nstep+1 trial scales (nmax + rmin + rdelta*k) / (max - min), each
// refined by the weighted least-squares (scale, min) for its levels. Returns the scale;
// *the_min receives the (non-negative) offset. Laux is scratch of n bytes.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);

// Symmetric levels for Q3_K (values -nmax..nmax-1, stored + nmax), with up to 5
// rounds of per-element level changes that improve the x^2-weighted fit.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

}  // namespace toy::quant

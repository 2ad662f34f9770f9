// Packed operands of the integer matmul (MatmulMode::Fast on block-quantized weights).
//
// Every ggml weight type we multiply in integers is rewritten, one row at a time, into
// one common shape, and every activation row is quantized once per matmul into the
// matching shape, so a single int8 micro-kernel (kernels/matmul_int8.cpp) serves all
// of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K:
//
//   weight element i  = wscale[lane(i)] * (u[i] - z)  +  min term of its group of 16
//   activation elem i = xscale[lane(i)] * q[i]
//
// where u is unsigned (0..255), q is signed (-127..127), z is the type's zero point
// (8 for Q4_0, 16 for Q5_0, 128 for Q8_0, 4 for Q3_K, 32 for Q6_K, 0 otherwise), and a
// "lane" is 4 consecutive elements: AVX-512 VNNI's vpdpbusd sums 4 u8*s8 products
// into one int32 lane, so a 64-element chunk is one zmm of bytes and 16 lanes of
// scales. The zero point is folded into the integer sum exactly (the activation side
// stores -z * (sum of its 4 q) per lane as the vpdpbusd start value), so for types
// without mins the integer sums are exactly ggml's. Types with mins (Q4_1, Q5_1,
// Q2_K, Q4_K, Q5_K) add sum_g wmin[g] * xsum[g] over groups of 16, where xsum is the
// activation's d * (sum of q) — ggml's Q8_1 `s` / Q8_K `bsums` term.
//
// Rows are zero-padded to a multiple of 64 elements (padding has u = q = scale = 0).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace toy::quant {

inline constexpr int64_t kPackChunk = 64;  // elements per zmm of bytes

inline int64_t packed_length(int64_t n) {
  return (n + kPackChunk - 1) / kPackChunk * kPackChunk;
}

// How a weight type pairs with the activation quantization (ggml's vec_dot_type).
enum class ActQuant {
  Q8_0,  // blocks of 32, f16 scale (Q4_0, Q5_0, Q8_0 weights)
  Q8_1,  // blocks of 32, f16 scale and f16 d*sum (Q4_1, Q5_1 weights)
  Q8_K,  // super-blocks of 256, f32 scale, sums per 16 (K-quant weights)
};

struct IntDotTraits {
  ActQuant act;
  int zero_point;  // z above
  bool has_mins;   // needs the per-16 min correction
  int scale_run;   // consecutive elements that share one weight scale and min (16 or 32)
};

// True for the weight types the integer path handles.
bool int_dot_supported(DType type);
// Traits of a supported type (TOY_CHECK otherwise).
IntDotTraits int_dot_traits(DType type);

// One packed weight row of n elements (np = packed_length(n)):
struct PackedWeightRow {
  uint8_t* u;    // (np)      unsigned codes
  float* scale;  // (np / 4)  per-lane scale
  float* min;    // (np / 16) per-group min coefficient (has_mins only)
};
// Bytes one packed weight row needs (u, scale and min, each 64-byte aligned).
size_t packed_weight_row_bytes(int64_t n);
// Lays a PackedWeightRow out over `memory` (packed_weight_row_bytes(n) bytes, 64-aligned).
PackedWeightRow packed_weight_row_at(uint8_t* memory, int64_t n);

// Rewrites one stored row (row_bytes(type, n) bytes) into the packed form. This is
// the portable packer; the CPU backends (kernels/cpu/) have faster ones with the
// same bits for the common types and call these pieces for the rest.
void pack_weight_row(DType type, const void* row, int64_t n, const PackedWeightRow& out);
// Zeroes the padding of a packed row past n elements.
void pad_weight_row(DType type, int64_t n, const PackedWeightRow& out);
// The lane scales and group mins of Q4_K / Q5_K super-block elements [first, first + 256).
void fill_q4_k_scales(uint16_t d16, uint16_t dmin16, const uint8_t packed[12], int64_t first,
                      const PackedWeightRow& out);

// One packed activation row of n elements (np = packed_length(n)):
struct PackedActRow {
  int8_t* q;       // (np)      signed codes
  float* scale;    // (np / 4)  per-lane scale
  int32_t* start;  // (np / 4)  -z * (sum of the lane's 4 codes): vpdpbusd start value
  float* sum;      // (np / 16) per-group d * sum(q) for the min correction
};
size_t packed_act_row_bytes(int64_t n);
PackedActRow packed_act_row_at(uint8_t* memory, int64_t n);

// Quantizes x[0..n) the way ggml quantizes activations for `weight_type`
// (quantize_row_q8_0 / q8_1 / q8_K, rounding half to even like ggml's SIMD paths)
// and stores the packed form. SIMD when available; the scalar path gives the same bits.
void pack_activation_row(DType weight_type, const float* x, int64_t n, const PackedActRow& out);

// The two block quantizers of activation packing, which the CPU backends replace
// with SIMD versions giving the same bits:
//  block32: ggml's x86 quantize_row_q8_0 / q8_1 block: d = amax / 127, codes
//           round(x * 127 / amax) half to even; returns the sum of the codes.
//  block256: ggml's quantize_row_q8_K: the scale comes from the signed value of
//           largest magnitude (first one on ties), codes capped at 127; sums per 16.
struct ActBlockQuantizers {
  int (*block32)(const float* x, int8_t* q, float* d_out);
  void (*block256)(const float* x, int8_t* q, float* d_out, int sums[16]);
};
int quantize_block32(const float* x, int8_t* q, float* d_out);
void quantize_block256(const float* x, int8_t* q, float* d_out, int sums[16]);
void pack_activation_row_using(const ActBlockQuantizers& quantize, DType weight_type,
                               const float* x, int64_t n, const PackedActRow& out);

}  // namespace toy::quant

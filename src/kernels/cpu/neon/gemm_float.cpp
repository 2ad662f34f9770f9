// NEON float GEMM behind matmul(): W rows stored as F32, F16 or BF16 are widened
// to F32 in registers (fcvtl for F16, a 16-bit shift for BF16) and multiplied
// with F32 FMAs. Register tiles of 4 activation rows × 4 weight rows, 8 elements
// of k per step: 16 accumulators + 8 activation + 2 weight registers of the 32.
#include "kernels/cpu/backend.h"
#include "kernels/cpu/neon/simd.h"

namespace toy::cpu::neon {
namespace {

constexpr int kTileT = 4;     // activation rows per register tile
constexpr int kTileRows = 4;  // weight rows per register tile

// 4 weights starting at element k of a row, as F32.
template <FloatWeight W>
inline float32x4_t load4(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    return vld1q_f32(reinterpret_cast<const float*>(row) + k);
  } else {
    const uint16x4_t h = vld1_u16(reinterpret_cast<const uint16_t*>(row) + k);
    return W == FloatWeight::F16 ? widen_f16(h) : widen_bf16(h);
  }
}

// 8 weights starting at element k of a row, as two F32 registers.
template <FloatWeight W>
inline void load8(const uint8_t* row, int64_t k, float32x4_t& lo, float32x4_t& hi) {
  if constexpr (W == FloatWeight::F32) {
    lo = vld1q_f32(reinterpret_cast<const float*>(row) + k);
    hi = vld1q_f32(reinterpret_cast<const float*>(row) + k + 4);
  } else {
    const uint16x8_t h = vld1q_u16(reinterpret_cast<const uint16_t*>(row) + k);
    if constexpr (W == FloatWeight::F16) {
      const float16x8_t f = vreinterpretq_f16_u16(h);
      lo = vcvt_f32_f16(vget_low_f16(f));
      hi = vcvt_high_f32_f16(f);
    } else {
      lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
      hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    }
  }
}

// One weight as F32 (the K % 4 tail).
template <FloatWeight W>
inline float weight_at(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return W == FloatWeight::F16 ? half_to_float(h) : bf16_to_float(h);
  }
}

template <int MR, int NR, FloatWeight W>
void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
          int64_t K) {
  float32x4_t acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    float32x4_t x0[MR], x1[MR];
    for (int i = 0; i < MR; ++i) {
      x0[i] = vld1q_f32(x + i * ldx + k);
      x1[i] = vld1q_f32(x + i * ldx + k + 4);
    }
    for (int j = 0; j < NR; ++j) {
      float32x4_t w0, w1;
      load8<W>(w + j * w_stride, k, w0, w1);
      for (int i = 0; i < MR; ++i) {
        acc[i][j] = vfmaq_f32(acc[i][j], x0[i], w0);
        acc[i][j] = vfmaq_f32(acc[i][j], x1[i], w1);
      }
    }
  }
  if (k + 4 <= K) {
    for (int j = 0; j < NR; ++j) {
      const float32x4_t wv = load4<W>(w + j * w_stride, k);
      for (int i = 0; i < MR; ++i) acc[i][j] = vfmaq_f32(acc[i][j], vld1q_f32(x + i * ldx + k), wv);
    }
    k += 4;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float sum = vaddvq_f32(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk)
        sum += x[i * ldx + kk] * weight_at<W>(w + j * w_stride, kk);
      y[i * ldy + j] = sum;
    }
}

using TileFn = void (*)(float*, int64_t, const float*, int64_t, const uint8_t*, size_t, int64_t);

// fn[mr - 1][nr - 1] for the edge tiles.
template <FloatWeight W>
struct TileTable {
  TileFn fn[kTileT][kTileRows];
  template <int MR, int NR>
  constexpr void set() {
    fn[MR - 1][NR - 1] = &tile<MR, NR, W>;
    if constexpr (NR < kTileRows)
      set<MR, NR + 1>();
    else if constexpr (MR < kTileT)
      set<MR + 1, 1>();
  }
  constexpr TileTable() : fn{} { set<1, 1>(); }
};

template <FloatWeight W>
void gemm(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const uint8_t* w,
          size_t w_stride, int64_t n_rows, int64_t K) {
  static constexpr TileTable<W> table;
  for (int64_t t = 0; t < T; t += kTileT) {
    const int mr = static_cast<int>(T - t < kTileT ? T - t : kTileT);
    for (int64_t o = 0; o < n_rows; o += kTileRows) {
      const int nr = static_cast<int>(n_rows - o < kTileRows ? n_rows - o : kTileRows);
      table.fn[mr - 1][nr - 1](y + t * ldy + o, ldy, x + t * ldx, ldx, w + o * w_stride, w_stride,
                               K);
    }
  }
}

template <FloatWeight W>
void widen(float* dst, const uint8_t* w, size_t w_stride, int64_t rows, int64_t K) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * w_stride;
    float* out = dst + r * K;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      float32x4_t lo, hi;
      load8<W>(row, k, lo, hi);
      vst1q_f32(out + k, lo);
      vst1q_f32(out + k + 4, hi);
    }
    for (; k < K; ++k) out[k] = weight_at<W>(row, k);
  }
}

// BF16 rounding of 4 floats, ties to even (add 0x7FFF plus the lowest kept bit,
// clear the 16 dropped bits); a NaN keeps its top bits and is made quiet, as
// quant/fp16.h's f32_to_bf16 (which this file must not call: see backend.h).
inline float32x4_t bf16_round(float32x4_t v) {
  const uint32x4_t bits = vreinterpretq_u32_f32(v);
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(1));
  const uint32x4_t rounded =
      vandq_u32(vaddq_u32(bits, vaddq_u32(lsb, vdupq_n_u32(0x7FFF))), vdupq_n_u32(0xFFFF0000u));
  const uint32x4_t quiet_nan =
      vorrq_u32(vandq_u32(bits, vdupq_n_u32(0xFFFF0000u)), vdupq_n_u32(0x00400000u));
  const uint32x4_t is_number = vceqq_f32(v, v);
  return vreinterpretq_f32_u32(vbslq_u32(is_number, rounded, quiet_nan));
}

// F16 rounding of 4 floats (fcvtn rounds to nearest even, overflow to inf); a
// NaN becomes the F16 quiet NaN 0x7E00 with its sign, as f32_to_f16 does.
inline float32x4_t f16_round(float32x4_t v) {
  const float32x4_t r = vcvt_f32_f16(vcvt_f16_f32(v));
  const uint32x4_t quiet_nan = vorrq_u32(
      vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000u)), vdupq_n_u32(0x7FC00000u));
  return vbslq_f32(vceqq_f32(v, v), r, vreinterpretq_f32_u32(quiet_nan));
}

}  // namespace

void widen_rows(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      return widen<FloatWeight::F32>(dst, wb, w_stride, rows, K);
    case FloatWeight::F16:
      return widen<FloatWeight::F16>(dst, wb, w_stride, rows, K);
    case FloatWeight::BF16:
      return widen<FloatWeight::BF16>(dst, wb, w_stride, rows, K);
  }
}

void round_to_16bit(float* dst, const float* x, int64_t n, FloatWeight type) {
  const bool f16 = type == FloatWeight::F16;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    vst1q_f32(dst + i, f16 ? f16_round(v) : bf16_round(v));
  }
  if (i < n) {
    const float32x4_t v = load_partial(x + i, n - i);
    store_partial(dst + i, f16 ? f16_round(v) : bf16_round(v), n - i);
  }
}

void gemm_float(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      return gemm<FloatWeight::F32>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::F16:
      return gemm<FloatWeight::F16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::BF16:
      return gemm<FloatWeight::BF16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
  }
}

}  // namespace toy::cpu::neon

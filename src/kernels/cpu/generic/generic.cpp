// The generic backend: portable C++ for every entry of the table. It is the
// reference the SIMD backends are tested against, and what a CPU without AVX2
// or NEON dotprod runs. The loops keep independent partial sums so the
// compiler can vectorize them with the baseline instruction set.
#include <cmath>
#include <cstring>

#include "kernels/cpu/backend.h"
#include "quant/fp16.h"

namespace toy::cpu {
namespace {

constexpr int kTileT = 4;     // activation rows per tile
constexpr int kTileRows = 6;  // weight rows per tile

template <FloatWeight W>
inline float weight_at(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return W == FloatWeight::F16 ? quant::f16_to_f32(h) : quant::bf16_to_f32(h);
  }
}

template <FloatWeight W>
void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
          int mr, int nr, int64_t K) {
  float acc[kTileT][kTileRows] = {};
  for (int64_t k = 0; k < K; ++k) {
    for (int j = 0; j < nr; ++j) {
      const float wv = weight_at<W>(w + j * w_stride, k);
      for (int i = 0; i < mr; ++i) acc[i][j] += x[i * ldx + k] * wv;
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) y[i * ldy + j] = acc[i][j];
}

template <FloatWeight W>
void gemm_typed(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const uint8_t* w,
                size_t w_stride, int64_t n_rows, int64_t K) {
  for (int64_t t = 0; t < T; t += kTileT) {
    const int mr = static_cast<int>(T - t < kTileT ? T - t : kTileT);
    for (int64_t o = 0; o < n_rows; o += kTileRows) {
      const int nr = static_cast<int>(n_rows - o < kTileRows ? n_rows - o : kTileRows);
      tile<W>(y + t * ldy + o, ldy, x + t * ldx, ldx, w + o * w_stride, w_stride, mr, nr, K);
    }
  }
}

void gemm_float(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      return gemm_typed<FloatWeight::F32>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::F16:
      return gemm_typed<FloatWeight::F16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::BF16:
      return gemm_typed<FloatWeight::BF16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
  }
}

void widen_rows(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = wb + r * w_stride;
    float* out = dst + r * K;
    for (int64_t k = 0; k < K; ++k) {
      out[k] = type == FloatWeight::F32   ? weight_at<FloatWeight::F32>(row, k)
               : type == FloatWeight::F16 ? weight_at<FloatWeight::F16>(row, k)
                                          : weight_at<FloatWeight::BF16>(row, k);
    }
  }
}

void round_to_16bit(float* dst, const float* x, int64_t n, FloatWeight type) {
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = type == FloatWeight::F16 ? quant::f16_to_f32(quant::f32_to_f16(x[i]))
                                      : quant::bf16_to_f32(quant::f32_to_bf16(x[i]));
  }
}

// The lane arithmetic of the packed layout: 4 u8·s8 products summed in int32 on
// top of the lane's start value, scaled by weight scale × activation scale.
void gemm_int8(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T,
               const quant::PackedWeightRow* w, int64_t n_rows, int64_t np,
               const quant::IntDotTraits& traits) {
  const bool use_start = traits.zero_point != 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t o = 0; o < n_rows; ++o) {
      float acc = 0.0f;
      for (int64_t lane = 0; lane < np / 4; ++lane) {
        int32_t dot = use_start ? x[t].start[lane] : 0;
        for (int b = 0; b < 4; ++b) dot += w[o].u[4 * lane + b] * x[t].q[4 * lane + b];
        acc += static_cast<float>(dot) * (w[o].scale[lane] * x[t].scale[lane]);
      }
      if (traits.has_mins) {
        float mins = 0.0f;
        for (int64_t g = 0; g < np / 16; ++g) mins += w[o].min[g] * x[t].sum[g];
        acc += mins;
      }
      y[t * ldy + o] = acc;
    }
  }
}

void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

void f16_to_f32_row(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quant::f16_to_f32(src[i]);
}

// The register tile as plain arrays, summed in k order.
void gemm_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m_valid,
                int64_t n_valid, bool overwrite) {
  float acc[kGemmMR][kGemmNR] = {};  // (kGemmMR rows, kGemmNR columns)
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * kGemmNR;
    for (int64_t i = 0; i < kGemmMR; ++i) {
      const float ai = a[k * kGemmMR + i];
      for (int64_t j = 0; j < kGemmNR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int64_t i = 0; i < m_valid; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < n_valid; ++j) row[j] = overwrite ? acc[i][j] : row[j] + acc[i][j];
  }
}

void swiglu(float* h, const float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float sigmoid = 1.0f / (1.0f + std::exp(-g[i]));
    const float silu = g[i] * sigmoid;
    du[i] += dh[i] * silu;
    dg[i] += dh[i] * u[i] * sigmoid * (1.0f + g[i] * (1.0f - sigmoid));
  }
}

const Backend kGeneric = {
    .name = "generic",
    .gemm_float = gemm_float,
    .widen_rows = widen_rows,
    .round_to_16bit = round_to_16bit,
    .packed_f32_min_rows = 0,  // the reference path: the scalar tiles
    .pack_weight_row = quant::pack_weight_row,
    .pack_activation_row = quant::pack_activation_row,
    .gemm_int8 = gemm_int8,
    .gemm_blocks = nullptr,  // the generic backend always packs
    .exp_shifted = exp_shifted,
    .f16_to_f32_row = f16_to_f32_row,
    .gemm_micro = gemm_micro,
    .gemm_micro_bf16 = nullptr,  // no BF16 dot products: rounded F32 panels
    .pack_rows = nullptr,        // the portable loop is the reference
    .pack_rows_bf16 = nullptr,
    .swiglu = swiglu,
    .swiglu_backward = swiglu_backward,
};

}  // namespace

const Backend& generic_backend() {
  return kGeneric;
}

}  // namespace toy::cpu

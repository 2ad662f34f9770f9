#include "kernels/linear_backward.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/aligned_vector.h"
#include "core/error.h"
#include "quant/fp16.h"

namespace toy {
namespace {

// Register tile kMR × kNR of the backend's gemm_micro (cpu/backend.h). KC × NR
// floats of B (32 KB) stay in L1 while the MC × KC block of A streams from L2.
constexpr int64_t kMR = cpu::kGemmMR;
constexpr int64_t kNR = cpu::kGemmNR;
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 128;

// Pack buffers reused across calls (training calls gemm thousands of times), on cache-line
// boundaries like the panels within them.
thread_local AlignedVector<float> tls_pack_a, tls_pack_b;
thread_local AlignedVector<uint32_t> tls_pairs_a, tls_pairs_b;

// F32 → BF16 bits, round to nearest even, without quant::f32_to_bf16's NaN branch so the
// loops below vectorize (a NaN in training has already made the loss NaN).
inline uint32_t bf16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
}

// An F32 micro-panel (panel[k*width + i], kc values of k) as BF16 pairs of k
// (pairs[p*width + i] = bf16(k = 2p) | bf16(k = 2p+1) << 16; an odd kc pads with zero).
void pair_panel(uint32_t* pairs, const float* panel, int64_t width, int64_t kc) {
  const int64_t full = kc / 2;
  for (int64_t p = 0; p < full; ++p) {
    const float* lo = panel + 2 * p * width;
    const float* hi = lo + width;
    for (int64_t i = 0; i < width; ++i)
      pairs[p * width + i] = bf16_bits(lo[i]) | bf16_bits(hi[i]) << 16;
  }
  if (kc % 2)
    for (int64_t i = 0; i < width; ++i)
      pairs[full * width + i] = bf16_bits(panel[2 * full * width + i]);
}

// The portable transposing pack (cpu::Backend::pack_rows's contract): `width` rows of
// contiguous k into a k-major panel, panel[k*width + i]; rows from `valid` on are zero.
void pack_rows_portable(float* panel, const float* src, int64_t stride, int64_t valid,
                        int64_t width, int64_t kc) {
  for (int64_t i = 0; i < width; ++i) {
    if (i >= valid) {
      for (int64_t k = 0; k < kc; ++k) panel[k * width + i] = 0.0f;
      continue;
    }
    const float* row = src + i * stride;
    for (int64_t k = 0; k < kc; ++k) panel[k * width + i] = row[k];
  }
}

// What the micro-kernel reads: F32 panels, or BF16 pairs (GemmInputs::BF16 with the
// backend's BF16 dot products), or F32 panels rounded to 16-bit values (F16, and BF16
// without them).
enum class Panels { F32, Pairs, RoundedBF16, RoundedF16 };

// Rows [first, first + count) × k [k0, k0 + kc) of a matrix whose element (row, k) is at
// m.data + row * m.row_stride + k * m.col_stride, as micro-panels of `width` rows, k-major
// (panel[k*width + i]; rows past `count` zero): F32 panels into `f32` (kc × width floats
// per panel), or with Panels::Pairs BF16 pairs into `pairs` ((kc+1)/2 × width words each).
void pack_panels(const cpu::Backend& cpu, Panels kind, float* f32, uint32_t* pairs,
                 MatrixRef<float> m, int64_t first, int64_t count, int64_t k0, int64_t kc,
                 int64_t width) {
  const int64_t kp = (kc + 1) / 2;
  for (int64_t p = 0; p < count; p += width) {
    const int64_t valid = std::min(width, count - p);
    const float* src = m.data + (first + p) * m.row_stride + k0 * m.col_stride;
    float* panel = f32 + p * kc;
    if (m.col_stride == 1) {
      // Rows of contiguous k: a transpose per panel, in the backend where it has one.
      if (kind == Panels::Pairs) {
        cpu.pack_rows_bf16(pairs + p * kp, src, m.row_stride, valid, width, kc);
        continue;
      }
      (cpu.pack_rows ? cpu.pack_rows : pack_rows_portable)(panel, src, m.row_stride, valid, width,
                                                           kc);
    } else {
      // k strided: one line of the panel per k.
      for (int64_t k = 0; k < kc; ++k) {
        const float* line = src + k * m.col_stride;
        float* dst = panel + k * width;
        if (m.row_stride == 1 && valid == width) {
          std::memcpy(dst, line, static_cast<size_t>(width) * sizeof(float));
        } else {
          for (int64_t i = 0; i < width; ++i) dst[i] = i < valid ? line[i * m.row_stride] : 0.0f;
        }
      }
      if (kind == Panels::Pairs) {
        pair_panel(pairs + p * kp, panel, width, kc);
        continue;
      }
    }
    if (kind == Panels::RoundedBF16 || kind == Panels::RoundedF16)
      cpu.round_to_16bit(panel, panel, kc * width,
                         kind == Panels::RoundedF16 ? FloatWeight::F16 : FloatWeight::BF16);
  }
}

// gemm_block on BF16 inputs with the backend's tile instructions (gemm_tile_bf16): blocks
// of kTileRows rows × kNR columns, k padded with zero pairs to whole tiles.
void gemm_block_tiles(const cpu::Backend& cpu, float* c, int64_t ldc, MatrixRef<float> a,
                      MatrixRef<float> b, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                      bool accumulate) {
  constexpr int64_t kRows = cpu::kTileRows;
  const MatrixRef<float> bt{b.data, b.col_stride, b.row_stride};
  const int64_t cols = n1 - n0;
  const int64_t cols_padded = (cols + kNR - 1) / kNR * kNR;
  const int64_t kp_max = (kKC / 2 + cpu::kTilePairs - 1) / cpu::kTilePairs * cpu::kTilePairs;
  tls_pairs_b.resize(static_cast<size_t>(kp_max * cols_padded));
  tls_pairs_a.resize(static_cast<size_t>(kp_max * kMC));
  tls_pack_b.resize(static_cast<size_t>(kKC * kNR));
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    const int64_t kp = (kc + 1) / 2;
    const int64_t kp_tiles = (kp + cpu::kTilePairs - 1) / cpu::kTilePairs * cpu::kTilePairs;
    for (int64_t jp = 0; jp < cols; jp += kNR) {
      uint32_t* panel = tls_pairs_b.data() + jp * kp_tiles;
      pack_panels(cpu, Panels::Pairs, tls_pack_b.data(), panel, bt, n0 + jp,
                  std::min(kNR, cols - jp), k0, kc, kNR);
      std::memset(panel + kp * kNR, 0, static_cast<size_t>((kp_tiles - kp) * kNR) * 4);
    }
    for (int64_t r0 = m0; r0 < m1; r0 += kMC) {
      const int64_t rows = std::min(kMC, m1 - r0);
      const int64_t padded = (rows + kRows - 1) / kRows * kRows;
      cpu.pack_tile_rows(tls_pairs_a.data(), kp_tiles,
                         a.data + r0 * a.row_stride + k0 * a.col_stride, a.row_stride, a.col_stride,
                         rows, padded, kc);
      const bool overwrite = k0 == 0 && !accumulate;
      for (int64_t ip = 0; ip < rows; ip += kRows) {
        for (int64_t jp = 0; jp < cols; jp += kNR) {
          cpu.gemm_tile_bf16(kp_tiles, tls_pairs_a.data() + ip * kp_tiles, kp_tiles,
                             tls_pairs_b.data() + jp * kp_tiles, c + (r0 + ip) * ldc + n0 + jp, ldc,
                             std::min(kRows, rows - ip), std::min(kNR, cols - jp), overwrite);
        }
      }
    }
  }
}

// C[m0..m1) × [n0..n1) += A·B on one thread (= when !accumulate; K > 0).
void gemm_block(const cpu::Backend& cpu, float* c, int64_t ldc, MatrixRef<float> a,
                MatrixRef<float> b, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                bool accumulate, GemmInputs inputs) {
  const Panels kind = inputs == GemmInputs::F32                   ? Panels::F32
                      : inputs == GemmInputs::F16                 ? Panels::RoundedF16
                      : cpu.gemm_micro_bf16 && cpu.pack_rows_bf16 ? Panels::Pairs
                                                                  : Panels::RoundedBF16;
  const bool pairs = kind == Panels::Pairs;
  if (pairs && cpu.gemm_tile_bf16 && cpu.pack_tile_rows) {
    gemm_block_tiles(cpu, c, ldc, a, b, m0, m1, n0, n1, K, accumulate);
    return;
  }
  // B's panels are rows of Bᵀ: element (column j, k) of B.
  const MatrixRef<float> bt{b.data, b.col_stride, b.row_stride};
  const int64_t cols = n1 - n0;
  const int64_t cols_padded = (cols + kNR - 1) / kNR * kNR;
  tls_pack_b.resize(static_cast<size_t>(kKC * cols_padded));
  tls_pack_a.resize(static_cast<size_t>(kKC * kMC));
  if (pairs) {
    tls_pairs_b.resize(static_cast<size_t>(kKC / 2 * cols_padded));
    tls_pairs_a.resize(static_cast<size_t>(kKC / 2 * kMC));
  }
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    const int64_t kp = (kc + 1) / 2;
    pack_panels(cpu, kind, tls_pack_b.data(), tls_pairs_b.data(), bt, n0, cols, k0, kc, kNR);
    for (int64_t r0 = m0; r0 < m1; r0 += kMC) {
      const int64_t rows = std::min(kMC, m1 - r0);
      pack_panels(cpu, kind, tls_pack_a.data(), tls_pairs_a.data(), a, r0, rows, k0, kc, kMR);
      for (int64_t jp = 0; jp < cols; jp += kNR) {
        for (int64_t ip = 0; ip < rows; ip += kMR) {
          float* tile = c + (r0 + ip) * ldc + n0 + jp;
          const int64_t m_valid = std::min(kMR, rows - ip), n_valid = std::min(kNR, cols - jp);
          const bool overwrite = k0 == 0 && !accumulate;
          if (pairs) {
            cpu.gemm_micro_bf16(kp, tls_pairs_a.data() + ip * kp, tls_pairs_b.data() + jp * kp,
                                tile, ldc, m_valid, n_valid, overwrite);
          } else {
            cpu.gemm_micro(kc, tls_pack_a.data() + ip * kc, tls_pack_b.data() + jp * kc, tile, ldc,
                           m_valid, n_valid, overwrite);
          }
        }
      }
    }
  }
}

}  // namespace

void gemm(float* c, int64_t ldc, MatrixRef<float> a, MatrixRef<float> b, int64_t M, int64_t N,
          int64_t K, bool accumulate, const Compute& cx, GemmInputs inputs) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.0f);
    return;
  }
  // Split the output over threads along whichever dimension has more register
  // tiles; every element is still summed by one thread in k order.
  const int64_t tiles_m = (M + kMR - 1) / kMR, tiles_n = (N + kNR - 1) / kNR;
  const int n_threads = cx.size();
  if (n_threads == 1 || M * N * K < 32 * 32 * 32) {
    gemm_block(cx.cpu, c, ldc, a, b, 0, M, 0, N, K, accumulate, inputs);
    return;
  }
  const bool split_n = tiles_n >= tiles_m || tiles_n >= 4 * int64_t(n_threads);
  cx.run([&](int t, int nt) {
    const int64_t tiles = split_n ? tiles_n : tiles_m;
    const int64_t begin = tiles * t / nt, end = tiles * (t + 1) / nt;
    if (begin >= end) return;
    if (split_n) {
      gemm_block(cx.cpu, c, ldc, a, b, 0, M, begin * kNR, std::min(N, end * kNR), K, accumulate,
                 inputs);
    } else {
      gemm_block(cx.cpu, c, ldc, a, b, begin * kMR, std::min(M, end * kMR), 0, N, K, accumulate,
                 inputs);
    }
  });
}

template <typename Real>
void gemm_in_thread(const cpu::Backend& cpu, Real* c, int64_t ldc, MatrixRef<Real> a,
                    MatrixRef<Real> b, int64_t M, int64_t N, int64_t K, bool accumulate,
                    GemmInputs inputs) {
  if constexpr (std::is_same_v<Real, float>) {
    if (M <= 0 || N <= 0) return;
    if (K > 0) {
      gemm_block(cpu, c, ldc, a, b, 0, M, 0, N, K, accumulate, inputs);
    } else if (!accumulate) {
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.0f);
    }
  } else {
    gemm_reference(c, ldc, a, b, M, N, K, accumulate);
  }
}

template <typename Real>
void gemm_reference(Real* c, int64_t ldc, MatrixRef<Real> a, MatrixRef<Real> b, int64_t M,
                    int64_t N, int64_t K, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      Real sum = 0;
      for (int64_t k = 0; k < K; ++k)
        sum += a.data[i * a.row_stride + k * a.col_stride] *
               b.data[k * b.row_stride + j * b.col_stride];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
  }
}

template <typename Real>
void gemm_any(Real* c, int64_t ldc, MatrixRef<Real> a, MatrixRef<Real> b, int64_t M, int64_t N,
              int64_t K, bool accumulate, const Compute& cx, GemmInputs inputs) {
  if constexpr (std::is_same_v<Real, float>) {
    gemm(c, ldc, a, b, M, N, K, accumulate, cx, inputs);
  } else {
    gemm_reference(c, ldc, a, b, M, N, K, accumulate);
  }
}

template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* w, const Real* bias, int64_t T,
                    int64_t n_in, int64_t n_out, const Compute& cx, GemmInputs inputs) {
  // y(t, o) = Σ_i x(t, i) · W(o, i): B(i, o) = W[o*n_in + i].
  gemm_any<Real>(y, n_out, {x, n_in, 1}, {w, 1, n_in}, T, n_out, n_in, false, cx, inputs);
  if (bias) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < n_out; ++o) y[t * n_out + o] += bias[o];
  }
}

template <typename Real>
void linear_backward(Real* dx, Real* dw, Real* dbias, const Real* dy, const Real* x, const Real* w,
                     int64_t T, int64_t n_in, int64_t n_out, const Compute& cx, GemmInputs inputs) {
  // dx(t, i) += Σ_o dy(t, o) · W(o, i)
  if (dx) gemm_any<Real>(dx, n_in, {dy, n_out, 1}, {w, n_in, 1}, T, n_in, n_out, true, cx, inputs);
  // dW(o, i) += Σ_t dy(t, o) · x(t, i): A(o, t) = dy[t*n_out + o].
  if (dw) gemm_any<Real>(dw, n_in, {dy, 1, n_out}, {x, n_in, 1}, n_out, n_in, T, true, cx, inputs);
  if (dbias) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < n_out; ++o) dbias[o] += dy[t * n_out + o];
  }
}

template void gemm_any<float>(float*, int64_t, MatrixRef<float>, MatrixRef<float>, int64_t, int64_t,
                              int64_t, bool, const Compute&, GemmInputs);
template void gemm_any<double>(double*, int64_t, MatrixRef<double>, MatrixRef<double>, int64_t,
                               int64_t, int64_t, bool, const Compute&, GemmInputs);
template void gemm_in_thread<float>(const cpu::Backend&, float*, int64_t, MatrixRef<float>,
                                    MatrixRef<float>, int64_t, int64_t, int64_t, bool, GemmInputs);
template void gemm_in_thread<double>(const cpu::Backend&, double*, int64_t, MatrixRef<double>,
                                     MatrixRef<double>, int64_t, int64_t, int64_t, bool,
                                     GemmInputs);
template void gemm_reference<float>(float*, int64_t, MatrixRef<float>, MatrixRef<float>, int64_t,
                                    int64_t, int64_t, bool);
template void gemm_reference<double>(double*, int64_t, MatrixRef<double>, MatrixRef<double>,
                                     int64_t, int64_t, int64_t, bool);
template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t,
                                    int64_t, int64_t, const Compute&, GemmInputs);
template void linear_forward<double>(double*, const double*, const double*, const double*, int64_t,
                                     int64_t, int64_t, const Compute&, GemmInputs);
template void linear_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, int64_t, int64_t, int64_t, const Compute&,
                                     GemmInputs);
template void linear_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, int64_t, int64_t, int64_t, const Compute&,
                                      GemmInputs);

}  // namespace toy

// The per-instruction-set CPU backends: one table of functions per ISA, chosen
// once at start-up from the CPU's feature bits and passed explicitly (inside
// toy::Compute) to every kernel that has a hot inner loop.
//
// Each backend lives in src/kernels/cpu/<isa>/ and is compiled with its own
// flags (see src/CMakeLists.txt), so the default build targets baseline x86-64
// (or ARMv8-A) and still runs the best code of the CPU it finds. A GPU backend
// attaches at this same seam later.
//
// Rules for the ISA files: include only C headers, <immintrin.h>/<arm_neon.h>,
// this header and quant/blocks.h / quant/dot_pack.h (plain structs); keep every
// helper in an anonymous namespace. An inline function or template shared with
// baseline code would otherwise be emitted with AVX-512 instructions and could
// be picked by the linker for baseline callers (a test disassembles the binary
// to check that only the ISA files contain ymm/zmm instructions).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "quant/dot_pack.h"

namespace toy {

enum class FloatWeight { F32, F16, BF16 };

namespace cpu {

struct Backend {
  const char* name;  // "generic", "avx2", "avx512", "neon"

  // ---- float matmul (kernels/matmul_float.h documents the contracts) ----
  // y[t * ldy + o] = sum_k x[t * ldx + k] * W[o][k], t < T, o < n_rows; row o of W
  // starts at w + o * w_stride bytes and holds K elements of `type`.
  void (*gemm_float)(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                     size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K);
  // dst (rows, K) = rows of W widened to F32.
  void (*widen_rows)(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                     int64_t K);
  // dst[i] = x[i] rounded to F16 / BF16 (ties to even), kept as F32. type != F32.
  void (*round_to_16bit)(float* dst, const float* x, int64_t n, FloatWeight type);
  // From this many activation rows up (0: never), an inference product with F32 weights
  // runs on the packed training GEMM (gemm_micro below) instead of gemm_float's tiles:
  // where it measured faster on this backend's CPUs. Below it, packing the whole weight
  // costs more than the faster kernel saves.
  int64_t packed_f32_min_rows;

  // ---- integer matmul on packed rows (quant/dot_pack.h) ----
  // Same bits as quant::pack_weight_row / quant::pack_activation_row.
  void (*pack_weight_row)(DType type, const void* row, int64_t n,
                          const quant::PackedWeightRow& out);
  void (*pack_activation_row)(DType weight_type, const float* x, int64_t n,
                              const quant::PackedActRow& out);
  // y[t * ldy + o] = dot(x[t], w[o]); np = packed length; traits of the weight type.
  void (*gemm_int8)(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T,
                    const quant::PackedWeightRow* w, int64_t n_rows, int64_t np,
                    const quant::IntDotTraits& traits);
  // Optional (nullptr: none): the same product read straight from the stored weight
  // blocks (row o at w + o * w_stride bytes, n elements of `type`) for a few
  // activation rows (decode), where packing each weight row would cost more memory
  // traffic than the product. Returns false for a type or T it does not handle.
  bool (*gemm_blocks)(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T, const void* w,
                      size_t w_stride, int64_t n_rows, int64_t n, DType type);

  // Optional (nullptr: none; set where the CPU has AMX-INT8): the integer GEMM on tile
  // registers, for many activation rows (prefill). pack_tile_int8 turns kTileInt8Rows packed
  // weight rows (the first `count` real, the rest read as zero) of np packed elements into a
  // panel of tile_int8_panel_bytes(np) bytes; it returns false, writing nothing, for a type
  // whose weight scale changes within 32 elements (traits.scale_run < 32).
  bool (*pack_tile_int8)(uint8_t* panel, const quant::PackedWeightRow* w, int64_t count, int64_t np,
                         const quant::IntDotTraits& traits);
  // y[t * ldy + o] = dot(x[t], w[o]) for t < T, o < n_valid, w from a pack_tile_int8 panel.
  // Each run of 32 products is summed exactly in integers, scaled and added in F32 in the
  // order of k (ggml's vec_dot order), so a row's result does not depend on T, though its
  // rounding differs from gemm_int8's. x's rows lie at one stride (x[i].q = x[0].q + i·s
  // bytes, the same s for scale and sum) and the memory of 16·⌈T/16⌉ rows is readable.
  void (*gemm_tile_int8)(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T,
                         const uint8_t* panel, int64_t n_valid, int64_t np,
                         const quant::IntDotTraits& traits);

  // Optional (nullptr: none): y[0..n) = the row of `type` blocks dequantized, bit for bit
  // as quant::dequantize_row. Returns false for a type it does not handle (the caller then
  // uses quant::dequantize_row).
  bool (*dequantize_row)(DType type, const void* row, float* y, int64_t n);

  // ---- elementwise ----
  // y[i] = exp(x[i] - shift) (y may alias x); relative error < 4e-7.
  void (*exp_shifted)(float* y, const float* x, float shift, int64_t n);
  // dst[i] = F16 src[i] as F32.
  void (*f16_to_f32_row)(float* dst, const uint16_t* src, int64_t n);

  // ---- training kernels' inner loops ----
  // Packed-panel GEMM micro-kernel (kernels/linear_backward.cpp): a is a
  // k-major panel of kGemmMR rows, b a k-major panel of kGemmNR columns;
  // C[0..m_valid) x [0..n_valid) += a·b over kc (= when `overwrite`).
  void (*gemm_micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                     int64_t m_valid, int64_t n_valid, bool overwrite);
  // gemm_micro on BF16 inputs (mixed-precision training): kp pairs of k; a[p*kGemmMR + i]
  // holds A(i, 2p) in its low 16 bits and A(i, 2p+1) in its high 16 bits (BF16), b[p*kGemmNR
  // + j] likewise B(2p, j) and B(2p+1, j); the products are summed in F32. nullptr where
  // the CPU has no BF16 dot product: the GEMM then rounds its F32 panels to BF16 values
  // and runs gemm_micro (the same products, summed one at a time).
  void (*gemm_micro_bf16)(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                          int64_t m_valid, int64_t n_valid, bool overwrite);
  // The GEMM's transposing pack: `width` rows (a multiple of 8) of contiguous k into a
  // k-major micro-panel, panel[k*width + i] = i < valid ? src[i*stride + k] : 0, k < kc.
  // nullptr: the portable loop of kernels/linear_backward.cpp.
  void (*pack_rows)(float* panel, const float* src, int64_t stride, int64_t valid, int64_t width,
                    int64_t kc);
  // The same rows as gemm_micro_bf16's pairs: pairs[p*width + i] = bf16(row i, k = 2p) |
  // bf16(row i, k = 2p+1) << 16, rounded to nearest even, zero past kc and for rows ≥ valid.
  // The GEMM uses BF16 pairs only where both this and gemm_micro_bf16 are set.
  void (*pack_rows_bf16)(uint32_t* pairs, const float* src, int64_t stride, int64_t valid,
                         int64_t width, int64_t kc);
  // Optional (nullptr: none): gemm_micro_bf16's product on tile registers (Intel AMX-BF16),
  // a kTileRows × kGemmNR block: a holds kTileRows rows of A as BF16 pairs in pack_tile_rows's
  // layout with lda pairs per row; b is a gemm_micro_bf16 B panel (b[p*kGemmNR + j]); kp
  // pairs, a multiple of kTilePairs (the panels are zero past the real k). C[0..m_valid) x
  // [0..n_valid) += A·B (= when `overwrite`). Each element is summed the same way wherever its
  // block lies, so results do not depend on how the GEMM is split over threads.
  void (*gemm_tile_bf16)(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* b, float* c,
                         int64_t ldc, int64_t m_valid, int64_t n_valid, bool overwrite);
  // gemm_tile_bf16's A operand (set with it): the pair bf16(A(i, 2p)) | bf16(A(i, 2p+1)) << 16
  // (nearest even), A(i, k) = src[i*row_stride + k*col_stride], for i < count and k < kc; zero
  // from k = kc up to ld pairs (a multiple of kTilePairs) and for rows count..padded_rows (a
  // multiple of 16). Stored tile by tile, so one tile load reads 1 KiB in a row: pair (i, p)
  // at rows[(i/16)*16*ld + (p/16)*256 + (i%16)*16 + p%16].
  void (*pack_tile_rows)(uint32_t* rows, int64_t ld, const float* src, int64_t row_stride,
                         int64_t col_stride, int64_t count, int64_t padded_rows, int64_t kc);
  // SwiGLU, h[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u (h may alias g or u).
  void (*swiglu)(float* h, const float* g, const float* u, int64_t n);
  // SwiGLU backward, h = silu(g) * u: dg += dh * u * silu'(g), du += dh * silu(g).
  void (*swiglu_backward)(float* dg, float* du, const float* dh, const float* g, const float* u,
                          int64_t n);
};

// The register tile of gemm_micro, shared by every backend's packing.
inline constexpr int64_t kGemmMR = 8;
inline constexpr int64_t kGemmNR = 32;
// gemm_tile_bf16's block: rows of A per call, and the pairs of k one tile instruction takes.
inline constexpr int64_t kTileRows = 32;
inline constexpr int64_t kTilePairs = 16;

// gemm_tile_int8's weight panel: kTileInt8Rows rows; per run of 32 elements, the B tile (8 rows
// of 16 × 4 signed codes), 16 scales and the mins of the two halves (16 each).
inline constexpr int64_t kTileInt8Rows = 16;
inline constexpr size_t kTileInt8RunBytes = 512 + 3 * 64;
inline size_t tile_int8_panel_bytes(int64_t np) {
  return static_cast<size_t>(np / 32) * kTileInt8RunBytes;
}

// The tables, one per backend compiled into this binary (nullptr where the
// architecture has none). generic is always present.
const Backend& generic_backend();
const Backend* avx2_backend();
// Without VNNI the int8 GEMM is AVX2's; without AVX512_BF16 there is no gemm_micro_bf16;
// gemm_tile_bf16 only with `amx_bf16`, gemm_tile_int8 only with `amx_int8` (AMX usable: see
// Features).
const Backend* avx512_backend(bool vnni, bool bf16 = false, bool amx_bf16 = false,
                              bool amx_int8 = false);
const Backend* neon_backend();

}  // namespace cpu
}  // namespace toy

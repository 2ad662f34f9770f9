#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/error.h"
#include "kernels/linear_backward.h"
#include "quant/dot_pack.h"
#include "quant/dot_ref.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy {
namespace {

// Weight rows handled per cache block: the converted / packed block stays in L2
// while every activation row streams past it.
constexpr int64_t kFloatBlockRows = 48;
constexpr int64_t kIntBlockRows = 16;

// Up to this many activation rows the weights are read about once and the call is
// bound by memory bandwidth (decode): prefetch them ahead of use.
constexpr int64_t kStreamingT = 4;
constexpr int64_t kPrefetchRows = 16;
constexpr int64_t kStreamBlockRows = 24;  // whole register tiles of every backend (4, 6, 8 rows)

inline void prefetch(const uint8_t* p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 1);
}

// Runs fn over activation rows [0, T): on the calling thread for a few rows (a
// parallel region costs a wake-up and a barrier, more than quantizing one row),
// split across the threads otherwise.
template <typename Fn>
void for_rows(const Compute& cx, int64_t T, Fn&& fn) {
  if (T <= kStreamingT) {
    fn(0, T);
  } else {
    cx.parallel_for(T, fn);
  }
}

// A grow-only 64-byte-aligned buffer; one per thread, reused across calls.
class Scratch {
 public:
  uint8_t* get(size_t bytes) {
    if (bytes > capacity_) {
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      void* p = std::aligned_alloc(64, rounded);
      if (!p) throw std::bad_alloc();
      data_.reset(static_cast<uint8_t*>(p));
      capacity_ = rounded;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
};

// Shared activations (F16-rounded copy or packed rows): filled by all threads, then read.
Scratch& shared_scratch() {
  static thread_local Scratch s;
  return s;
}
// Per-thread weight block (dequantized rows or packed rows).
Scratch& thread_scratch() {
  static thread_local Scratch s;
  return s;
}
Scratch& row_list_scratch() {
  static thread_local Scratch s;
  return s;
}

// The part of the (T × n_out) output a thread computes.
struct Range {
  int64_t t0, t1, o0, o1;
};

// Splits the output across threads: by weight rows (aligned to `align`) normally,
// by activation rows when W has too few rows to share.
Range split(int64_t T, int64_t n_out, int thread, int n_threads, int64_t align) {
  const int64_t units = (n_out + align - 1) / align;
  if (units < 2 * n_threads && T >= 8 * n_threads) {
    return {T * thread / n_threads, T * (thread + 1) / n_threads, 0, n_out};
  }
  const int64_t u0 = units * thread / n_threads, u1 = units * (thread + 1) / n_threads;
  return {0, T, std::min(n_out, u0 * align), std::min(n_out, u1 * align)};
}

bool is_float_type(DType type) {
  return type == DType::F32 || type == DType::F16 || type == DType::BF16;
}

FloatWeight float_weight(DType type) {
  return type == DType::F16 ? FloatWeight::F16
                            : (type == DType::BF16 ? FloatWeight::BF16 : FloatWeight::F32);
}

// Rounds x to the weight's 16-bit type (what ggml does to activations before an F16 /
// BF16 dot product), keeping F32 storage.
void round_activations(const cpu::Backend& cpu, float* dst, const float* x, int64_t count,
                       DType type) {
  cpu.round_to_16bit(dst, x, count, float_weight(type));
}

void matmul_float_path(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx,
                       MatmulMode mode) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  const float* xs = x;
  if (mode == MatmulMode::Fast && (w.type == DType::F16 || w.type == DType::BF16)) {
    float* rounded = reinterpret_cast<float*>(
        shared_scratch().get(static_cast<size_t>(T * n_in) * sizeof(float)));
    for_rows(cx, T, [&](int64_t begin, int64_t end) {
      round_activations(cx.cpu, rounded + begin * n_in, x + begin * n_in, (end - begin) * n_in,
                        w.type);
    });
    xs = rounded;
  }
  // F32 rows are used in place. 16-bit rows are widened in registers when few
  // activation rows share them, and widened once per cache block into F32 when
  // many do; block-quantized rows are dequantized per cache block.
  const bool in_place = w.type == DType::F32 || (is_float_type(w.type) && T <= kStreamingT);
  cx.run([&](int thread, int n_threads) {
    const Range r = split(T, n_out, thread, n_threads, 16);
    if (r.t0 >= r.t1 || r.o0 >= r.o1) return;
    const int64_t t_count = r.t1 - r.t0;
    const float* xo = xs + r.t0 * n_in;
    if (in_place) {
      // Sub-blocks of a few rows, so a streaming (decode) call can prefetch ahead.
      const int64_t step = t_count <= kStreamingT ? kStreamBlockRows : kFloatBlockRows;
      const size_t row_size = w.row_bytes();
      for (int64_t o = r.o0; o < r.o1; o += step) {
        const int64_t rows = std::min(step, r.o1 - o);
        if (t_count <= kStreamingT && o + 2 * step <= r.o1)
          prefetch(w.row(o + step), static_cast<size_t>(step) * row_size);
        cx.cpu.gemm_float(y + r.t0 * n_out + o, n_out, xo, n_in, t_count, w.row(o), w.nb[1],
                          float_weight(w.type), rows, n_in);
      }
      return;
    }
    float* block = reinterpret_cast<float*>(
        thread_scratch().get(static_cast<size_t>(kFloatBlockRows * n_in) * sizeof(float)));
    for (int64_t o = r.o0; o < r.o1; o += kFloatBlockRows) {
      const int64_t rows = std::min(kFloatBlockRows, r.o1 - o);
      if (is_float_type(w.type)) {
        cx.cpu.widen_rows(block, w.row(o), w.nb[1], float_weight(w.type), rows, n_in);
      } else {
        for (int64_t i = 0; i < rows; ++i)
          quant::dequantize_row(w.type, w.row(o + i), block + i * n_in, n_in);
      }
      cx.cpu.gemm_float(y + r.t0 * n_out + o, n_out, xo, n_in, t_count, block, n_in * sizeof(float),
                        FloatWeight::F32, rows, n_in);
    }
  });
}

// Many activation rows on a CPU with AMX-INT8: each thread packs 16 weight rows at a time
// into a tile panel and multiplies every activation row by it.
void int_path_on_tiles(float* y, const quant::PackedActRow* acts, const Tensor& w, int64_t T,
                       const quant::IntDotTraits& traits, const Compute& cx) {
  const int64_t n_in = w.ne[0], n_out = w.rows(), np = quant::packed_length(n_in);
  cx.run([&](int thread, int n_threads) {
    const Range r = split(T, n_out, thread, n_threads, cpu::kTileInt8Rows);
    if (r.t0 >= r.t1 || r.o0 >= r.o1) return;
    const size_t row_bytes = quant::packed_weight_row_bytes(n_in);
    uint8_t* memory =
        thread_scratch().get(cpu::kTileInt8Rows * row_bytes + cpu::tile_int8_panel_bytes(np));
    uint8_t* panel = memory + cpu::kTileInt8Rows * row_bytes;
    quant::PackedWeightRow rows[cpu::kTileInt8Rows];
    for (int64_t i = 0; i < cpu::kTileInt8Rows; ++i)
      rows[i] = quant::packed_weight_row_at(memory + i * row_bytes, n_in);
    for (int64_t o = r.o0; o < r.o1; o += cpu::kTileInt8Rows) {
      const int64_t count = std::min(cpu::kTileInt8Rows, r.o1 - o);
      for (int64_t i = 0; i < count; ++i)
        cx.cpu.pack_weight_row(w.type, w.row(o + i), n_in, rows[i]);
      cx.cpu.pack_tile_int8(panel, rows, count, np, traits);
      cx.cpu.gemm_tile_int8(y + r.t0 * n_out + o, n_out, acts + r.t0, r.t1 - r.t0, panel, count, np,
                            traits);
    }
  });
}

void matmul_int_path(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  const int64_t np = quant::packed_length(n_in);
  const quant::IntDotTraits traits = quant::int_dot_traits(w.type);
  // Prefill-sized products run on AMX tiles where the CPU has them, unless each row must
  // round as it would alone (the decode kernels below do not use tiles).
  const bool tiles = cx.cpu.gemm_tile_int8 && T > kStreamingT && !cx.batch_invariant_rows &&
                     traits.scale_run >= 32;

  // Quantize every activation row once, in parallel. The tile kernel reads the codes of
  // 16 rows at a time: they are stored as one matrix (whose rows past T are zeros), the
  // scales and sums beside it.
  const size_t act_bytes = quant::packed_act_row_bytes(n_in);
  // A thread's rows may start anywhere (split by rows), so its last tile can reach 15 rows
  // past T.
  const int64_t padded_T = tiles ? T + 15 : T;
  uint8_t* act_memory = shared_scratch().get(static_cast<size_t>(padded_T) * act_bytes);
  auto* acts = reinterpret_cast<quant::PackedActRow*>(
      row_list_scratch().get(static_cast<size_t>(T) * sizeof(quant::PackedActRow)));
  if (tiles) {
    auto* q = reinterpret_cast<int8_t*>(act_memory);
    auto* scale = reinterpret_cast<float*>(act_memory + padded_T * np);
    auto* start = reinterpret_cast<int32_t*>(scale + padded_T * np / 4);
    auto* sum = reinterpret_cast<float*>(start + padded_T * np / 4);
    const size_t pad = static_cast<size_t>(padded_T - T);
    std::memset(q + T * np, 0, pad * np);
    std::memset(scale + T * np / 4, 0, pad * np);  // np / 4 floats per row
    std::memset(sum + T * np / 16, 0, pad * np / 4);
    for (int64_t t = 0; t < T; ++t)
      acts[t] = {q + t * np, scale + t * np / 4, start + t * np / 4, sum + t * np / 16};
  } else {
    for (int64_t t = 0; t < T; ++t)
      acts[t] = quant::packed_act_row_at(act_memory + t * act_bytes, n_in);
  }
  for_rows(cx, T, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      cx.cpu.pack_activation_row(w.type, x + t * n_in, n_in, acts[t]);
  });
  if (tiles) {
    int_path_on_tiles(y, acts, w, T, traits, cx);
    return;
  }

  cx.run([&](int thread, int n_threads) {
    const Range r = split(T, n_out, thread, n_threads, 16);
    if (r.t0 >= r.t1 || r.o0 >= r.o1) return;
    const bool stream = r.t1 - r.t0 <= kStreamingT;
    // Decode: the backend may multiply the stored blocks directly.
    if (stream && cx.cpu.gemm_blocks &&
        cx.cpu.gemm_blocks(y + r.t0 * n_out + r.o0, n_out, acts + r.t0, r.t1 - r.t0, w.row(r.o0),
                           w.nb[1], r.o1 - r.o0, n_in, w.type))
      return;
    const size_t row_bytes = quant::packed_weight_row_bytes(n_in);
    const size_t row_size = w.row_bytes();
    uint8_t* memory = thread_scratch().get(kIntBlockRows * row_bytes);
    quant::PackedWeightRow rows[kIntBlockRows];
    for (int64_t i = 0; i < kIntBlockRows; ++i)
      rows[i] = quant::packed_weight_row_at(memory + i * row_bytes, n_in);
    for (int64_t o = r.o0; o < r.o1; o += kIntBlockRows) {
      const int64_t count = std::min(kIntBlockRows, r.o1 - o);
      for (int64_t i = 0; i < count; ++i) {
        // Decode streams the weights from DRAM once: ask for a few rows ahead so
        // the loads overlap the packing and the dot products.
        if (stream && o + i + kPrefetchRows < r.o1)
          prefetch(w.row(o + i + kPrefetchRows), row_size);
        cx.cpu.pack_weight_row(w.type, w.row(o + i), n_in, rows[i]);
      }
      cx.cpu.gemm_int8(y + r.t0 * n_out + o, n_out, acts + r.t0, r.t1 - r.t0, rows, count, np,
                       traits);
    }
  });
}

// MatmulMode::Train on a weight stored in another type than F32 (a frozen quantized or
// 16-bit base under LoRA): blocks of weight rows are dequantized into a reused F32 buffer
// and multiplied by the packed training GEMM, which runs several times faster than the
// inference tiles at training's row counts (T = B·T positions) and keeps the arithmetic
// of the F32 path.
void matmul_train_blocks(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx,
                         GemmInputs inputs) {
  // The GEMM packs all of x once per block of weight rows: large blocks keep that copy
  // small next to the products (the 49152-row output matrix would repack x 192 times in
  // blocks of 256 rows).
  const int64_t n_in = w.ne[0], n_out = w.rows();
  for_each_dequantized_block(w, 1024, cx, [&](const float* block, int64_t o, int64_t rows) {
    // y(t, o + j) = Σ_i x(t, i) · W(o + j, i)
    gemm(y + o, n_out, {x, n_in, 1}, {block, 1, n_in}, T, rows, n_in, false, cx, inputs);
  });
}

// y = x · Wᵀ on the packed GEMM, for a W stored as F32 (used in place).
void gemm_f32_weight(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx,
                     GemmInputs inputs) {
  // y(t, o) = Σ_i x(t, i) · W(o, i): B(i, o) = W[o*row + i].
  const int64_t n_in = w.ne[0], row = static_cast<int64_t>(w.nb[1] / sizeof(float));
  gemm(y, w.rows(), {x, n_in, 1}, {w.ptr<const float>(), 1, row}, T, w.rows(), n_in, false, cx,
       inputs);
}

void check_weight(const Tensor& w, const char* what) {
  TOY_CHECK(w.contiguous(), what, ": weight must be contiguous, shape ", w.shape_string());
  TOY_CHECK(w.ne[0] % dtype_info(w.type).block_size == 0, what, ": n_in ", w.ne[0],
            " is not a multiple of the ", dtype_name(w.type), " block size");
}

}  // namespace

void for_each_dequantized_block(
    const Tensor& w, int64_t max_rows, const Compute& cx,
    const std::function<void(const float* block, int64_t row0, int64_t rows)>& fn) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  static thread_local std::vector<float> buffer;  // the caller's; the workers get `block`
  buffer.resize(static_cast<size_t>(std::min(max_rows, n_out) * n_in));
  float* block = buffer.data();
  for (int64_t o = 0; o < n_out; o += max_rows) {
    const int64_t rows = std::min(max_rows, n_out - o);
    cx.parallel_for(
        rows,
        [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            float* dst = block + i * n_in;
            if (!(cx.cpu.dequantize_row && cx.cpu.dequantize_row(w.type, w.row(o + i), dst, n_in)))
              quant::dequantize_row(w.type, w.row(o + i), dst, n_in);
          }
        },
        16);
    fn(block, o, rows);
  }
}

void matmul(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx,
            MatmulMode mode) {
  check_weight(w, "matmul");
  if (T <= 0 || w.rows() == 0) return;
  const GemmInputs inputs = gemm_inputs(mode);
  if (is_training_mode(mode) && w.type == DType::F32) {
    gemm_f32_weight(y, x, w, T, cx, inputs);
  } else if (is_training_mode(mode) && T > kStreamingT && quant::can_dequantize(w.type)) {
    matmul_train_blocks(y, x, w, T, cx, inputs);
  } else if (mode == MatmulMode::Fast && w.type == DType::F32 && cx.cpu.packed_f32_min_rows > 0 &&
             T >= cx.cpu.packed_f32_min_rows && !cx.batch_invariant_rows) {
    // Prefill on F32 weights where the backend's packed GEMM beats its inference tiles: the
    // same products, summed over k in order instead of in 8 lanes.
    gemm_f32_weight(y, x, w, T, cx, GemmInputs::F32);
  } else if (mode == MatmulMode::Fast && w.type == DType::BF16 && cx.cpu.gemm_tile_bf16 &&
             T > kStreamingT && !cx.batch_invariant_rows) {
    // BF16 weights take activations rounded to BF16 and sum exact products in F32: what the
    // training GEMM's BF16 inputs are, which runs on AMX tiles here.
    matmul_train_blocks(y, x, w, T, cx, GemmInputs::BF16);
  } else if (mode == MatmulMode::Fast && quant::int_dot_supported(w.type)) {
    matmul_int_path(y, x, w, T, cx);
  } else {
    TOY_CHECK(is_float_type(w.type) || quant::can_dequantize(w.type),
              "matmul: no kernel for weight type ", dtype_name(w.type));
    matmul_float_path(y, x, w, T, cx, mode);
  }
}

void matmul_reference(float* y, const float* x, const Tensor& w, int64_t T) {
  check_weight(w, "matmul_reference");
  const int64_t n_in = w.ne[0], n_out = w.rows();
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    quant::dequantize_row(w.type, w.row(o), row.data(), n_in);
    for (int64_t t = 0; t < T; ++t) {
      double sum = 0.0;
      for (int64_t i = 0; i < n_in; ++i) sum += double(row[i]) * double(x[t * n_in + i]);
      y[t * n_out + o] = static_cast<float>(sum);
    }
  }
}

void matmul_fast_reference(float* y, const float* x, const Tensor& w, int64_t T) {
  check_weight(w, "matmul_fast_reference");
  const int64_t n_in = w.ne[0], n_out = w.rows();
  if (quant::int_dot_supported(w.type)) {
    std::vector<uint8_t> act(static_cast<size_t>(quant::act_row_bytes_ref(w.type, n_in)));
    for (int64_t t = 0; t < T; ++t) {
      quant::quantize_act_row_ref(w.type, x + t * n_in, act.data(), n_in);
      for (int64_t o = 0; o < n_out; ++o)
        y[t * n_out + o] = quant::vec_dot_ref(w.type, w.row(o), act.data(), n_in);
    }
    return;
  }
  if (w.type != DType::F16 && w.type != DType::BF16) {
    matmul_reference(y, x, w, T);
    return;
  }
  std::vector<float> rounded(static_cast<size_t>(T * n_in));
  // The scalar conversions of quant/fp16.h, independent of the SIMD rounding above.
  for (int64_t i = 0; i < T * n_in; ++i) {
    rounded[i] = w.type == DType::F16 ? quant::f16_to_f32(quant::f32_to_f16(x[i]))
                                      : quant::bf16_to_f32(quant::f32_to_bf16(x[i]));
  }
  matmul_reference(y, rounded.data(), w, T);
}

}  // namespace toy

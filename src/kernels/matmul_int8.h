// Integer GEMM micro-kernel behind matmul(MatmulMode::Fast) on block-quantized
// weights: packed activation rows × packed weight rows (quant/dot_pack.h), u8×s8
// products summed exactly in int32 (AVX-512 VNNI vpdpbusd), scaled per 4-element
// lane in F32.
#pragma once

#include <cstdint>

#include "quant/dot_pack.h"

namespace toy {

// y[t * ldy + o] = dot(x[t], w[o]) for t < T, o < n_rows; np = packed length.
// `use_start`: the weights have a zero point (activation start values apply);
// `use_mins`: add the per-16 min correction.
void gemm_int8(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T,
               const quant::PackedWeightRow* w, int64_t n_rows, int64_t np, bool use_start,
               bool use_mins);

}  // namespace toy

// Tiled attention with an online softmax (FlashAttention, Dao et al. 2022, in its
// CPU form): the same function as attention_forward (kernels/attention.h), but
// queries are taken in blocks of positions and keys in tiles, so each cached K/V
// row is read once per block of queries instead of once per query, and no score
// row longer than a tile is ever stored. K rows stored as F32/F16/BF16 are read
// in place by the backend's float GEMM; Q8_0 tiles are dequantized once per tile.
//
// For one block of queries (all the query heads of one KV head) and each key
// tile:  S = (scale·Q)·Kᵀ, masked (causal, sliding window) and soft-capped;
//        m' = max(m, rowmax S); P = exp(S − m'); l = l·e^(m−m') + rowsum P;
//        O = O·e^(m−m') + P·V;       and at the end out = O / l.
#pragma once

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/compute.h"

namespace toy {

// Same contract as attention_forward (out, q: (T, n_head*head_dim); k, v rows for
// positions 0..n_kv-1), without the caller's score scratch: working tiles are
// per-thread buffers that grow once and are reused.
void attention_flash_forward(float* out, const float* q, const KvRows& k, const KvRows& v,
                             int64_t T, int64_t pos0, int64_t n_kv, const AttentionParams& p,
                             const Compute& cx);

}  // namespace toy

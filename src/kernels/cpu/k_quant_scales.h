// The per-super-block scales of K-quant weights as the packed integer path uses them
// (quant/dot_pack.cpp writes the same values), for the backends' direct-block kernels and
// packers. The functions have internal linkage and are always inlined: each ISA backend
// compiles its own copy with its own flags, so no out-of-line copy built with wide-vector
// instructions can be picked by the linker for baseline code, or sit outside the backend
// namespaces that scripts/check-isa-isolation.sh allows them in.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace toy::cpu {

// Sub-block j's 6-bit scale and min of a Q4_K / Q5_K super-block's 12 packed bytes (ggml's
// get_scale_min_k4).
[[gnu::always_inline]] static inline void k4_scale_min(const uint8_t packed[12], int j,
                                                       uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// A Q4_K super-block's sub-block scales d·sc[j] (j < 8) and the min coefficients −dmin·m[j]
// of its 16 groups of 16 (two per sub-block); d and dmin are the block's F16 fields as F32.
[[gnu::always_inline]] static inline void q4_k_scales(const quant::BlockQ4_K& b, float d,
                                                      float dmin, float sc[8], float mins[16]) {
  for (int j = 0; j < 8; ++j) {
    uint8_t scale, m;
    k4_scale_min(b.scales, j, &scale, &m);
    sc[j] = d * static_cast<float>(scale);
    mins[2 * j] = mins[2 * j + 1] = -dmin * static_cast<float>(m);
  }
}

// A Q6_K super-block's 16 group scales d·sc[g]; d is its F16 field as F32.
[[gnu::always_inline]] static inline void q6_k_scales(const quant::BlockQ6_K& b, float d,
                                                      float out[16]) {
  for (int g = 0; g < 16; ++g) out[g] = d * static_cast<float>(b.scales[g]);
}

}  // namespace toy::cpu

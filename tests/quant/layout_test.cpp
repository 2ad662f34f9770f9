// The block layouts, checked element by element: a decoder written from the format
// description (which bits of which byte hold element i, which scale applies) must
// agree bit for bit with dequantize_row on random blocks of every type. This covers
// the types that have no llama.cpp fixture (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, Q8_K)
// and pins the layouts the SIMD kernels build on.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy::quant {
namespace {

constexpr int kBlocks = 7;

// Random bytes with every F16 scale replaced by a random finite value, so no element is
// NaN (NaN != NaN would hide nothing but make the comparison awkward).
template <typename Block>
std::vector<Block> random_blocks(uint32_t seed,
                                 const std::function<void(Block&, float, float)>& set) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  std::vector<Block> blocks(kBlocks);
  auto* bytes = reinterpret_cast<uint8_t*>(blocks.data());
  for (size_t i = 0; i < sizeof(Block) * kBlocks; ++i) bytes[i] = static_cast<uint8_t>(rng());
  for (Block& b : blocks) set(b, scale(rng), scale(rng));
  return blocks;
}

template <typename Block>
void expect_layout(DType type, const std::vector<Block>& blocks,
                   const std::function<float(const Block&, int)>& element) {
  const int block_size = static_cast<int>(dtype_info(type).block_size);
  std::vector<float> y(static_cast<size_t>(block_size * kBlocks));
  dequantize_row(type, blocks.data(), y.data(), block_size * kBlocks);
  for (int b = 0; b < kBlocks; ++b)
    for (int i = 0; i < block_size; ++i)
      ASSERT_EQ(y[static_cast<size_t>(b * block_size + i)], element(blocks[b], i))
          << dtype_name(type) << " block " << b << " element " << i;
}

float f16(uint16_t h) {
  return f16_to_f32(h);
}

// Legacy blocks of 32: element i < 16 is the low nibble of qs[i], i >= 16 the high
// nibble of qs[i - 16]; the fifth bit (Q5) is bit i of the little-endian u32 qh.
int nibble32(const uint8_t* qs, int i) {
  return i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4;
}
int fifth_bit(const uint8_t* qh, int i) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return (bits >> i) & 1;
}

TEST(Layout, Q4_0) {
  auto blocks = random_blocks<BlockQ4_0>(1, [](auto& b, float d, float) { b.d = f32_to_f16(d); });
  expect_layout<BlockQ4_0>(DType::Q4_0, blocks, [](const BlockQ4_0& b, int i) {
    return static_cast<float>(nibble32(b.qs, i) - 8) * f16(b.d);
  });
}

TEST(Layout, Q4_1) {
  auto blocks = random_blocks<BlockQ4_1>(2, [](auto& b, float d, float m) {
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(m);
  });
  expect_layout<BlockQ4_1>(DType::Q4_1, blocks, [](const BlockQ4_1& b, int i) {
    return static_cast<float>(nibble32(b.qs, i)) * f16(b.d) + f16(b.m);
  });
}

TEST(Layout, Q5_0) {
  auto blocks = random_blocks<BlockQ5_0>(3, [](auto& b, float d, float) { b.d = f32_to_f16(d); });
  expect_layout<BlockQ5_0>(DType::Q5_0, blocks, [](const BlockQ5_0& b, int i) {
    const int q = nibble32(b.qs, i) | (fifth_bit(b.qh, i) << 4);
    return static_cast<float>(q - 16) * f16(b.d);
  });
}

TEST(Layout, Q5_1) {
  auto blocks = random_blocks<BlockQ5_1>(4, [](auto& b, float d, float m) {
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(m);
  });
  expect_layout<BlockQ5_1>(DType::Q5_1, blocks, [](const BlockQ5_1& b, int i) {
    const int q = nibble32(b.qs, i) | (fifth_bit(b.qh, i) << 4);
    return static_cast<float>(q) * f16(b.d) + f16(b.m);
  });
}

TEST(Layout, Q8_0) {
  auto blocks = random_blocks<BlockQ8_0>(5, [](auto& b, float d, float) { b.d = f32_to_f16(d); });
  expect_layout<BlockQ8_0>(DType::Q8_0, blocks, [](const BlockQ8_0& b, int i) {
    return static_cast<float>(b.qs[i]) * f16(b.d);
  });
}

// K-quants with 2-bit planes (Q2_K, Q3_K): element i lives in half h = i / 128; within
// it, plane g = (i % 128) / 32 is at bit shift 2g of byte qs[32h + i % 32].
int two_bits(const uint8_t* qs, int i) {
  const int h = i / 128, g = (i % 128) / 32, p = i % 32;
  return (qs[32 * h + p] >> (2 * g)) & 3;
}

TEST(Layout, Q2_K) {
  auto blocks = random_blocks<BlockQ2_K>(6, [](auto& b, float d, float m) {
    b.d = f32_to_f16(d);
    b.dmin = f32_to_f16(m);
  });
  // Sub-block i / 16 has a 4-bit scale (low nibble) and a 4-bit min (high nibble).
  expect_layout<BlockQ2_K>(DType::Q2_K, blocks, [](const BlockQ2_K& b, int i) {
    const uint8_t sm = b.scales[i / 16];
    const float scale = f16(b.d) * static_cast<float>(sm & 0xF);
    const float min = f16(b.dmin) * static_cast<float>(sm >> 4);
    return scale * static_cast<float>(two_bits(b.qs, i)) - min;
  });
}

TEST(Layout, Q3_K) {
  auto blocks = random_blocks<BlockQ3_K>(7, [](auto& b, float d, float) { b.d = f32_to_f16(d); });
  expect_layout<BlockQ3_K>(DType::Q3_K, blocks, [](const BlockQ3_K& b, int i) {
    // The third bit is bit i / 32 of hmask[i % 32]; when it is clear the value is 4 lower.
    const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
    const int q = two_bits(b.qs, i) - (high ? 0 : 4);
    // Scale j = i / 16: 6 bits, biased by 32. Low 4 bits: low nibbles of bytes 0..7 for
    // j < 8, high nibbles for j >= 8; top 2 bits: byte 8 + j % 4 at shift 2 * (j / 4).
    const int j = i / 16;
    const int low = j < 8 ? b.scales[j] & 0xF : b.scales[j - 8] >> 4;
    const int top = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    const int scale = (low | (top << 4)) - 32;
    return f16(b.d) * static_cast<float>(scale) * static_cast<float>(q);
  });
}

// Q4_K/Q5_K sub-block j (of 32): 6-bit scale and min packed in 12 bytes.
void k4_scale_min(const uint8_t* s, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 0x3F;
    *min = s[j + 4] & 0x3F;
  } else {
    *scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Sub-blocks 2k and 2k+1 share the 32 bytes qs[32k..32k+31]: low nibbles, high nibbles.
int k4_nibble(const uint8_t* qs, int i) {
  const int j = i / 32, p = i % 32;
  const uint8_t byte = qs[32 * (j / 2) + p];
  return j % 2 == 0 ? byte & 0xF : byte >> 4;
}

TEST(Layout, Q4_K) {
  auto blocks = random_blocks<BlockQ4_K>(8, [](auto& b, float d, float m) {
    b.d = f32_to_f16(d);
    b.dmin = f32_to_f16(m);
  });
  expect_layout<BlockQ4_K>(DType::Q4_K, blocks, [](const BlockQ4_K& b, int i) {
    int scale, min;
    k4_scale_min(b.scales, i / 32, &scale, &min);
    return f16(b.d) * static_cast<float>(scale) * static_cast<float>(k4_nibble(b.qs, i)) -
           f16(b.dmin) * static_cast<float>(min);
  });
}

TEST(Layout, Q5_K) {
  auto blocks = random_blocks<BlockQ5_K>(9, [](auto& b, float d, float m) {
    b.d = f32_to_f16(d);
    b.dmin = f32_to_f16(m);
  });
  expect_layout<BlockQ5_K>(DType::Q5_K, blocks, [](const BlockQ5_K& b, int i) {
    int scale, min;
    k4_scale_min(b.scales, i / 32, &scale, &min);
    // The fifth bit of sub-block j's element p is bit j of qh[p].
    const int q = k4_nibble(b.qs, i) + 16 * ((b.qh[i % 32] >> (i / 32)) & 1);
    return f16(b.d) * static_cast<float>(scale) * static_cast<float>(q) -
           f16(b.dmin) * static_cast<float>(min);
  });
}

TEST(Layout, Q6_K) {
  auto blocks = random_blocks<BlockQ6_K>(10, [](auto& b, float d, float) { b.d = f32_to_f16(d); });
  expect_layout<BlockQ6_K>(DType::Q6_K, blocks, [](const BlockQ6_K& b, int i) {
    // Half h = i / 128 owns ql[64h..64h+63] and qh[32h..32h+31]. Quarter g of the half:
    // low 4 bits in the low (g < 2) or high (g >= 2) nibble of ql[64h + 32(g % 2) + p];
    // high 2 bits at shift 2g of qh[32h + p].
    const int h = i / 128, g = (i % 128) / 32, p = i % 32;
    const uint8_t low_byte = b.ql[64 * h + 32 * (g % 2) + p];
    const int low = g < 2 ? low_byte & 0xF : low_byte >> 4;
    const int high = (b.qh[32 * h + p] >> (2 * g)) & 3;
    const int q = (low | (high << 4)) - 32;
    return f16(b.d) * static_cast<float>(b.scales[i / 16]) * static_cast<float>(q);
  });
}

TEST(Layout, Q8_K) {
  auto blocks = random_blocks<BlockQ8_K>(11, [](auto& b, float d, float) { b.d = d; });
  expect_layout<BlockQ8_K>(DType::Q8_K, blocks, [](const BlockQ8_K& b, int i) {
    return b.d * static_cast<float>(b.qs[i]);
  });
}

}  // namespace
}  // namespace toy::quant

// Dispatch from DType to the per-type reference rows (rows.h).
#include "quant/quant.h"

#include <cstring>

#include "core/error.h"
#include "quant/rows.h"

namespace toy::quant {
namespace {

void check_row_length(DType type, int64_t n) {
  const DTypeInfo& info = dtype_info(type);
  TOY_CHECK(n >= 0 && n % info.block_size == 0, "a ", info.name, " row of ", n,
            " elements is not a multiple of the block size ", info.block_size);
}

}  // namespace

bool can_dequantize(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

bool can_quantize(DType type) {
  // Every type we can read we can also produce.
  return can_dequantize(type);
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  check_row_length(type, n);
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      return dequantize_row_f16(static_cast<const uint16_t*>(src), dst, n);
    case DType::BF16:
      return dequantize_row_bf16(static_cast<const uint16_t*>(src), dst, n);
    case DType::Q4_0:
      return dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
    case DType::Q4_1:
      return dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case DType::Q5_0:
      return dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case DType::Q5_1:
      return dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case DType::Q8_0:
      return dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case DType::Q2_K:
      return dequantize_row_q2_k(static_cast<const BlockQ2_K*>(src), dst, n);
    case DType::Q3_K:
      return dequantize_row_q3_k(static_cast<const BlockQ3_K*>(src), dst, n);
    case DType::Q4_K:
      return dequantize_row_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case DType::Q5_K:
      return dequantize_row_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case DType::Q6_K:
      return dequantize_row_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
    case DType::Q8_K:
      return dequantize_row_q8_k(static_cast<const BlockQ8_K*>(src), dst, n);
    default:
      fail("cannot dequantize tensors of type ", dtype_name(type),
           " (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k..q6_k, q8_k)");
  }
}

void quantize_row(DType type, const float* src, void* dst, int64_t n, const float* importance) {
  check_row_length(type, n);
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      return quantize_row_f16(src, static_cast<uint16_t*>(dst), n);
    case DType::BF16:
      return quantize_row_bf16(src, static_cast<uint16_t*>(dst), n);
    case DType::Q4_0:
      return quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
    case DType::Q4_1:
      return quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
    case DType::Q5_0:
      return quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
    case DType::Q5_1:
      return quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
    case DType::Q8_0:
      return quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
    case DType::Q2_K:
      return quantize_row_q2_k(src, static_cast<BlockQ2_K*>(dst), n, importance);
    case DType::Q3_K:
      return quantize_row_q3_k(src, static_cast<BlockQ3_K*>(dst), n, importance);
    case DType::Q4_K:
      return quantize_row_q4_k(src, static_cast<BlockQ4_K*>(dst), n, importance);
    case DType::Q5_K:
      return quantize_row_q5_k(src, static_cast<BlockQ5_K*>(dst), n, importance);
    case DType::Q6_K:
      return quantize_row_q6_k(src, static_cast<BlockQ6_K*>(dst), n, importance);
    case DType::Q8_K:
      return quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
    default:
      fail("cannot quantize to type ", dtype_name(type),
           " (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k..q6_k, q8_k)");
  }
}

}  // namespace toy::quant

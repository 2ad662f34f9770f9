// The dtype table: every ggml tensor type id with its block layout size.
//
// Ids and sizes follow ggml's `ggml_type` (ggml.h): a row of n elements of a
// block type occupies n / block_size * type_size bytes, and n must be a
// multiple of block_size. Ids that ggml retired (4, 5, 31-33, 36-38) are unknown.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace toy {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct DTypeInfo {
  DType type;
  std::string_view name;  // lower-case ggml name: "f32", "q4_k", ...
  int64_t block_size;     // elements per block (1 for plain types)
  int64_t type_size;      // bytes per block
  bool quantized;         // block-quantized (not a plain number type)
};

// Info for a raw type id as found in a file; nullopt when the id is unknown.
std::optional<DTypeInfo> dtype_info(uint32_t id);
// Info for a known type (never fails).
const DTypeInfo& dtype_info(DType type);
std::string_view dtype_name(DType type);
// Parses a lower- or upper-case ggml name ("q8_0", "Q4_K", "bf16"); nullopt if unknown.
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size (checked).
int64_t row_bytes(DType type, int64_t n);

}  // namespace toy

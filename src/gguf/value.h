// GGUF metadata values: the 13 value types of the GGUF spec, an owned Value
// (used to build files) and a ValueRef (a validated view into a mapped file).
//
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace toy::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view value_type_name(ValueType type);  // "u32", "string", "array", ...
bool is_known_value_type(uint32_t raw);
// Bytes of one element of a fixed-size type (0 for STRING and ARRAY).
size_t value_type_size(ValueType type);

struct Value;
// An owned array: its element type and the elements (each a Value of that type).
struct Array {
  ValueType element_type = ValueType::U8;
  std::vector<Value> items;
};

// An owned metadata value. bool is stored as bool; strings as std::string.
struct Value {
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, std::shared_ptr<Array>, uint64_t, int64_t, double>;
  ValueType type = ValueType::U8;
  Storage data;

  static Value u8(uint8_t v) { return {ValueType::U8, v}; }
  static Value i8(int8_t v) { return {ValueType::I8, v}; }
  static Value u16(uint16_t v) { return {ValueType::U16, v}; }
  static Value i16(int16_t v) { return {ValueType::I16, v}; }
  static Value u32(uint32_t v) { return {ValueType::U32, v}; }
  static Value i32(int32_t v) { return {ValueType::I32, v}; }
  static Value f32(float v) { return {ValueType::F32, v}; }
  static Value boolean(bool v) { return {ValueType::BOOL, v}; }
  static Value string(std::string v) { return {ValueType::STRING, std::move(v)}; }
  static Value u64(uint64_t v) { return {ValueType::U64, v}; }
  static Value i64(int64_t v) { return {ValueType::I64, v}; }
  static Value f64(double v) { return {ValueType::F64, v}; }
  static Value array(Array a) { return {ValueType::ARRAY, std::make_shared<Array>(std::move(a))}; }
  // Convenience builders for the common homogeneous arrays.
  static Value strings(const std::vector<std::string>& v);
  static Value f32s(const std::vector<float>& v);
  static Value i32s(const std::vector<int32_t>& v);
  static Value u32s(const std::vector<uint32_t>& v);

  const Array& as_array() const { return *std::get<std::shared_ptr<Array>>(data); }
  bool operator==(const Value& other) const;
};

}  // namespace toy::gguf

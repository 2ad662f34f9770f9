#include "gguf/value.h"

#include <array>
#include <cstring>

namespace toy::gguf {
namespace {

struct TypeRow {
  std::string_view name;
  size_t size;  // bytes of one element; 0 for the variable-size STRING and ARRAY
};

// Indexed by the raw ValueType id (the GGUF spec's gguf_metadata_value_type).
constexpr std::array<TypeRow, 13> kTypes = {{
    {"u8", 1},
    {"i8", 1},
    {"u16", 2},
    {"i16", 2},
    {"u32", 4},
    {"i32", 4},
    {"f32", 4},
    {"bool", 1},
    {"string", 0},
    {"array", 0},
    {"u64", 8},
    {"i64", 8},
    {"f64", 8},
}};

// Floats compare by their bits, so NaN payloads and -0.0 survive a round trip as "identical".
template <typename T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
Value homogeneous_array(ValueType element_type, const std::vector<T>& items, Value (*make)(T)) {
  Array array;
  array.element_type = element_type;
  array.items.reserve(items.size());
  for (const T& item : items) array.items.push_back(make(item));
  return Value::array(std::move(array));
}

}  // namespace

std::string_view value_type_name(ValueType type) {
  auto raw = static_cast<uint32_t>(type);
  return raw < kTypes.size() ? kTypes[raw].name : std::string_view("unknown");
}

bool is_known_value_type(uint32_t raw) {
  return raw < kTypes.size();
}

size_t value_type_size(ValueType type) {
  auto raw = static_cast<uint32_t>(type);
  return raw < kTypes.size() ? kTypes[raw].size : 0;
}

Value Value::strings(const std::vector<std::string>& v) {
  Array array;
  array.element_type = ValueType::STRING;
  array.items.reserve(v.size());
  for (const std::string& s : v) array.items.push_back(Value::string(s));
  return Value::array(std::move(array));
}

Value Value::f32s(const std::vector<float>& v) {
  return homogeneous_array<float>(ValueType::F32, v, &Value::f32);
}

Value Value::i32s(const std::vector<int32_t>& v) {
  return homogeneous_array<int32_t>(ValueType::I32, v, &Value::i32);
}

Value Value::u32s(const std::vector<uint32_t>& v) {
  return homogeneous_array<uint32_t>(ValueType::U32, v, &Value::u32);
}

bool Value::operator==(const Value& other) const {
  if (type != other.type || data.index() != other.data.index()) return false;
  if (const auto* a = std::get_if<float>(&data)) return same_bits(*a, std::get<float>(other.data));
  if (const auto* a = std::get_if<double>(&data))
    return same_bits(*a, std::get<double>(other.data));
  if (const auto* a = std::get_if<std::shared_ptr<Array>>(&data)) {
    const auto& b = std::get<std::shared_ptr<Array>>(other.data);
    if (!*a || !b) return *a == b;
    return (*a)->element_type == b->element_type && (*a)->items == b->items;
  }
  return data == other.data;
}

}  // namespace toy::gguf

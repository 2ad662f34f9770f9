// GGUF reader: memory-maps a file, validates all of it before trusting any of
// it, and hands out metadata and tensor data as views into the mapping.
//
// Every failure is a toy::Error naming the file, the byte offset, the key or
// tensor, what was expected and what was found. No input may crash, abort or
// hang the reader, and nothing is sized from a count or length before it is
// checked against the bytes left. Bookkeeping is linear in the file: 12 bytes
// per metadata pair (each takes >= 14 bytes of file) and about 90 bytes per
// tensor (each takes >= 34 bytes), so it stays below the file size except for
// pathological files made of thousands of 1-byte tensors (at most ~2.6x).
// Arrays are decoded lazily; string arrays cost nothing until read.
//
// GGUF versions 2 and 3 are read; version 1 (32-bit counts) is rejected.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "gguf/value.h"

namespace toy::gguf {

class File;

// A validated value inside a mapped file. Arrays are decoded lazily, so a
// million-element array costs nothing until it is read.
class ValueRef {
 public:
  ValueType type() const { return type_; }

  // Scalars. Each throws toy::Error (naming the key and both types) when the
  // stored type differs.
  uint8_t u8() const;
  int8_t i8() const;
  uint16_t u16() const;
  int16_t i16() const;
  uint32_t u32() const;
  int32_t i32() const;
  uint64_t u64() const;
  int64_t i64() const;
  float f32() const;
  double f64() const;
  bool boolean() const;
  std::string_view string() const;
  // Any integer type, range-checked into int64 (u64 above INT64_MAX is an error).
  int64_t integer() const;
  // Any integer or float type, as double.
  double number() const;

  // Arrays (throw when this is not an array, or the element type differs).
  ValueType array_type() const;
  uint64_t array_size() const;
  ValueRef at(uint64_t index) const;  // O(1) for fixed-size elements, O(index) for strings
  std::vector<std::string_view> strings() const;
  std::vector<float> f32s() const;
  std::vector<int32_t> i32s() const;   // accepts any integer element type that fits
  std::vector<uint32_t> u32s() const;  // accepts any integer element type that fits

  // An owned copy (for writing the value to another file).
  Value to_value() const;
  std::string_view key() const { return key_; }

 private:
  friend class File;
  friend class Parser;
  ValueRef(const File* file, std::string_view key, ValueType type, const uint8_t* data,
           int64_t element_index = -1);
  [[noreturn]] void type_error(std::string_view expected) const;
  // The element type an array accessor needs, or a type error naming `expected`.
  void require_array_of(ValueType element_type, std::string_view expected) const;
  // Where this value is, for messages: "key 'k'" or "key 'k' element 3".
  std::string describe() const;
  // Pointer to the first element of an array value.
  const uint8_t* elements() const;
  Value to_value_at_depth(int depth) const;

  const File* file_;
  std::string_view key_;
  ValueType type_;
  const uint8_t* data_;     // first byte of the value (after the type tag), validated
  ValueType element_type_;  // for arrays (read from the array header)
  uint64_t count_;          // for arrays
  int64_t element_index_;   // >= 0 when this is an element of an array (for messages)
};

struct TensorInfo {
  std::string_view name;
  DType type;
  int n_dims;
  std::array<int64_t, 4> ne;  // ne[0] contiguous, unused dims are 1
  uint64_t offset;            // relative to the data section
  uint64_t bytes;
};

class File {
 public:
  // Maps and validates `path`. Throws toy::Error on any problem.
  static std::shared_ptr<File> open(const std::string& path);
  // Validates an in-memory image (used by the fuzzer and tests); `name` is used in messages.
  // The bytes must outlive the File.
  static std::shared_ptr<File> from_memory(const uint8_t* data, size_t size, std::string name);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Start of the data section (<= file_size(); a file without tensors may end before the
  // alignment padding, and then its empty data section starts at the end of the file).
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }

  // Metadata, in file order.
  size_t metadata_count() const;
  ValueRef metadata(size_t index) const;
  bool has(std::string_view key) const;
  std::optional<ValueRef> find(std::string_view key) const;
  ValueRef get(std::string_view key) const;  // throws "missing key" naming the file
  // Like get(), and the missing-key message says which type the caller wanted.
  ValueRef get(std::string_view key, std::string_view expected_type) const;

  // Typed getters: throw on a missing key or a wrong type (naming the key and both types).
  uint32_t get_u32(std::string_view key) const { return get(key, "u32").u32(); }
  float get_f32(std::string_view key) const { return get(key, "f32").f32(); }
  bool get_bool(std::string_view key) const { return get(key, "bool").boolean(); }
  std::string_view get_string(std::string_view key) const { return get(key, "string").string(); }
  int64_t get_integer(std::string_view key) const { return get(key, "integer").integer(); }
  // With a default when the key is absent (a present key of the wrong type still throws).
  int64_t get_integer_or(std::string_view key, int64_t fallback) const;
  double get_number_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;
  std::string get_string_or(std::string_view key, std::string_view fallback) const;

  // Tensors, in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // A view into the mapping; the view keeps the file mapped. Throws when absent.
  Tensor tensor(std::string_view name) const;
  Tensor tensor(const TensorInfo& info) const;

 private:
  File() = default;
  void parse();
  friend class ValueRef;
  friend class Parser;

  std::string_view key_at(size_t index) const;
  [[noreturn]] void missing_key(std::string_view key, std::string_view expected_type) const;

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  // Byte offset of each metadata pair (its key length), in file order. Kept to 8 bytes per pair
  // (each pair takes at least 14 bytes of the file), everything else is re-read from the mapping.
  std::vector<uint64_t> entries_;
  // Indices into entries_, sorted by key, for binary search (and the uniqueness check).
  std::vector<uint32_t> sorted_keys_;
  std::vector<TensorInfo> tensors_;
  // Indices into tensors_, sorted by name, for binary search (and the uniqueness check).
  std::vector<uint32_t> sorted_tensors_;
  std::weak_ptr<File> self_;
};

}  // namespace toy::gguf

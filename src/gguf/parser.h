// Internal to the GGUF reader: the validating parser and the helpers that walk
// encoded values. Not part of the public API (include gguf/reader.h instead).
//
// Layout (little-endian), spec https://github.com/ggml-org/ggml/blob/master/docs/gguf.md:
//   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `alignment` | data section (tensor offsets are relative to its start)
// where string = u64 length + bytes, and array = u32 element_type | u64 count | elements.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/value.h"

namespace toy::gguf {

class File;

namespace detail {

static_assert(
    std::endian::native == std::endian::little,
    "the GGUF reader maps little-endian files directly; big-endian hosts are unsupported");

// Arrays of arrays deeper than this are rejected, so walking a value needs a small fixed stack.
constexpr int kMaxArrayDepth = 8;
// The smallest possible metadata pair: u64 key length, a 1-byte key, u32 type, a 1-byte value.
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;
// The smallest possible tensor info: u64 name length, 1-byte name, u32 n_dims, one u64 dimension,
// u32 type, u64 offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
// Bytes of an array header: u32 element type + u64 count.
constexpr uint64_t kArrayHeaderBytes = 4 + 8;

template <typename T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Walks the encoded value of `type` starting at byte `offset` of the buffer [base, base + size),
// checking every length, count, type tag and bool against the bytes left, without recursion.
// Returns the offset just past the value. Throws toy::Error naming `path`, `key` and the byte
// offset of the problem. Work is linear in the bytes walked.
uint64_t value_end(const std::string& path, const uint8_t* base, uint64_t size, uint64_t offset,
                   ValueType type, std::string_view key);

}  // namespace detail

// Validates a whole file image and fills in File's tables (see File::parse).
class Parser {
 public:
  explicit Parser(File& file) : file_(file) {}
  void run();

 private:
  void read_header();
  void read_metadata();
  void read_alignment();
  void read_tensor_infos();
  void check_tensor_data();

  uint32_t read_u32(std::string_view what);
  uint64_t read_u64(std::string_view what);
  std::string_view read_string(std::string_view what);
  // Throws unless `bytes` more bytes are available at the cursor.
  void need(uint64_t bytes, std::string_view what) const;
  uint64_t left() const { return size_ - pos_; }

  File& file_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  std::vector<uint64_t> info_offsets_;  // byte offset of each tensor info, for messages
};

}  // namespace toy::gguf

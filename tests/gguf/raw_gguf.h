// Builds GGUF byte images field by field, so a test can break exactly one field
// of an otherwise valid file (the writer refuses to produce invalid files).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toy::gguf::testing {

using Bytes = std::vector<uint8_t>;

template <typename T>
void append(Bytes& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

inline void append_string(Bytes& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
Bytes encode(T value) {
  Bytes out;
  append(out, value);
  return out;
}

inline Bytes encode_string(std::string_view s) {
  Bytes out;
  append_string(out, s);
  return out;
}

// An array header (element type, count) followed by already-encoded elements.
inline Bytes encode_array(uint32_t element_type, uint64_t count, const Bytes& elements = {}) {
  Bytes out;
  append(out, element_type);
  append(out, count);
  out.insert(out.end(), elements.begin(), elements.end());
  return out;
}

struct RawKeyValue {
  std::string key;
  uint32_t type;  // raw ValueType id
  Bytes value;    // encoded value, without the type tag
};

struct RawTensor {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;                   // raw ggml type id
  uint64_t offset;                 // relative to the data section
  std::optional<uint32_t> n_dims;  // overrides ne.size() in the header when set
};

struct RawFile {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count;  // overrides tensors.size() when set
  std::optional<uint64_t> kv_count;      // overrides kvs.size() when set
  std::vector<RawKeyValue> kvs;
  std::vector<RawTensor> tensors;
  uint64_t alignment = 32;  // padding before the data section
  Bytes data;               // the data section

  Bytes bytes() const {
    Bytes out(magic.begin(), magic.end());
    append(out, version);
    append<uint64_t>(out, tensor_count.value_or(tensors.size()));
    append<uint64_t>(out, kv_count.value_or(kvs.size()));
    for (const RawKeyValue& kv : kvs) {
      append_string(out, kv.key);
      append(out, kv.type);
      out.insert(out.end(), kv.value.begin(), kv.value.end());
    }
    for (const RawTensor& t : tensors) {
      append_string(out, t.name);
      append<uint32_t>(out, t.n_dims.value_or(static_cast<uint32_t>(t.ne.size())));
      for (uint64_t n : t.ne) append(out, n);
      append(out, t.type);
      append(out, t.offset);
    }
    while (out.size() % alignment != 0) out.push_back(0);
    out.insert(out.end(), data.begin(), data.end());
    return out;
  }

  // Byte offset of the first tensor info (just past the metadata).
  uint64_t tensor_infos_offset() const {
    uint64_t offset = 4 + 4 + 8 + 8;
    for (const RawKeyValue& kv : kvs) offset += 8 + kv.key.size() + 4 + kv.value.size();
    return offset;
  }

  RawKeyValue* kv(std::string_view key) {
    for (RawKeyValue& kv : kvs)
      if (kv.key == key) return &kv;
    return nullptr;
  }
};

// Raw ValueType ids (gguf.md) and ggml type ids used by the tests.
enum : uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64
};
enum : uint32_t { kTypeF32 = 0, kTypeF16 = 1, kTypeQ8_0 = 8, kTypeI8 = 24, kTypeF64 = 28 };

// A small valid file: metadata of several types (general.alignment included) and three tensors
// whose data fills the data section exactly (so any truncation cuts into something).
inline RawFile small_valid_file() {
  RawFile f;
  f.kvs.push_back({"general.architecture", kString, encode_string("llama")});
  f.kvs.push_back({"general.alignment", kU32, encode<uint32_t>(32)});
  f.kvs.push_back({"llama.block_count", kU32, encode<uint32_t>(2)});
  f.kvs.push_back({"llama.rope.freq_base", kF32, encode<float>(10000.0f)});
  Bytes tokens;
  append_string(tokens, "<s>");
  append_string(tokens, "a");
  f.kvs.push_back({"tokenizer.ggml.tokens", kArray, encode_array(kString, 2, tokens)});
  Bytes types;
  append<int32_t>(types, 1);
  append<int32_t>(types, 3);
  f.kvs.push_back({"tokenizer.ggml.token_type", kArray, encode_array(kI32, 2, types)});
  f.kvs.push_back({"general.flag", kBool, encode<uint8_t>(1)});
  // token_embd.weight: f32 [4, 2] (32 bytes) at 0; blk.0.attn_q.weight: q8_0 [32, 1] (34 bytes)
  // at 32; output_norm.weight: i8 [3] (3 bytes) at 96.
  f.tensors.push_back({"token_embd.weight", {4, 2}, kTypeF32, 0, std::nullopt});
  f.tensors.push_back({"blk.0.attn_q.weight", {32, 1}, kTypeQ8_0, 32, std::nullopt});
  f.tensors.push_back({"output_norm.weight", {3}, kTypeI8, 96, std::nullopt});
  f.data.resize(99);
  for (size_t i = 0; i < f.data.size(); ++i) f.data[i] = static_cast<uint8_t>(i * 7 + 1);
  return f;
}

}  // namespace toy::gguf::testing

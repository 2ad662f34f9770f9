// Writes small valid GGUF files for the fuzzer's starting corpus: the fixture
// files are large, so these give it compact inputs covering every metadata value
// type, nested arrays, every tensor type, both versions and several alignments.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "gguf/writer.h"

namespace {

using toy::gguf::Array;
using toy::gguf::Value;
using toy::gguf::ValueType;
using toy::gguf::Writer;

void add_every_value_type(Writer& w) {
  w.set("general.architecture", Value::string("llama"));
  w.set("t.u8", Value::u8(7));
  w.set("t.i8", Value::i8(-7));
  w.set("t.u16", Value::u16(700));
  w.set("t.i16", Value::i16(-700));
  w.set("t.u32", Value::u32(70000));
  w.set("t.i32", Value::i32(-70000));
  w.set("t.f32", Value::f32(0.5f));
  w.set("t.bool", Value::boolean(true));
  w.set("t.u64", Value::u64(uint64_t{1} << 40));
  w.set("t.i64", Value::i64(-(int64_t{1} << 40)));
  w.set("t.f64", Value::f64(0.25));
  w.set("tokenizer.ggml.tokens", Value::strings({"<s>", "</s>", "a", "bc"}));
  w.set("tokenizer.ggml.scores", Value::f32s({0.0f, -1.0f, -2.0f, -3.0f}));
  w.set("tokenizer.ggml.token_type", Value::i32s({3, 3, 1, 1}));
  w.set("t.u32s", Value::u32s({1, 2, 3}));
  Array nested{ValueType::ARRAY, {Value::u32s({1}), Value::strings({"x"})}};
  w.set("t.nested", Value::array(nested));
}

// One small tensor (one block wide, two rows) of every type in the dtype table.
std::vector<std::vector<uint8_t>> add_every_tensor_type(Writer& w) {
  std::vector<std::vector<uint8_t>> data;
  for (uint32_t id = 0; id < 64; ++id) {
    auto info = toy::dtype_info(id);
    if (!info) continue;
    data.emplace_back(static_cast<size_t>(info->type_size * 2), static_cast<uint8_t>(id));
    w.add_tensor("t." + std::string(info->name), info->type, {info->block_size, 2},
                 data.back().data());
  }
  return data;
}

void patch_version(const std::string& path, uint32_t version) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(4);
  f.write(reinterpret_cast<const char*>(&version), sizeof(version));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_fuzz_seeds DIR\n");
    return 2;
  }
  std::filesystem::path dir(argv[1]);
  try {
    std::filesystem::create_directories(dir);
    {
      Writer w;
      add_every_value_type(w);
      auto data = add_every_tensor_type(w);
      w.write((dir / "seed-all.gguf").string());
      w.write((dir / "seed-all-v2.gguf").string());
      patch_version((dir / "seed-all-v2.gguf").string(), 2);
    }
    {
      Writer w(1);
      auto data = add_every_tensor_type(w);
      w.write((dir / "seed-align1.gguf").string());
    }
    {
      Writer w;
      w.set("general.alignment", Value::u32(64));
      float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      w.add_tensor("a", toy::DType::F32, {4, 2}, x);
      w.add_tensor("b", toy::DType::F32, {2}, x);
      w.write((dir / "seed-align64.gguf").string());
    }
    {
      Writer w;
      add_every_value_type(w);
      w.write((dir / "seed-metadata-only.gguf").string());
    }
    {
      Writer w;
      w.write((dir / "seed-empty.gguf").string());
    }
  } catch (const toy::Error& e) {
    std::fprintf(stderr, "gguf_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}

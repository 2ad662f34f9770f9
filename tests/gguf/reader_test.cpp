// GGUF reader on valid files: every value type, arrays (nested too), typed
// getters and their errors, tensor views into the mapping.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "gguf/reader.h"
#include "raw_gguf.h"
#include "support/fixtures.h"

namespace toy::gguf {
namespace {

using namespace toy::gguf::testing;

// Every one of the 13 value types, plus arrays: of numbers, of strings, empty, and nested.
RawFile all_types_file() {
  RawFile f;
  f.kvs.push_back({"t.u8", kU8, encode<uint8_t>(200)});
  f.kvs.push_back({"t.i8", kI8, encode<int8_t>(-5)});
  f.kvs.push_back({"t.u16", kU16, encode<uint16_t>(60000)});
  f.kvs.push_back({"t.i16", kI16, encode<int16_t>(-30000)});
  f.kvs.push_back({"t.u32", kU32, encode<uint32_t>(4000000000u)});
  f.kvs.push_back({"t.i32", kI32, encode<int32_t>(-2000000000)});
  f.kvs.push_back({"t.f32", kF32, encode<float>(1.5f)});
  f.kvs.push_back({"t.bool", kBool, encode<uint8_t>(1)});
  f.kvs.push_back({"t.string", kString, encode_string("h\xc3\xa9llo")});
  f.kvs.push_back({"t.u64", kU64, encode<uint64_t>((uint64_t{1} << 63) + 5)});
  f.kvs.push_back({"t.i64", kI64, encode<int64_t>(-(int64_t{1} << 62))});
  f.kvs.push_back({"t.f64", kF64, encode<double>(3.25)});
  Bytes u32s;
  for (uint32_t v : {1u, 2u, 4000000000u}) append(u32s, v);
  f.kvs.push_back({"t.u32s", kArray, encode_array(kU32, 3, u32s)});
  Bytes strings;
  for (const char* s : {"a", "", "ccc"}) append_string(strings, s);
  f.kvs.push_back({"t.strings", kArray, encode_array(kString, 3, strings)});
  f.kvs.push_back({"t.empty", kArray, encode_array(kF32, 0)});
  Bytes f32s;
  for (float v : {0.5f, -2.0f}) append(f32s, v);
  f.kvs.push_back({"t.f32s", kArray, encode_array(kF32, 2, f32s)});
  // [[1, 2] (u8), ["x"] (string), [] (i64)]: each inner array has its own element type.
  Bytes inner = encode_array(kU8, 2, Bytes{1, 2});
  Bytes x = encode_array(kString, 1, encode_string("x"));
  inner.insert(inner.end(), x.begin(), x.end());
  Bytes empty = encode_array(kI64, 0);
  inner.insert(inner.end(), empty.begin(), empty.end());
  f.kvs.push_back({"t.nested", kArray, encode_array(kArray, 3, inner)});
  return f;
}

class GgufReader : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = all_types_file().bytes();
    file_ = File::from_memory(bytes_.data(), bytes_.size(), "types.gguf");
  }
  // The message of the toy::Error `fn` throws ("" when it does not throw).
  template <typename Fn>
  static std::string error_of(Fn fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  Bytes bytes_;
  std::shared_ptr<File> file_;
};

TEST_F(GgufReader, ScalarsOfEveryType) {
  const File& f = *file_;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get("t.u8").u8(), 200);
  EXPECT_EQ(f.get("t.i8").i8(), -5);
  EXPECT_EQ(f.get("t.u16").u16(), 60000);
  EXPECT_EQ(f.get("t.i16").i16(), -30000);
  EXPECT_EQ(f.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f.get("t.i32").i32(), -2000000000);
  EXPECT_EQ(f.get_f32("t.f32"), 1.5f);
  EXPECT_TRUE(f.get_bool("t.bool"));
  EXPECT_EQ(f.get_string("t.string"), "h\xc3\xa9llo");
  EXPECT_EQ(f.get("t.u64").u64(), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f.get("t.i64").i64(), -(int64_t{1} << 62));
  EXPECT_EQ(f.get("t.f64").f64(), 3.25);
  for (size_t i = 0; i < f.metadata_count(); ++i)
    EXPECT_EQ(f.metadata(i).type(), static_cast<ValueType>(all_types_file().kvs[i].type));
}

TEST_F(GgufReader, IntegerAndNumberConvert) {
  const File& f = *file_;
  EXPECT_EQ(f.get_integer("t.u8"), 200);
  EXPECT_EQ(f.get_integer("t.i16"), -30000);
  EXPECT_EQ(f.get_integer("t.u32"), 4000000000);
  EXPECT_EQ(f.get_integer("t.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(f.get("t.f32").number(), 1.5);
  EXPECT_EQ(f.get("t.i8").number(), -5.0);
  std::string e = error_of([&] { f.get_integer("t.u64"); });
  EXPECT_NE(e.find("t.u64"), std::string::npos) << e;
  EXPECT_NE(e.find("9223372036854775813"), std::string::npos) << e;
  e = error_of([&] { f.get_integer("t.f32"); });
  EXPECT_NE(e.find("expected type integer"), std::string::npos) << e;
  EXPECT_NE(e.find("found f32"), std::string::npos) << e;
  e = error_of([&] { f.get("t.string").number(); });
  EXPECT_NE(e.find("found string"), std::string::npos) << e;
}

TEST_F(GgufReader, WrongTypeErrorNamesKeyAndBothTypes) {
  const File& f = *file_;
  std::string e = error_of([&] { f.get_u32("t.string"); });
  EXPECT_NE(e.find("types.gguf"), std::string::npos) << e;
  EXPECT_NE(e.find("'t.string'"), std::string::npos) << e;
  EXPECT_NE(e.find("expected type u32, found string"), std::string::npos) << e;
  e = error_of([&] { f.get_string("t.u32"); });
  EXPECT_NE(e.find("'t.u32': expected type string, found u32"), std::string::npos) << e;
  e = error_of([&] { f.get_f32("t.f64"); });
  EXPECT_NE(e.find("'t.f64': expected type f32, found f64"), std::string::npos) << e;
  e = error_of([&] { f.get_bool("t.u8"); });
  EXPECT_NE(e.find("'t.u8': expected type bool, found u8"), std::string::npos) << e;
  e = error_of([&] { f.get("t.u32s").strings(); });
  EXPECT_NE(e.find("'t.u32s': expected type array of string, found array of u32"),
            std::string::npos)
      << e;
  e = error_of([&] { f.get("t.u8").array_size(); });
  EXPECT_NE(e.find("'t.u8': expected type array, found u8"), std::string::npos) << e;
  e = error_of([&] { f.get("t.strings").u32(); });
  EXPECT_NE(e.find("expected type u32, found array of string"), std::string::npos) << e;
  // Every scalar getter refuses every other type.
  for (size_t i = 0; i < f.metadata_count(); ++i) {
    ValueRef v = f.metadata(i);
    int accepted = 0;
    for (auto getter : std::initializer_list<void (*)(const ValueRef&)>{
             [](const ValueRef& r) { r.u8(); }, [](const ValueRef& r) { r.i8(); },
             [](const ValueRef& r) { r.u16(); }, [](const ValueRef& r) { r.i16(); },
             [](const ValueRef& r) { r.u32(); }, [](const ValueRef& r) { r.i32(); },
             [](const ValueRef& r) { r.f32(); }, [](const ValueRef& r) { r.boolean(); },
             [](const ValueRef& r) { r.string(); }, [](const ValueRef& r) { r.u64(); },
             [](const ValueRef& r) { r.i64(); }, [](const ValueRef& r) { r.f64(); }}) {
      std::string message = error_of([&] { getter(v); });
      if (message.empty()) {
        ++accepted;
      } else {
        EXPECT_NE(message.find(std::string(v.key())), std::string::npos) << message;
      }
    }
    EXPECT_EQ(accepted, v.type() == ValueType::ARRAY ? 0 : 1) << v.key();
  }
}

TEST_F(GgufReader, MissingKeyErrorNamesKeyAndWantedType) {
  const File& f = *file_;
  std::string e = error_of([&] { f.get_u32("llama.block_count"); });
  EXPECT_NE(e.find("types.gguf: missing metadata key 'llama.block_count' (expected a value of "
                   "type u32)"),
            std::string::npos)
      << e;
  e = error_of([&] { f.get("general.name"); });
  EXPECT_NE(e.find("missing metadata key 'general.name'"), std::string::npos) << e;
  EXPECT_FALSE(f.has("general.name"));
  EXPECT_TRUE(f.has("t.u8"));
  EXPECT_FALSE(f.find("t.u").has_value());
}

TEST_F(GgufReader, DefaultsApplyOnlyWhenAbsent) {
  const File& f = *file_;
  EXPECT_EQ(f.get_integer_or("absent", 7), 7);
  EXPECT_EQ(f.get_integer_or("t.u16", 7), 60000);
  EXPECT_EQ(f.get_number_or("absent", 0.25), 0.25);
  EXPECT_EQ(f.get_number_or("t.f64", 0.25), 3.25);
  EXPECT_TRUE(f.get_bool_or("absent", true));
  EXPECT_TRUE(f.get_bool_or("t.bool", false));
  EXPECT_EQ(f.get_string_or("absent", "x"), "x");
  EXPECT_EQ(f.get_string_or("t.string", "x"), "h\xc3\xa9llo");
  std::string e = error_of([&] { f.get_integer_or("t.string", 1); });
  EXPECT_NE(e.find("'t.string': expected type integer"), std::string::npos) << e;
  e = error_of([&] { f.get_string_or("t.u8", ""); });
  EXPECT_NE(e.find("'t.u8': expected type string, found u8"), std::string::npos) << e;
}

TEST_F(GgufReader, ArraysDecodeLazily) {
  const File& f = *file_;
  ValueRef u32s = f.get("t.u32s");
  EXPECT_EQ(u32s.array_type(), ValueType::U32);
  EXPECT_EQ(u32s.array_size(), 3u);
  EXPECT_EQ(u32s.at(2).u32(), 4000000000u);
  EXPECT_EQ(u32s.u32s(), (std::vector<uint32_t>{1, 2, 4000000000u}));
  std::string e = error_of([&] { u32s.i32s(); });
  EXPECT_NE(e.find("'t.u32s' element 2"), std::string::npos) << e;
  e = error_of([&] { u32s.at(3); });
  EXPECT_NE(e.find("index 3 is out of range for an array of 3"), std::string::npos) << e;
  e = error_of([&] { u32s.at(0).string(); });
  EXPECT_NE(e.find("'t.u32s' element 0: expected type string, found u32"), std::string::npos) << e;

  ValueRef strings = f.get("t.strings");
  EXPECT_EQ(strings.strings(), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(strings.at(2).string(), "ccc");
  EXPECT_EQ(strings.at(1).string(), "");
  EXPECT_EQ(f.get("t.f32s").f32s(), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_TRUE(f.get("t.empty").f32s().empty());
  EXPECT_EQ(f.get("t.empty").array_size(), 0u);

  ValueRef nested = f.get("t.nested");
  EXPECT_EQ(nested.array_type(), ValueType::ARRAY);
  EXPECT_EQ(nested.array_size(), 3u);
  EXPECT_EQ(nested.at(0).array_type(), ValueType::U8);
  EXPECT_EQ(nested.at(0).at(1).u8(), 2);
  EXPECT_EQ(nested.at(0).i32s(), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(nested.at(1).at(0).string(), "x");
  EXPECT_EQ(nested.at(2).array_type(), ValueType::I64);
  EXPECT_EQ(nested.at(2).array_size(), 0u);
}

TEST_F(GgufReader, ToValueCopiesEverything) {
  const File& f = *file_;
  EXPECT_EQ(f.get("t.i16").to_value(), Value::i16(-30000));
  EXPECT_EQ(f.get("t.string").to_value(), Value::string("h\xc3\xa9llo"));
  EXPECT_EQ(f.get("t.u32s").to_value(), Value::u32s({1, 2, 4000000000u}));
  EXPECT_EQ(f.get("t.strings").to_value(), Value::strings({"a", "", "ccc"}));
  Array inner_u8{ValueType::U8, {Value::u8(1), Value::u8(2)}};
  Array inner_str{ValueType::STRING, {Value::string("x")}};
  Array inner_empty{ValueType::I64, {}};
  Array nested{ValueType::ARRAY,
               {Value::array(inner_u8), Value::array(inner_str), Value::array(inner_empty)}};
  EXPECT_EQ(f.get("t.nested").to_value(), Value::array(nested));
  EXPECT_FALSE(f.get("t.nested").to_value() == Value::array(Array{ValueType::ARRAY, {}}));
}

TEST(GgufReaderFile, IntegerArraysConvertWithRangeChecks) {
  RawFile raw;
  Bytes u64s, i8s;
  for (uint64_t v : {uint64_t{5}, uint64_t{1} << 40}) append(u64s, v);
  for (int8_t v : {int8_t{-1}, int8_t{2}}) append(i8s, v);
  raw.kvs.push_back({"a.u64s", kArray, encode_array(kU64, 2, u64s)});
  raw.kvs.push_back({"a.i8s", kArray, encode_array(kI8, 2, i8s)});
  raw.kvs.push_back({"a.bools", kArray, encode_array(kBool, 1, Bytes{1})});
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "ints.gguf");
  EXPECT_EQ(file->get("a.i8s").i32s(), (std::vector<int32_t>{-1, 2}));
  EXPECT_EQ(file->get("a.u64s").at(0).integer(), 5);
  for (auto convert :
       {+[](const ValueRef& v) { v.i32s(); }, +[](const ValueRef& v) { v.u32s(); }}) {
    try {
      convert(file->get("a.u64s"));
      ADD_FAILURE() << "2^40 converted to 32 bits";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'a.u64s' element 1"), std::string::npos) << e.what();
    }
  }
  try {
    file->get("a.i8s").u32s();
    ADD_FAILURE() << "-1 converted to u32";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a.i8s' element 0"), std::string::npos) << e.what();
  }
  try {
    file->get("a.bools").i32s();
    ADD_FAILURE() << "bools converted to integers";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("found array of bool"), std::string::npos) << e.what();
  }
}

TEST(GgufReaderFile, NullMemoryIsAnEmptyFile) {
  try {
    File::from_memory(nullptr, 100, "null.gguf");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("null.gguf: the file is empty"), std::string::npos);
  }
}

TEST(GgufReaderFile, MetadataKeepsFileOrder) {
  RawFile raw = small_valid_file();
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "small.gguf");
  ASSERT_EQ(file->metadata_count(), raw.kvs.size());
  for (size_t i = 0; i < raw.kvs.size(); ++i) EXPECT_EQ(file->metadata(i).key(), raw.kvs[i].key);
}

TEST(GgufReaderFile, TensorsAreViewsIntoTheMapping) {
  RawFile raw = small_valid_file();
  Bytes bytes = raw.bytes();
  std::string path = toy::testing::temp_path(".gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  auto file = File::open(path);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->data_offset(), bytes.size() - raw.data.size());
  const TensorInfo& q = file->tensors()[1];
  EXPECT_EQ(q.name, "blk.0.attn_q.weight");
  EXPECT_EQ(q.type, DType::Q8_0);
  EXPECT_EQ(q.n_dims, 2);
  EXPECT_EQ(q.ne, (std::array<int64_t, 4>{32, 1, 1, 1}));
  EXPECT_EQ(q.offset, 32u);
  EXPECT_EQ(q.bytes, 34u);
  Tensor embd = file->tensor("token_embd.weight");
  EXPECT_EQ(embd.type, DType::F32);
  EXPECT_EQ(embd.ne, (std::array<int64_t, 4>{4, 2, 1, 1}));
  EXPECT_EQ(embd.nb, (std::array<size_t, 4>{4, 16, 32, 32}));
  EXPECT_TRUE(embd.contiguous());
  EXPECT_EQ(embd.bytes(), 32u);
  Tensor norm = file->tensor(file->tensors()[2]);
  EXPECT_EQ(norm.type, DType::I8);
  EXPECT_EQ(static_cast<const uint8_t*>(norm.data) - static_cast<const uint8_t*>(embd.data), 96);
  EXPECT_EQ(file->find_tensor("nope"), nullptr);
  try {
    file->tensor("nope");
    ADD_FAILURE() << "missing tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": missing tensor 'nope'"), std::string::npos);
  }
  // The view keeps the file mapped after the last File handle goes away.
  file.reset();
  EXPECT_EQ(std::memcmp(embd.data, raw.data.data(), 32), 0);
  EXPECT_EQ(std::memcmp(norm.data, raw.data.data() + 96, 3), 0);
  embd = Tensor();
  norm = Tensor();
  std::filesystem::remove(path);
}

TEST(GgufReaderFile, Version2IsAccepted) {
  RawFile raw = small_valid_file();
  raw.version = 2;
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "v2.gguf");
  EXPECT_EQ(file->version(), 2u);
  EXPECT_EQ(file->tensors().size(), 3u);
}

TEST(GgufReaderFile, AlignmentFromMetadata) {
  RawFile raw = small_valid_file();
  raw.kv("general.alignment")->value = encode<uint32_t>(64);
  raw.alignment = 64;
  raw.tensors[1].offset = 64;
  raw.tensors[2].offset = 128;
  raw.data.resize(131);
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "a64.gguf");
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->data_offset() % 64, 0u);
  // Alignment 1 is allowed: then the data section starts right after the infos.
  raw.kv("general.alignment")->value = encode<uint32_t>(1);
  raw.alignment = 1;
  bytes = raw.bytes();
  file = File::from_memory(bytes.data(), bytes.size(), "a1.gguf");
  EXPECT_EQ(file->data_offset(), bytes.size() - raw.data.size());
}

TEST(GgufReaderFile, VocabularyOnlyFileMayEndAfterItsMetadata) {
  RawFile raw = small_valid_file();
  raw.tensors.clear();
  raw.data.clear();
  raw.alignment = 1;  // no padding at all
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "vocab.gguf");
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(), 2u);
}

TEST(GgufReaderFile, ArraysNestedToTheLimitAreAccepted) {
  RawFile raw = small_valid_file();
  Bytes value = encode_array(kU8, 1, Bytes{9});
  for (int i = 1; i < 8; ++i) value = encode_array(kArray, 1, value);
  raw.kvs.push_back({"test.deep", kArray, value});
  Bytes bytes = raw.bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "deep.gguf");
  ValueRef v = file->get("test.deep");
  for (int i = 1; i < 8; ++i) v = v.at(0);
  EXPECT_EQ(v.at(0).u8(), 9);
  EXPECT_EQ(file->get("test.deep").to_value().type, ValueType::ARRAY);
}

// Every fixture opens, and every value and tensor in it can be read.
TEST(GgufReaderFixtures, EveryFixtureOpens) {
  int files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(toy::testing::fixture_path(""))) {
    if (entry.path().extension() != ".gguf") continue;
    SCOPED_TRACE(entry.path().string());
    auto file = File::open(entry.path().string());
    EXPECT_TRUE(file->version() == 2 || file->version() == 3);
    EXPECT_TRUE(file->has("general.architecture"));
    for (size_t i = 0; i < file->metadata_count(); ++i) file->metadata(i).to_value();
    for (const TensorInfo& info : file->tensors()) {
      EXPECT_EQ(file->find_tensor(info.name), &info);
      EXPECT_EQ(file->tensor(info).bytes(), info.bytes) << info.name;
    }
    ++files;
  }
  EXPECT_GE(files, 30);
}

TEST(GgufReaderFixtures, LlamaMetadataAndTensors) {
  auto file = File::open(toy::testing::fixture_path("models/llama.gguf"));
  EXPECT_EQ(file->get_string("general.architecture"), "llama");
  EXPECT_GT(file->get_integer("llama.block_count"), 0);
  const TensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->n_dims, 2);
  EXPECT_EQ(embd->ne[0], file->get_integer("llama.embedding_length"));
}

}  // namespace
}  // namespace toy::gguf

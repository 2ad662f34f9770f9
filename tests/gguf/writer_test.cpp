// GGUF writer: every value type and tensor type round-trips through the reader,
// alignment and padding, atomic replacement, errors that name the path, and
// the fixture round trip (read, copy into a Writer, write, read again).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace toy::gguf {
namespace {

namespace fs = std::filesystem;

// A fresh empty directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() : path_(toy::testing::temp_path("-dir")) { fs::create_directory(path_); }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path_), {}));
  }

 private:
  std::string path_;
};

std::vector<std::pair<std::string, Value>> every_value_type() {
  Array nested{
      ValueType::ARRAY,
      {Value::u32s({1, 2}), Value::strings({"x", "yz"}), Value::array({ValueType::F64, {}})}};
  return {
      {"t.u8", Value::u8(255)},
      {"t.i8", Value::i8(-128)},
      {"t.u16", Value::u16(65535)},
      {"t.i16", Value::i16(-32768)},
      {"t.u32", Value::u32(4294967295u)},
      {"t.i32", Value::i32(-7)},
      {"t.f32", Value::f32(-0.0f)},
      {"t.bool", Value::boolean(false)},
      {"t.string", Value::string(std::string("with\0nul", 8))},
      {"t.u64", Value::u64(~uint64_t{0})},
      {"t.i64", Value::i64(INT64_MIN)},
      {"t.f64", Value::f64(1e300)},
      {"t.f32s", Value::f32s({1.0f, 2.5f})},
      {"t.i32s", Value::i32s({-1, 0, 1})},
      {"t.strings", Value::strings({"", "b"})},
      {"t.bools", Value::array({ValueType::BOOL, {Value::boolean(true), Value::boolean(false)}})},
      {"t.nested", Value::array(nested)},
  };
}

// Deterministic bytes for a tensor of `bytes` bytes.
std::vector<uint8_t> pattern(size_t bytes, uint8_t seed) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(seed + i * 31);
  return out;
}

TEST(GgufWriter, EveryValueTypeAndTensorTypeRoundTrips) {
  TempDir dir;
  Writer writer;
  auto values = every_value_type();
  for (const auto& [key, value] : values) writer.set(key, value);
  // One tensor of every dtype in the table, each 1 or 2 blocks wide, 3 rows.
  std::vector<std::vector<uint8_t>> data;
  std::vector<DType> types;
  for (uint32_t id = 0; id < 64; ++id) {
    std::optional<DTypeInfo> info = dtype_info(id);
    if (!info) continue;
    int64_t blocks = 1 + id % 2;
    data.push_back(pattern(static_cast<size_t>(blocks * info->type_size * 3), id));
    types.push_back(info->type);
    writer.add_tensor(std::string("t.") + std::string(info->name), info->type,
                      {blocks * info->block_size, 3}, data.back().data());
  }
  std::string path = dir.file("all.gguf");
  size_t progress_calls = 0;
  writer.write(path, [&](size_t done, size_t total) {
    EXPECT_EQ(done, ++progress_calls);
    EXPECT_EQ(total, types.size());
  });
  EXPECT_EQ(progress_calls, types.size());
  EXPECT_EQ(dir.entries(), 1u);  // no temporary file left behind

  auto file = File::open(path);
  EXPECT_EQ(file->version(), 3u);
  ASSERT_EQ(file->metadata_count(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(file->metadata(i).key(), values[i].first);
    EXPECT_TRUE(file->metadata(i).to_value() == values[i].second) << values[i].first;
  }
  ASSERT_EQ(file->tensors().size(), types.size());
  std::vector<uint8_t> bytes = toy::testing::read_bytes(path);
  uint64_t previous_end = file->data_offset();
  for (size_t i = 0; i < types.size(); ++i) {
    const TensorInfo& info = file->tensors()[i];
    EXPECT_EQ(info.type, types[i]);
    EXPECT_EQ(info.offset % 32, 0u);
    ASSERT_EQ(info.bytes, data[i].size());
    Tensor t = file->tensor(info);
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0) << info.name;
    // Padding between tensors is zero bytes.
    for (uint64_t b = previous_end; b < file->data_offset() + info.offset; ++b)
      ASSERT_EQ(bytes[b], 0) << "padding byte " << b;
    previous_end = file->data_offset() + info.offset + info.bytes;
  }
}

TEST(GgufWriter, HonoursGeneralAlignmentFromMetadata) {
  TempDir dir;
  Writer writer;  // 32 by default, overridden by the metadata
  writer.set("general.alignment", Value::u32(256));
  std::vector<uint8_t> a = pattern(40, 1), b = pattern(8, 2);
  writer.add_tensor("a", DType::F32, {10}, a.data());
  writer.add_tensor("b", DType::F16, {4}, b.data());
  writer.write(dir.file("a.gguf"));
  auto file = File::open(dir.file("a.gguf"));
  EXPECT_EQ(file->alignment(), 256u);
  EXPECT_EQ(file->data_offset() % 256, 0u);
  EXPECT_EQ(file->tensors()[1].offset, 256u);
  EXPECT_EQ(file->metadata_count(), 1u);
}

TEST(GgufWriter, WritesItsOwnAlignmentWhenNotTheDefault) {
  TempDir dir;
  Writer writer(64);
  std::vector<uint8_t> a = pattern(12, 1), b = pattern(12, 2);
  writer.add_tensor("a", DType::F32, {3}, a.data());
  writer.add_tensor("b", DType::F32, {3}, b.data());
  writer.write(dir.file("a.gguf"));
  auto file = File::open(dir.file("a.gguf"));
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->get_u32("general.alignment"), 64u);
  EXPECT_EQ(file->tensors()[1].offset, 64u);
}

TEST(GgufWriter, SetReplacesInPlaceAndRemoveDeletes) {
  TempDir dir;
  Writer writer;
  writer.set("a", Value::u8(1));
  writer.set("b", Value::u8(2));
  writer.set("a", Value::string("again"));
  writer.set("c", Value::u8(3));
  writer.remove("c");
  EXPECT_TRUE(writer.has("a"));
  EXPECT_FALSE(writer.has("c"));
  writer.write(dir.file("m.gguf"));
  auto file = File::open(dir.file("m.gguf"));
  ASSERT_EQ(file->metadata_count(), 2u);
  EXPECT_EQ(file->metadata(0).key(), "a");
  EXPECT_EQ(file->get_string("a"), "again");
}

TEST(GgufWriter, FillCallbackProducesTheBytes) {
  TempDir dir;
  Writer writer;
  writer.add_tensor("q", DType::Q8_0, {64, 2}, [](uint8_t* dst) {
    for (int i = 0; i < 4 * 34; ++i) dst[i] = static_cast<uint8_t>(i);
  });
  writer.write(dir.file("q.gguf"));
  auto file = File::open(dir.file("q.gguf"));
  Tensor q = file->tensor("q");
  ASSERT_EQ(q.bytes(), 4u * 34u);
  EXPECT_EQ(static_cast<const uint8_t*>(q.data)[135], 135);
}

TEST(GgufWriter, ReplacesAnExistingFile) {
  TempDir dir;
  std::string path = dir.file("x.gguf");
  Writer first;
  first.set("v", Value::u32(1));
  first.write(path);
  Writer second;
  second.set("v", Value::u32(2));
  second.write(path);
  EXPECT_EQ(File::open(path)->get_u32("v"), 2u);
  EXPECT_EQ(dir.entries(), 1u);
}

TEST(GgufWriter, FailedWriteLeavesNothingAndNamesThePath) {
  TempDir dir;
  std::string path = dir.file("broken.gguf");
  Writer writer;
  writer.set("v", Value::u32(1));
  std::vector<uint8_t> a = pattern(16, 1);
  writer.add_tensor("a", DType::F32, {4}, a.data());
  writer.add_tensor("b", DType::F32, {4}, [](uint8_t*) { fail("conversion of 'b' failed"); });
  try {
    writer.write(path);
    FAIL() << "write succeeded";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("conversion of 'b' failed"), std::string::npos) << message;
  }
  EXPECT_EQ(dir.entries(), 0u);  // neither the target nor the temporary file
}

TEST(GgufWriter, UnwritableDirectoryNamesThePath) {
  std::string path = toy::testing::temp_path("-no-such-dir") + "/model.gguf";
  Writer writer;
  try {
    writer.write(path);
    FAIL() << "write succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(GgufWriter, RejectsInvalidInput) {
  TempDir dir;
  float x[64] = {};
  Writer writer;
  writer.add_tensor("a", DType::F32, {4}, x);
  EXPECT_THROW(writer.add_tensor("a", DType::F32, {4}, x), Error);  // duplicate name
  EXPECT_THROW(writer.add_tensor("", DType::F32, {4}, x), Error);   // empty name
  EXPECT_THROW(writer.add_tensor("b", DType::F32, {}, x), Error);   // no dimensions
  EXPECT_THROW(writer.add_tensor("b", DType::F32, {1, 1, 1, 1, 1}, x), Error);
  EXPECT_THROW(writer.add_tensor("b", DType::F32, {4, 0}, x), Error);  // empty dimension
  EXPECT_THROW(writer.add_tensor("b", DType::Q8_0, {48}, x), Error);   // not whole blocks
  EXPECT_THROW(writer.add_tensor("b", DType::F32, {4}, static_cast<const void*>(nullptr)), Error);
  EXPECT_THROW(Writer(0), Error);
  EXPECT_THROW(Writer(48), Error);
  EXPECT_THROW(writer.set("", Value::u8(1)), Error);

  // Values that would not read back: mismatched array elements, bad general.alignment.
  Writer bad_array;
  bad_array.set("k", Value::array({ValueType::U8, {Value::u8(1), Value::i8(2)}}));
  try {
    bad_array.write(dir.file("a.gguf"));
    FAIL() << "write succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'k' element 1"), std::string::npos) << e.what();
  }
  Writer bad_alignment;
  bad_alignment.set("general.alignment", Value::u64(32));
  EXPECT_THROW(bad_alignment.write(dir.file("b.gguf")), Error);
  EXPECT_EQ(dir.entries(), 0u);
}

// Reading any fixture and writing it back gives identical metadata and identical tensor bytes;
// since the writer lays files out as llama.cpp does, the whole file is byte-identical too.
TEST(GgufWriter, EveryFixtureRoundTrips) {
  TempDir dir;
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(toy::testing::fixture_path(""))) {
    if (entry.path().extension() != ".gguf") continue;
    SCOPED_TRACE(entry.path().string());
    auto original = File::open(entry.path().string());
    Writer writer;
    copy_metadata(*original, writer);
    copy_tensors(*original, writer);
    std::string path = dir.file(entry.path().filename().string());
    writer.write(path);
    auto copy = File::open(path);
    EXPECT_EQ(copy->alignment(), original->alignment());
    ASSERT_EQ(copy->metadata_count(), original->metadata_count());
    for (size_t i = 0; i < original->metadata_count(); ++i) {
      ASSERT_EQ(copy->metadata(i).key(), original->metadata(i).key());
      ASSERT_TRUE(copy->metadata(i).to_value() == original->metadata(i).to_value())
          << original->metadata(i).key();
    }
    ASSERT_EQ(copy->tensors().size(), original->tensors().size());
    for (size_t i = 0; i < original->tensors().size(); ++i) {
      const TensorInfo& a = original->tensors()[i];
      const TensorInfo& b = copy->tensors()[i];
      ASSERT_EQ(a.name, b.name);
      ASSERT_EQ(a.type, b.type);
      ASSERT_EQ(a.n_dims, b.n_dims);
      ASSERT_EQ(a.ne, b.ne);
      ASSERT_EQ(a.bytes, b.bytes);
      ASSERT_EQ(std::memcmp(original->tensor(a).data, copy->tensor(b).data, a.bytes), 0) << a.name;
    }
    EXPECT_TRUE(toy::testing::read_bytes(path) == toy::testing::read_bytes(entry.path().string()));
    fs::remove(path);
    ++files;
  }
  EXPECT_GE(files, 30);
}

}  // namespace
}  // namespace toy::gguf

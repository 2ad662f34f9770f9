// Malformed GGUF files: each case breaks one thing in a small valid file and
// checks that the reader rejects it with a message naming the file, the byte
// offset and the key or tensor involved. Run under ASan/UBSan by scripts/test.sh.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "raw_gguf.h"
#include "support/fixtures.h"

namespace toy::gguf {
namespace {

using namespace toy::gguf::testing;

constexpr uint64_t k2to63 = uint64_t{1} << 63;

struct MalformedCase {
  std::string name;
  std::function<Bytes()> make;
  std::vector<std::string> expected_in_message;
};

// A case that edits the structured file before serializing it.
MalformedCase edit(std::string name, std::function<void(RawFile&)> mutate,
                   std::vector<std::string> expected) {
  return {std::move(name),
          [mutate] {
            RawFile f = small_valid_file();
            mutate(f);
            return f.bytes();
          },
          std::move(expected)};
}

// A case that patches a u64 at a byte offset of the serialized valid file.
MalformedCase patch_u64(std::string name, std::function<uint64_t(const RawFile&)> offset,
                        uint64_t value, std::vector<std::string> expected) {
  return {std::move(name),
          [offset, value] {
            RawFile f = small_valid_file();
            Bytes bytes = f.bytes();
            std::memcpy(bytes.data() + offset(f), &value, sizeof(value));
            return bytes;
          },
          std::move(expected)};
}

Bytes nested_arrays(int depth) {
  Bytes value = encode_array(kU8, 0);
  for (int i = 1; i < depth; ++i) value = encode_array(kArray, 1, value);
  return value;
}

std::vector<MalformedCase> malformed_cases() {
  std::vector<MalformedCase> cases;
  auto add = [&](MalformedCase c) { cases.push_back(std::move(c)); };
  // Header.
  add({"text_file",
       [] { return Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}; },
       {"not a GGUF file", "magic", "68 65 6c 6c"}});
  add({"two_bytes", [] { return Bytes{'G', 'G'}; }, {"magic", "only 2 bytes"}});
  add(edit("bad_magic", [](RawFile& f) { f.magic = "GGUX"; }, {"byte offset 0", "magic"}));
  add(edit("version_1", [](RawFile& f) { f.version = 1; }, {"byte offset 4", "version 1"}));
  add(edit("version_4", [](RawFile& f) { f.version = 4; }, {"byte offset 4", "version 4"}));
  add(edit("big_endian_version", [](RawFile& f) { f.version = 0x03000000; }, {"big-endian"}));
  add({"header_truncated",
       [] { return Bytes{'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0}; },
       {"tensor count", "byte offset 8"}});
  add(edit("tensor_count_2^63", [](RawFile& f) { f.tensor_count = k2to63; },
           {"byte offset 8", "tensor count 9223372036854775808"}));
  add(edit("tensor_count_1000", [](RawFile& f) { f.tensor_count = 1000; },
           {"byte offset 8", "tensor count 1000"}));
  add(edit("kv_count_2^63", [](RawFile& f) { f.kv_count = k2to63; },
           {"byte offset 16", "key/value count 9223372036854775808"}));
  add(edit("kv_count_2^64-1", [](RawFile& f) { f.kv_count = ~uint64_t{0}; },
           {"byte offset 16", "key/value count 18446744073709551615"}));
  add(edit("tensor_count_one_too_many", [](RawFile& f) { f.tensor_count = 4; }, {"byte offset"}));
  // Metadata keys and values.
  add(patch_u64("key_length_2^63", [](const RawFile&) { return 24; }, k2to63,
                {"byte offset 24", "key of metadata pair #0", "9223372036854775808"}));
  add(patch_u64("key_length_wraps", [](const RawFile&) { return 24; }, ~uint64_t{0},
                {"byte offset 24", "key of metadata pair #0", "exceeds"}));
  add(edit("empty_key", [](RawFile& f) { f.kvs[0].key = ""; },
           {"byte offset 24", "pair #0", "empty"}));
  add(edit("duplicate_key", [](RawFile& f) { f.kvs[3].key = "llama.block_count"; },
           {"duplicate metadata key 'llama.block_count'"}));
  add(edit("unknown_value_type", [](RawFile& f) { f.kvs[2].type = 13; },
           {"llama.block_count", "unknown value type 13"}));
  add(edit("value_type_2^32-1", [](RawFile& f) { f.kvs[2].type = 0xffffffff; },
           {"llama.block_count", "unknown value type 4294967295"}));
  add(edit("string_length_2^63",
           [](RawFile& f) {
             f.kvs[0].value = encode<uint64_t>(k2to63);
             f.kvs[0].value.insert(f.kvs[0].value.end(), {'l', 'l', 'a', 'm', 'a'});
           },
           {"general.architecture", "string length 9223372036854775808"}));
  add(edit("string_length_wraps",
           [](RawFile& f) { f.kvs[0].value = encode<uint64_t>(~uint64_t{0} - 3); },
           {"general.architecture", "string length 18446744073709551612"}));
  add(edit("string_length_past_end", [](RawFile& f) { f.kvs[0].value = encode<uint64_t>(100000); },
           {"general.architecture", "string length 100000", "exceeds"}));
  add(edit("array_count_2^63",
           [](RawFile& f) { f.kv("tokenizer.ggml.tokens")->value = encode_array(kString, k2to63); },
           {"tokenizer.ggml.tokens", "array of 9223372036854775808 string"}));
  add(edit("array_byte_size_wraps",
           [](RawFile& f) {
             // 2^62 i32 elements are 2^64 bytes: zero after wrapping.
             f.kv("tokenizer.ggml.token_type")->value = encode_array(kI32, uint64_t{1} << 62);
           },
           {"tokenizer.ggml.token_type", "array of 4611686018427387904 i32"}));
  add(edit("array_unknown_element_type",
           [](RawFile& f) { f.kv("tokenizer.ggml.tokens")->value = encode_array(13, 0); },
           {"tokenizer.ggml.tokens", "unknown array element type 13"}));
  add(edit("array_element_string_too_long",
           [](RawFile& f) {
             f.kv("tokenizer.ggml.tokens")->value =
                 encode_array(kString, 2, encode<uint64_t>(uint64_t{1} << 40));
           },
           {"tokenizer.ggml.tokens", "string length 1099511627776"}));
  add(edit("array_of_arrays_count_2^40",
           [](RawFile& f) {
             f.kvs.push_back({"test.nested", kArray, encode_array(kArray, uint64_t{1} << 40)});
           },
           {"test.nested", "array of 1099511627776 array elements"}));
  add(edit("arrays_nested_too_deep",
           [](RawFile& f) {
             f.kvs.push_back({"test.deep", kArray, nested_arrays(9)});
           },
           {"test.deep", "nested deeper than 8"}));
  add(edit("bool_value_2", [](RawFile& f) { f.kv("general.flag")->value = encode<uint8_t>(2); },
           {"general.flag", "expected a bool (0 or 1), found 2"}));
  add(edit("bool_array_value_7",
           [](RawFile& f) {
             f.kvs.push_back({"test.bools", kArray, encode_array(kBool, 2, Bytes{1, 7})});
           },
           {"test.bools", "found 7"}));
  add(edit("last_value_truncated",
           [](RawFile& f) {
             f.tensors.clear();
             f.data.clear();
             f.alignment = 1;
             f.kvs.push_back({"test.u64", kU64, Bytes{1, 2, 3}});
           },
           {"test.u64", "expected 8 bytes of u64"}));
  // general.alignment.
  add(edit("alignment_wrong_type",
           [](RawFile& f) {
             f.kv("general.alignment")->type = kU64;
             f.kv("general.alignment")->value = encode<uint64_t>(32);
           },
           {"general.alignment", "expected type u32, found u64"}));
  add(edit("alignment_zero",
           [](RawFile& f) { f.kv("general.alignment")->value = encode<uint32_t>(0); },
           {"general.alignment", "power of two, found 0"}));
  add(edit("alignment_not_power_of_two",
           [](RawFile& f) { f.kv("general.alignment")->value = encode<uint32_t>(48); },
           {"general.alignment", "power of two, found 48"}));
  // Tensor infos.
  add(edit("n_dims_0",
           [](RawFile& f) {
             f.tensors[0].ne.clear();
             f.tensors[0].n_dims = 0;
           },
           {"token_embd.weight", "n_dims = 0"}));
  add(edit("n_dims_5",
           [](RawFile& f) {
             f.tensors[0].ne = {4, 2, 1, 1, 1};
           },
           {"token_embd.weight", "n_dims = 5"}));
  add(edit("n_dims_2^32-1", [](RawFile& f) { f.tensors[0].n_dims = 0xffffffff; },
           {"token_embd.weight", "n_dims = 4294967295"}));
  add(edit("dimension_zero",
           [](RawFile& f) {
             f.tensors[0].ne = {4, 0};
           },
           {"token_embd.weight", "dimension 1", "found 0"}));
  add(edit("dimension_2^63",
           [](RawFile& f) {
             f.tensors[0].ne = {k2to63, 1};
           },
           {"token_embd.weight", "dimension 0", "found 9223372036854775808"}));
  add(edit("element_count_overflow",
           [](RawFile& f) {
             f.tensors[0].ne = {uint64_t{1} << 32, uint64_t{1} << 32};
           },
           {"token_embd.weight", "element count overflows"}));
  add(edit("byte_size_overflow",
           [](RawFile& f) {
             // 2^62 f64 elements fit in int64, but their 2^65 bytes do not fit in u64.
             f.tensors[0].type = kTypeF64;
             f.tensors[0].ne = {uint64_t{1} << 60, 4};
           },
           {"token_embd.weight", "byte size", "overflows"}));
  add(edit("unknown_tensor_type", [](RawFile& f) { f.tensors[0].type = 99; },
           {"token_embd.weight", "unknown ggml tensor type id 99"}));
  add(edit("retired_tensor_type_4", [](RawFile& f) { f.tensors[0].type = 4; },
           {"token_embd.weight", "unknown ggml tensor type id 4"}));
  add(edit("row_not_multiple_of_block", [](RawFile& f) { f.tensors[1].ne = {48}; },
           {"blk.0.attn_q.weight", "ne[0] = 48", "q8_0 block size 32"}));
  add(edit("misaligned_offset", [](RawFile& f) { f.tensors[1].offset = 33; },
           {"blk.0.attn_q.weight", "data offset 33", "alignment 32"}));
  add(edit("data_past_end", [](RawFile& f) { f.tensors[2].offset = 128; },
           {"output_norm.weight", "past the end"}));
  add(edit("offset_2^63", [](RawFile& f) { f.tensors[2].offset = k2to63; },
           {"output_norm.weight", "past the end"}));
  add(edit("offset_plus_size_wraps", [](RawFile& f) { f.tensors[2].offset = ~uint64_t{0} - 31; },
           {"output_norm.weight", "past the end"}));
  add(edit("data_section_truncated", [](RawFile& f) { f.data.resize(50); },
           {"blk.0.attn_q.weight", "past the end"}));
  add(edit("overlapping_tensors", [](RawFile& f) { f.tensors[1].offset = 0; },
           {"'token_embd.weight' and 'blk.0.attn_q.weight' overlap"}));
  add(edit("duplicate_tensor_name", [](RawFile& f) { f.tensors[2].name = "token_embd.weight"; },
           {"duplicate tensor name 'token_embd.weight'"}));
  add(edit("empty_tensor_name", [](RawFile& f) { f.tensors[1].name = ""; },
           {"tensor #1", "empty"}));
  add(patch_u64("tensor_name_length_2^63", [](const RawFile& f) { return f.tensor_infos_offset(); },
                k2to63, {"name of tensor #0", "length 9223372036854775808"}));
  add(edit("tensor_info_truncated",
           [](RawFile& f) {
             f.tensor_count = 4;  // the fourth info would start in the padding and data
             f.data.resize(99);
           },
           {"byte offset"}));
  return cases;
}

class Malformed : public ::testing::TestWithParam<MalformedCase> {};

void expect_rejected(const std::function<void()>& open, const std::string& file_name,
                     const std::vector<std::string>& expected) {
  try {
    open();
    ADD_FAILURE() << "the malformed file was accepted";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(file_name), std::string::npos) << message;
    EXPECT_NE(message.find("byte offset"), std::string::npos) << message;
    for (const std::string& part : expected)
      EXPECT_NE(message.find(part), std::string::npos)
          << "expected '" << part << "' in: " << message;
  }
}

TEST_P(Malformed, IsRejectedFromMemoryWithAClearMessage) {
  Bytes bytes = GetParam().make();
  expect_rejected([&] { File::from_memory(bytes.data(), bytes.size(), "bad.gguf"); }, "bad.gguf",
                  GetParam().expected_in_message);
}

TEST_P(Malformed, IsRejectedFromDiskWithAClearMessage) {
  Bytes bytes = GetParam().make();
  std::string path = toy::testing::temp_path(".gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  expect_rejected([&] { File::open(path); }, path, GetParam().expected_in_message);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Gguf, Malformed, ::testing::ValuesIn(malformed_cases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& info) {
                           std::string name;
                           for (char c : info.param.name)
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(GgufMalformed, AtLeastThirtyCases) {
  EXPECT_GE(malformed_cases().size(), 30u);
}

TEST(GgufMalformed, SmallValidFileIsAccepted) {
  Bytes bytes = small_valid_file().bytes();
  auto file = File::from_memory(bytes.data(), bytes.size(), "good.gguf");
  EXPECT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->metadata_count(), 7u);
}

// Every proper prefix of a valid file is rejected with a message, and nothing reads past it
// (each prefix is its own heap allocation, so AddressSanitizer sees any over-read).
TEST(GgufMalformed, TruncationAtEveryByteIsRejected) {
  Bytes full = small_valid_file().bytes();
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      File::from_memory(prefix.data(), prefix.size(), "cut.gguf");
      ADD_FAILURE() << "a prefix of " << n << " bytes was accepted";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find("cut.gguf"), std::string::npos) << message;
      EXPECT_TRUE(message.find("byte offset") != std::string::npos ||
                  (n == 0 && message.find("empty") != std::string::npos))
          << n << ": " << message;
    }
  }
}

TEST(GgufFiles, EmptyFile) {
  std::string path = toy::testing::temp_path(".gguf");
  std::ofstream(path).close();
  try {
    File::open(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": the file is empty (0 bytes)"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove(path);
}

TEST(GgufFiles, Directory) {
  std::string path = toy::testing::temp_path("-dir");
  std::filesystem::create_directory(path);
  try {
    File::open(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": is a directory"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(GgufFiles, MissingFile) {
  std::string path = toy::testing::temp_path("-missing.gguf");
  try {
    File::open(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": cannot open: No such file or directory"),
              std::string::npos)
        << e.what();
  }
}

TEST(GgufFiles, NotGguf) {
  std::string path = toy::testing::temp_path(".json");
  std::ofstream(path) << "{\"not\": \"a model\"}\n";
  try {
    File::open(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": byte offset 0: not a GGUF file"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove(path);
}

// A FIFO with no writer would block a plain open(); the reader must refuse it instead.
TEST(GgufFiles, FifoDoesNotHang) {
  std::string path = toy::testing::temp_path(".fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  try {
    File::open(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace toy::gguf

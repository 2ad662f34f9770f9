// Damaged values in files (issue 10): `toy info --check` finds NaN / infinity with the first bad
// element, quantize refuses to hide them, generate stops with one warning when the logits are
// not finite, error texts show control bytes escaped, and an allocation failure says what and
// how much.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace toy {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;
using testing::temp_path;

using toy::testing::run_toy;

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A copy of the F32 model `source` whose tensor `name` has `value` at element `index`, and
// whose metadata key `key` (if given) is replaced by the string `key_value`.
std::string damaged_copy(const std::string& source, const std::string& name, size_t index,
                         float value, const std::string& key = "",
                         const std::string& key_value = "") {
  const auto in = gguf::File::open(source);
  gguf::Writer writer;
  gguf::copy_metadata(*in, writer);
  if (!key.empty()) writer.set(key, gguf::Value::string(key_value));
  static std::vector<std::vector<float>> keep;  // tensor data must outlive write()
  for (const gguf::TensorInfo& info : in->tensors()) {
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    const Tensor t = in->tensor(info);
    if (info.name != name) {
      writer.add_tensor(std::string(info.name), info.type, ne, t.data);
      continue;
    }
    EXPECT_EQ(info.type, DType::F32) << name;
    auto& data = keep.emplace_back(static_cast<const float*>(t.data),
                                   static_cast<const float*>(t.data) + info.bytes / sizeof(float));
    data.at(index) = value;
    writer.add_tensor(std::string(info.name), info.type, ne, data.data());
  }
  const std::string out = temp_path(".gguf");
  writer.write(out);
  return out;
}

TEST(ValueChecks, InfoCheckReportsEachDamagedTensorWithItsFirstBadElement) {
  const std::string model = fixture_path("models/llama.gguf");
  std::string output;
  EXPECT_EQ(run_toy("info --check " + model, &output), 0) << output;
  EXPECT_NE(output.find("check: all 21 tensors hold finite values"), std::string::npos) << output;

  const std::string bad = damaged_copy(model, "blk.0.attn_q.weight", 64 * 3 + 5, NAN);
  EXPECT_EQ(run_toy("info --check " + bad, &output), 1) << output;
  EXPECT_NE(output.find("check: blk.0.attn_q.weight (f32): NaN at element 197 (row 3, column 5)"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("check: 1 of 21 tensors hold NaN or infinity"), std::string::npos)
      << output;

  // Infinity is told apart from NaN.
  const std::string inf =
      damaged_copy(model, "blk.1.ffn_down.weight", 7, std::numeric_limits<float>::infinity());
  EXPECT_EQ(run_toy("info --check " + inf, &output), 1) << output;
  EXPECT_NE(output.find("check: blk.1.ffn_down.weight (f32): infinity at element 7 (row 0, "
                        "column 7)"),
            std::string::npos)
      << output;
  fs::remove(bad);
  fs::remove(inf);
}

TEST(ValueChecks, QuantizeRefusesNanInsteadOfHidingIt) {
  const std::string bad =
      damaged_copy(fixture_path("models/llama.gguf"), "blk.0.attn_q.weight", 70, NAN);
  const std::string out = temp_path(".gguf");
  std::string output;
  EXPECT_EQ(run_toy("quantize -t 1 " + bad + " " + out + " q8_0", &output), 1) << output;
  EXPECT_NE(output.find("tensor 'blk.0.attn_q.weight' holds NaN at element 70 (row 1, column 6)"),
            std::string::npos)
      << output;
  EXPECT_FALSE(fs::exists(out));
  fs::remove(bad);
}

TEST(ValueChecks, GenerateWarnsOnceAndStopsOnNonFiniteLogits) {
  // A NaN in the final norm makes every logit NaN; sampling them used to emit token 0 forever.
  const std::string bad =
      damaged_copy(fixture_path("models/stories260K.gguf"), "output_norm.weight", 0, NAN);
  std::string output;
  EXPECT_EQ(run_toy("generate -m " + bad + " -p Once -n 20 --temp 0 --print-ids", &output), 1)
      << output;
  EXPECT_EQ(occurrences(output, "logits are not finite"), 1u) << output;
  EXPECT_NE(output.find("toy generate: warning: the model's logits are not finite (NaN"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("generation: 0 tokens"), std::string::npos) << output;
  fs::remove(bad);
}

TEST(ValueChecks, ErrorTextsShowEmbeddedControlBytesEscaped) {
  const std::string bad = damaged_copy(fixture_path("models/llama.gguf"), "", 0, 0.0f,
                                       "general.architecture", std::string("llama\0x\x1b", 8));
  std::string output;
  EXPECT_EQ(run_toy("generate -m " + bad + " --tokens 1,2 -n 1 --seed 1", &output), 1) << output;
  EXPECT_NE(output.find("'llama\\x00x\\x1b'"), std::string::npos) << output;
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  fs::remove(bad);
}

TEST(ValueChecks, AllocationFailureNamesTheTensorAndItsSize) {
  const std::string out = temp_path(".gguf");
  std::string output;
  // token_embd: 2e9 x 64 floats = 512 GB, more than any machine here has.
  EXPECT_EQ(run_toy("init --n-embd 64 --n-layer 1 --n-head 4 --n-ff 8 --vocab 2000000000 -o " + out,
                    &output),
            1)
      << output;
  EXPECT_NE(output.find("out of memory allocating 512000000000 bytes (476.84 GiB) for tensor "
                        "'token_embd.weight'"),
            std::string::npos)
      << output;
  EXPECT_FALSE(fs::exists(out));
}

// A layer count beyond the tensor table is refused by name before anything is
// sized from it (it used to end in a bare "out of memory").
TEST(ValueChecks, AnImpossibleBlockCountIsNamedNotAnAllocationFailure) {
  const auto in = gguf::File::open(fixture_path("models/llama.gguf"));
  gguf::Writer writer;
  gguf::copy_metadata(*in, writer);
  writer.set("llama.block_count", gguf::Value::u32(4000000000u));
  for (const gguf::TensorInfo& info : in->tensors()) {
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    writer.add_tensor(std::string(info.name), info.type, ne, in->tensor(info).data);
  }
  const std::string bad = temp_path(".gguf");
  writer.write(bad);
  std::string output;
  EXPECT_EQ(run_toy("generate -m " + bad + " --tokens 1,2 -n 1 --seed 1", &output), 1) << output;
  EXPECT_NE(output.find("llama.block_count = 4000000000 but the file has only 21 tensors"),
            std::string::npos)
      << output;
  EXPECT_EQ(output.find("out of memory"), std::string::npos) << output;
  fs::remove(bad);
}

}  // namespace
}  // namespace toy

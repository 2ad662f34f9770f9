// Quantized weights are used in place, including 3-D expert stacks: a Q8_0 /
// Q4_0 copy of mixtral.gguf must compute, in exact mode, what an F32 file
// holding the same (dequantized) values computes.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "infer/session.h"
#include "model/model.h"
#include "quant/quant.h"
#include "support/fixtures.h"
#include "support/model_reference.h"

namespace toy {
namespace {

// Writes mixtral.gguf with every matrix stored as `type` (quantized == true) or as
// the F32 values that storage decodes to (quantized == false).
std::string requantized_mixtral(DType type, bool quantized,
                                std::map<std::string, std::vector<uint8_t>>& storage) {
  const auto source = gguf::File::open(testing::fixture_path("models/mixtral.gguf"));
  gguf::Writer writer;
  gguf::copy_metadata(*source, writer);
  for (const gguf::TensorInfo& info : source->tensors()) {
    const std::string name(info.name);
    const std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    const Tensor t = source->tensor(info);
    const int64_t n = info.ne[0];
    if (info.n_dims < 2 || n % dtype_info(type).block_size != 0) {
      writer.add_tensor(name, info.type, ne, t.data);
      continue;
    }
    std::vector<uint8_t> packed(static_cast<size_t>(row_bytes(type, n) * t.rows()));
    std::vector<uint8_t>& out = storage[name];
    out.resize(quantized ? packed.size() : static_cast<size_t>(t.numel()) * sizeof(float));
    for (int64_t r = 0; r < t.rows(); ++r) {
      uint8_t* q = packed.data() + r * row_bytes(type, n);
      quant::quantize_row(type, reinterpret_cast<const float*>(t.row(r)), q, n);
      if (!quantized)
        quant::dequantize_row(type, q, reinterpret_cast<float*>(out.data()) + r * n, n);
    }
    if (quantized) out = packed;
    writer.add_tensor(name, quantized ? type : DType::F32, ne, out.data());
  }
  const std::string path = testing::temp_path(".gguf");
  writer.write(path);
  return path;
}

std::vector<float> exact_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  const Model model = Model::load(path);
  ThreadPool pool(2);
  Session session(model, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact});
  std::vector<float> logits(tokens.size() * static_cast<size_t>(model.config.n_vocab));
  session.prefill_all(tokens, logits.data());
  return logits;
}

TEST(QuantizedExperts, ComputeLikeTheirDequantizedValues) {
  const std::vector<int32_t> tokens = testing::load_references("mixtral")[0].tokens;
  for (DType type : {DType::Q8_0, DType::Q4_0}) {  // (K-quants need rows of 256)
    std::map<std::string, std::vector<uint8_t>> q_storage, f_storage;
    const std::string q_path = requantized_mixtral(type, true, q_storage);
    const std::string f_path = requantized_mixtral(type, false, f_storage);
    const Model q_model = Model::load(q_path);
    EXPECT_EQ(q_model.weights.layers[0].ffn_up_exps.type, type);
    EXPECT_EQ(q_model.weights.layers[1].ffn_down_exps.type, type);
    EXPECT_EQ(q_model.weights.token_embd.type, type);
    const testing::Closeness c =
        testing::compare_logits(exact_logits(q_path, tokens), exact_logits(f_path, tokens));
    EXPECT_TRUE(c.ok()) << dtype_name(type) << ": max " << c.max_abs << " (limit " << c.max_limit
                        << "), rms " << c.rms << " (limit " << c.rms_limit << ")";
    std::filesystem::remove(q_path);
    std::filesystem::remove(f_path);
  }
}

}  // namespace
}  // namespace toy

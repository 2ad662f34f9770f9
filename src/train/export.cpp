#include "train/export.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "quant/quant.h"
#include "train/lens.h"

namespace toy::train {

uint32_t file_type_of(DType type) {
  switch (type) {
    case DType::F16:
      return 1;
    case DType::Q8_0:
      return 7;
    case DType::BF16:
      return 32;
    default:
      return 0;  // ALL_F32
  }
}

void copy_tokenizer_metadata(const gguf::File& from, gguf::Writer& to) {
  for (size_t i = 0; i < from.metadata_count(); ++i) {
    const gguf::ValueRef value = from.metadata(i);
    if (value.key().starts_with("tokenizer.")) to.set(std::string(value.key()), value.to_value());
  }
}

DType parse_out_type(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "f32") return DType::F32;
  if (lower == "f16") return DType::F16;
  if (lower == "bf16") return DType::BF16;
  if (lower == "q8_0") return DType::Q8_0;
  fail("--out-type must be one of f32, f16, bf16, q8_0; got '", name, "'");
}

void write_model_gguf(const std::string& path, const ParamStore<float>& store,
                      const std::string& model_name, DType out_type,
                      const std::function<void(gguf::Writer&)>& tokenizer_metadata) {
  using gguf::Value;
  gguf::Writer writer;
  store.config().write_gguf_metadata(writer);
  writer.set("general.name", Value::string(model_name));
  writer.set("general.file_type", Value::u32(file_type_of(out_type)));
  if (dtype_info(out_type).quantized) writer.set("general.quantization_version", Value::u32(2));
  tokenizer_metadata(writer);

  // Matrices take the output type when their rows fit its blocks; vectors (and the
  // plain-F32 GDN convolution kernel) stay F32.
  auto add = [&](const std::string& name, std::vector<int64_t> ne, const float* data,
                 bool plain_f32) {
    DType type = DType::F32;
    if (ne.size() >= 2 && !plain_f32 && out_type != DType::F32 &&
        ne[0] % dtype_info(out_type).block_size == 0)
      type = out_type;
    if (type == DType::F32) {
      writer.add_tensor(name, type, ne, static_cast<const void*>(data));
      return;
    }
    int64_t numel = 1;
    for (int64_t n : ne) numel *= n;
    const int64_t n = ne[0], rows = numel / n;
    const size_t row_size = static_cast<size_t>(row_bytes(type, n));
    writer.add_tensor(name, type, ne, [=](uint8_t* dst) {
      for (int64_t r = 0; r < rows; ++r)
        quant::quantize_row(type, data + r * n, dst + static_cast<size_t>(r) * row_size, n);
    });
  };
  // A projection lens leaves as the table it computes: a standard token_embd [n_embd, V].
  const ModelConfig& c = store.config();
  std::vector<float> folded;
  if (c.n_embd_lens > 0) {
    folded = fold_lens(store);
    add("token_embd.weight", {c.n_embd, c.n_vocab}, folded.data(), false);
  }
  for (const ParamTensor& p : store.tensors()) {
    if (c.n_embd_lens > 0 &&
        (p.spec.name == "lens.proj.weight" || p.spec.name == "token_embd.weight"))
      continue;
    add(p.spec.name, std::vector<int64_t>(p.spec.ne.begin(), p.spec.ne.begin() + p.spec.n_dims),
        store.params() + p.offset, p.spec.plain_f32);
  }
  // llama3's frequency factors: a constant of the model, carried over as F32.
  if (const Tensor& freqs = store.weights().rope_freqs; freqs.data)
    writer.add_tensor("rope_freqs.weight", DType::F32, {freqs.ne[0]},
                      static_cast<const void*>(freqs.data));
  writer.write(path);
}

}  // namespace toy::train

// Writing a trained model as a standard GGUF in llama.cpp's layout: the
// architecture's hyper-parameter keys, the tokenizer metadata, and every
// parameter under its GGUF name, F32 or converted through the quantizer
// (F16, BF16, Q8_0 for 2-D weights; norms and biases stay F32, as llama.cpp's
// quantizer leaves them). The gguf Writer writes atomically (temp + rename).
#pragma once

#include <functional>
#include <string>

#include "core/dtype.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "train/params.h"

namespace toy::train {

// Parses --out-type: f32, f16, bf16 or q8_0 (toy::Error listing them otherwise).
DType parse_out_type(const std::string& name);

// llama.cpp's general.file_type (LLAMA_FTYPE_*) of a file whose matrices are `type`
// (f32, f16, bf16, q8_0).
uint32_t file_type_of(DType type);

// Sets the tokenizer.* keys of `from` (a vocabulary taken from another model) on `to`.
void copy_tokenizer_metadata(const gguf::File& from, gguf::Writer& to);

// Writes `store` to `path`; `tokenizer_metadata` sets the tokenizer.* keys.
void write_model_gguf(const std::string& path, const ParamStore<float>& store,
                      const std::string& model_name, DType out_type,
                      const std::function<void(gguf::Writer&)>& tokenizer_metadata);

}  // namespace toy::train

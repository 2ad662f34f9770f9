#include "model/model.h"

#include <set>
#include <string_view>

#include "core/error.h"
#include "gguf/reader.h"
#include "quant/quant.h"

namespace toy {
namespace {

std::string shape_of(const gguf::TensorInfo& info) {
  std::string s = "[";
  for (int i = 0; i < info.n_dims; ++i) {
    if (i) s += ", ";
    s += std::to_string(info.ne[static_cast<size_t>(i)]);
  }
  return s + "]";
}

}  // namespace

Model Model::from_file(std::shared_ptr<const gguf::File> file) {
  Model model;
  model.file = file;
  model.config = ModelConfig::from_gguf(*file);
  model.weights.layers.resize(static_cast<size_t>(model.config.n_layer));
  const std::string& path = file->path();

  std::set<std::string_view> used;
  for_each_tensor(model.config, model.weights, [&](const TensorSpec& spec, Tensor& tensor) {
    const gguf::TensorInfo* info = file->find_tensor(spec.name);
    if (!info) {
      if (spec.required)
        fail(path, ": missing tensor ", spec.name, " (expected shape ", spec.shape_string(), ", ",
             model.config.arch().name, " architecture)");
      return;
    }
    used.insert(info->name);
    for (size_t d = 0; d < 4; ++d) {
      if (info->ne[d] != spec.ne[d])
        fail(path, ": tensor ", spec.name, " has shape ", shape_of(*info), ", expected ",
             spec.shape_string());
    }
    if (spec.plain_f32 && info->type != DType::F32)
      fail(path, ": tensor ", spec.name, " has type ", dtype_name(info->type),
           ", expected f32 (norm weights, biases and frequency factors are read as floats)");
    if (!quant::can_dequantize(info->type))
      fail(path, ": tensor ", spec.name, " has type ", dtype_name(info->type),
           ", which this engine cannot compute with");
    tensor = file->tensor(*info);
  });
  for (const gguf::TensorInfo& info : file->tensors()) {
    if (!used.count(info.name))
      fail(path, ": unexpected tensor ", info.name, " for a ", model.config.arch().name,
           " model with this configuration (", model.config.n_layer, " layers, ",
           model.config.n_expert, " experts)");
  }
  return model;
}

Model Model::load(const std::string& path) {
  return from_file(gguf::File::open(path));
}

}  // namespace toy

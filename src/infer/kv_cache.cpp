#include "infer/kv_cache.h"

#include "core/error.h"

namespace toy {

KvCache::KvCache(const ModelConfig& config, int64_t n_ctx, DType type)
    : n_ctx_(n_ctx), type_(type) {
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    fail("KV cache type ", dtype_name(type), " is not supported (use f32, f16 or q8_0)");
  if (n_ctx <= 0) fail("context length must be positive, got ", n_ctx);
  const int64_t block = dtype_info(type).block_size;
  for (int64_t width : {config.kv_dim(), config.v_dim()}) {
    if (width % block != 0)
      fail("KV cache type ", dtype_name(type), " needs rows of a multiple of ", block,
           " values, but this model's K/V rows hold ", width, " (n_head_kv*head_dim); use f16");
  }
  layers_.reserve(static_cast<size_t>(config.n_layer));
  for (int64_t il = 0; il < config.n_layer; ++il) {
    layers_.push_back({Tensor::zeros(type, {config.kv_dim(), n_ctx}),
                       Tensor::zeros(type, {config.v_dim(), n_ctx})});
  }
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const KvLayer& l : layers_) total += l.k.bytes() + l.v.bytes();
  return total;
}

DType parse_kv_type(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "q8_0") return DType::Q8_0;
  fail("unknown KV cache type '", name, "' (expected f32, f16 or q8_0)");
}

}  // namespace toy

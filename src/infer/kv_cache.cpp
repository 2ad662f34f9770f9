#include "infer/kv_cache.h"

#include <algorithm>

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
    KvLayer layer;
    if (config.is_gdn(il)) {
      // A fixed-size recurrent memory instead of rows per position (F32: the state
      // accumulates over the whole sequence, so it is not rounded).
      recurrent_ = true;
      const GdnConfig& g = config.gdn;
      layer.state = Tensor::zeros(DType::F32, {g.d_v(), g.d_state, g.n_v_head});
      layer.conv =
          Tensor::zeros(DType::F32, {g.conv_channels(), std::max<int64_t>(1, g.d_conv - 1)});
    } else {
      layer.k = Tensor::zeros(type, {config.kv_dim(), n_ctx});
      layer.v = Tensor::zeros(type, {config.v_dim(), n_ctx});
    }
    layers_.push_back(std::move(layer));
  }
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const KvLayer& l : layers_) {
    for (const Tensor* t : {&l.k, &l.v, &l.state, &l.conv})
      if (t->data) total += t->bytes();
  }
  return total;
}

void KvCache::save_recurrent(std::vector<float>& out) const {
  out.clear();
  for (const KvLayer& l : layers_)
    for (const Tensor* t : {&l.state, &l.conv})
      if (t->data) out.insert(out.end(), t->ptr<const float>(), t->ptr<const float>() + t->numel());
}

void KvCache::restore_recurrent(const std::vector<float>& in) const {
  size_t at = 0;
  for (const KvLayer& l : layers_)
    for (const Tensor* t : {&l.state, &l.conv})
      if (t->data) {
        const size_t n = static_cast<size_t>(t->numel());
        TOY_CHECK(at + n <= in.size(), "recurrent snapshot of ", in.size(), " floats");
        std::copy_n(in.data() + at, n, t->ptr<float>());
        at += n;
      }
}

DType parse_kv_type(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "q8_0") return DType::Q8_0;
  fail("unknown KV cache type '", name, "' (expected f32, f16 or q8_0)");
}

}  // namespace toy

// KvCache: the keys and values of every layer for positions 0..n_ctx-1, stored
// as F32, F16 or Q8_0 (one quantized row per position). Allocated once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"
#include "model/forward.h"

namespace toy {

class KvCache {
 public:
  // Throws toy::Error for an unsupported type or a row width Q8_0 cannot hold.
  KvCache(const ModelConfig& config, int64_t n_ctx, DType type);

  std::span<const KvLayer> layers() const { return layers_; }
  int64_t n_ctx() const { return n_ctx_; }
  DType type() const { return type_; }
  size_t bytes() const;

 private:
  int64_t n_ctx_;
  DType type_;
  std::vector<KvLayer> layers_;  // n_layer; k, v: ne = [n_head_kv*head_dim, n_ctx]
};

// Parses a --kv-type value: "f32", "f16" or "q8_0" (throws toy::Error otherwise).
DType parse_kv_type(const std::string& name);

}  // namespace toy

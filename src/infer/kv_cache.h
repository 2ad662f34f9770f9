// KvCache: the keys and values of every attention layer for positions 0..n_ctx-1,
// stored as F32, F16 or Q8_0 (one quantized row per position), and the recurrent
// state and convolution tail of every gated delta-net layer (F32, fixed size).
// Allocated once.
//
// Rows of an attention layer can be forgotten from any position on (truncate); a
// recurrent state cannot be rewound, so a hybrid keeps a copy of it at a chosen
// position (save_recurrent) to go back to.
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
  bool recurrent() const { return recurrent_; }  // any gated delta-net layer

  // Copies every GDN layer's state and conv tail into `out` / back from it.
  void save_recurrent(std::vector<float>& out) const;
  void restore_recurrent(const std::vector<float>& in) const;

 private:
  int64_t n_ctx_;
  DType type_;
  bool recurrent_ = false;
  std::vector<KvLayer> layers_;  // n_layer; k, v: ne = [n_head_kv*head_dim, n_ctx]
};

// Parses a --kv-type value: "f32", "f16" or "q8_0" (throws toy::Error otherwise).
DType parse_kv_type(const std::string& name);

}  // namespace toy

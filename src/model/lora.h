// LoRA adapters in llama.cpp's GGUF format, and the set of adapters applied to
// one model's weight products.
//
// An adapter file has `general.type = adapter`, `adapter.type = lora`,
// `adapter.lora.alpha` (f32) and `general.architecture` of its base. For each
// adapted base matrix W (ne = [n_in, n_out]) it holds
//   `<W's name>.lora_a`  ne = [n_in, r]   (r rows of n_in: A)
//   `<W's name>.lora_b`  ne = [r, n_out]  (n_out rows of r: B)
// and the adapted product is W x + scale·(alpha/r)·B·(A·x) (Hu et al. 2021,
// "LoRA", eq. 3; llama.cpp's llm_graph_context::build_lora_mm). alpha = 0 means
// "no alpha": the user's scale is used as is, as llama.cpp does.
//
// A and B are small, so they are dequantized to F32 at load whatever their
// stored type: the adapter term then costs two thin F32 products per weight.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "model/model.h"

namespace toy {

// One adapted base matrix of an adapter file.
struct LoraWeight {
  std::string base_name;  // GGUF name of the base matrix, "blk.0.attn_q.weight"
  Tensor a;               // F32, ne = [n_in, r], owns its memory
  Tensor b;               // F32, ne = [r, n_out], owns its memory
  int64_t rank() const { return a.ne[1]; }
};

struct LoraAdapter {
  std::string path;
  float alpha = 0.0f;  // adapter.lora.alpha; 0: absent
  std::vector<LoraWeight> weights;

  // Reads and validates `path` against `base`: the file is an adapter of the base's
  // architecture, every `.lora_a` has its `.lora_b`, every base name is a 2-D matrix of
  // `base` that goes through linear(), and the shapes fit it. Throws toy::Error naming the
  // file and the tensor.
  static LoraAdapter load(const std::string& path, const Model& base);

  // scale·alpha/r, or the scale itself when the adapter has no alpha (llama.cpp's rule).
  float effective_scale(float scale, int64_t rank) const {
    return alpha != 0.0f ? scale * alpha / static_cast<float>(rank) : scale;
  }
};

// One adapter term of one base matrix: y += scale · B·(A·x).
struct LoraTerm {
  const Tensor* a;  // ne = [n_in, r]
  const Tensor* b;  // ne = [r, n_out]
  float scale;      // user scale · alpha / r
  // Training (toy finetune): where linear_backward accumulates dA and dB, in the type of a
  // and b (F32, F64 for gradient checks); null for an adapter that is only applied.
  const Tensor* grad_a = nullptr;  // ne = [n_in, r]
  const Tensor* grad_b = nullptr;  // ne = [r, n_out]
  uint32_t id = 0;                 // position in its set (names the term's dropout masks)
};

// LoRA dropout (PEFT's lora_dropout) while training a set: the adapter's input x becomes
// x ∘ mask / (1 − p), mask(row, i) = 0 with probability p, drawn from a hash of (stream,
// term, row0 + row, i) (kernels/lora.h lora_dropout) — so the backward regenerates the
// forward's mask, and the masks do not depend on how the batch is split over threads.
// p = 0 (the default, and always for evaluation): no dropout.
struct LoraDropout {
  float p = 0.0f;
  uint64_t stream = 0;  // a new stream per micro-step
  int64_t row0 = 0;     // global row of this forward's first row
};

// The adapters applied to one model, each with its user scale. linear() finds the terms of
// a weight from the weight itself (its data pointer), so the forward pass needs no change
// to run with adapters. The set refers to the model's weights: it must not outlive them.
class LoraSet {
 public:
  LoraSet() = default;
  LoraSet(const LoraSet&) = delete;  // terms point into owned_
  LoraSet& operator=(const LoraSet&) = delete;
  LoraSet(LoraSet&&) = default;  // moving a deque keeps its elements where they are
  LoraSet& operator=(LoraSet&&) = default;
  // Adds `adapter` at `scale` (1.0 = as trained); its weights must be the model's (as
  // validated by LoraAdapter::load against the same model).
  void add(std::shared_ptr<const LoraAdapter> adapter, float scale, const Model& model);

  // A trainable term on the base matrix whose data is `w_data`: the set keeps its own copies
  // of the four views (their memory belongs to the caller: a train::ParamStore).
  void add_trainable(const void* w_data, const Tensor& a, const Tensor& b, float scale,
                     const Tensor& grad_a, const Tensor& grad_b);

  // The terms to add to the product with weight data `w_data`; empty for unadapted weights.
  std::span<const LoraTerm> find(const void* w_data) const {
    const auto it = terms_.find(w_data);
    return it == terms_.end() ? std::span<const LoraTerm>() : std::span<const LoraTerm>(it->second);
  }
  bool empty() const { return adapters_.empty() && owned_.empty(); }
  // Dropout of the trainable terms (add_trainable), set by the training model per forward.
  LoraDropout dropout;
  size_t size() const { return adapters_.size(); }
  const LoraAdapter& adapter(size_t i) const { return *adapters_[i].first; }
  float scale(size_t i) const { return adapters_[i].second; }

 private:
  std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>> adapters_;
  std::unordered_map<const void*, std::vector<LoraTerm>> terms_;
  std::deque<Tensor> owned_;  // views of trainable terms (a deque: their addresses stay put)
};

// Merging (llama-export-lora): rows [row0, row0 + n_rows) of W' = W + Σ scale·B·A, in F32.
// `w` holds those rows of W dequantized, (n_rows, n_in), and is updated in place.
void add_lora_rows(float* w, int64_t row0, int64_t n_rows, int64_t n_in,
                   std::span<const LoraTerm> terms);

}  // namespace toy

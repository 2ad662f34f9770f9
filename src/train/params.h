// Trainable parameters: every tensor of the model (listed by the model's one
// visitor, for_each_tensor, under its GGUF name) laid out in one contiguous
// arena, with the gradients and the two AdamW moments in three more arenas of
// the same layout. `weights` and `grads` are ordinary Weights whose tensors
// view the arenas (F32, or F64 for double-precision gradient checks), so the
// forward reads parameters exactly as inference reads a loaded model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/optimizer.h"

namespace toy::train {

struct ParamTensor {
  TensorSpec spec;     // GGUF name and shape
  int64_t offset = 0;  // first element in each arena
  int64_t numel = 0;
  bool decay = false;  // AdamW weight decay applies (2-D weights only)
};

template <typename Real>
class ParamStore {
 public:
  // Takes every required tensor of `config`, and each optional one for which
  // include_optional(spec) says yes (untied output, q/k/v biases...). llama3's
  // rope_freqs is a constant of the model, not a parameter: when taken, it is an
  // F32 tensor in weights() (for either Real) outside tensors(), set by load_params.
  ParamStore(const ModelConfig& config,
             const std::function<bool(const TensorSpec&)>& include_optional);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const ParamTensor* find(std::string_view name) const;
  int64_t total() const { return total_; }

  Real* params() { return params_; }  // (total)
  Real* grads() { return grads_; }    // (total)
  Real* moment1() { return m_; }      // (total)
  Real* moment2() { return v_; }      // (total)
  const Real* params() const { return params_; }
  const Real* grads() const { return grads_; }

  Weights& weights() { return weights_; }            // views into params()
  Weights& grad_weights() { return grad_weights_; }  // the same layout over grads()
  const Weights& weights() const { return weights_; }

  void zero_grads();

  // Weights whose tensors view `base` (total() elements) in this store's layout:
  // extra gradient buffers for data-parallel replicas.
  Weights views_over(Real* base) const;

 private:
  ModelConfig config_;
  std::vector<ParamTensor> tensors_;
  int64_t total_ = 0;
  Arena arena_params_, arena_grads_, arena_m_, arena_v_;
  Real* params_ = nullptr;
  Real* grads_ = nullptr;
  Real* m_ = nullptr;
  Real* v_ = nullptr;
  Weights weights_, grad_weights_;
  std::vector<float> rope_freqs_;  // (n_rot/2) the constant weights_.rope_freqs views
};

// A gradient buffer with the layout of a store (one contiguous arena), for a
// data-parallel replica whose gradients are summed into the store's afterwards.
template <typename Real>
class GradBuffer {
 public:
  explicit GradBuffer(const ParamStore<Real>& store);
  Real* data() { return data_; }
  Weights& weights() { return weights_; }
  void zero();

 private:
  int64_t total_;
  Arena arena_;
  Real* data_;
  Weights weights_;
};

// Initialization from a seed (same seed → same bits): token embeddings N(0, 0.02),
// matrices N(0, init_scale/sqrt(fan_in)), norm weights 1, biases 0. Each tensor draws
// from its own stream seeded by (seed, tensor index), in visitor order.
template <typename Real>
void init_random(ParamStore<Real>& store, uint64_t seed, double init_scale);

// Copies every tensor of `source` (any stored type, dequantized) into the store;
// throws toy::Error naming a tensor whose shape differs.
template <typename Real>
void load_params(ParamStore<Real>& store, const ModelConfig& source_config, const Weights& source);

// One AdamW update of every tensor (decay on the 2-D ones) with the store's
// gradients at (1-based) step `step`.
// With a pool, each tensor's elements are split across its threads (elementwise: the
// result is the same for any thread count).
template <typename Real>
void adamw_step(ParamStore<Real>& store, const AdamWConfig& config, double lr, int64_t step,
                ThreadPool* pool = nullptr);

// Global L2 norm of all gradients, in fixed blocks summed in order (the same for any
// thread count).
template <typename Real>
double grad_norm(const ParamStore<Real>& store, ThreadPool& pool);

}  // namespace toy::train

// Trainable parameters: every tensor of the model (listed by the model's one
// visitor, for_each_tensor, under its GGUF name) laid out in one contiguous
// arena, with the gradients in one more arena of the same layout and the two AdamW
// moments in two more, of that layout or of one contiguous part of it (a rank's shard
// under ZeRO-1, train/data_parallel.h). `weights` and `grads` are ordinary Weights whose tensors
// view the arenas (F32, or F64 for double-precision gradient checks), so the
// forward reads parameters exactly as inference reads a loaded model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/arena.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/weights.h"
#include "train/optimizer.h"

namespace toy::train {

// A trainable LoRA term (toy finetune): tensors a and b of the store (indices into
// tensors()) adapt the base matrix whose data is base_data (model/lora.h).
struct LoraBinding {
  const void* base_data = nullptr;
  size_t a = 0, b = 0;
  float scale = 1.0f;  // alpha / r
};

struct ParamTensor {
  TensorSpec spec;     // GGUF name and shape
  int64_t offset = 0;  // first element in each arena
  int64_t numel = 0;
  bool decay = false;  // AdamW weight decay applies (2-D weights only)
};

// The tensor slots of `config` in visitor order: every required one, and each optional one
// for which include(spec) says yes.
std::vector<TensorSpec> model_specs(const ModelConfig& config,
                                    const std::function<bool(const TensorSpec&)>& include);

template <typename Real>
class ParamStore {
 public:
  // Takes every required tensor of `config`, and each optional one for which
  // include_optional(spec) says yes (untied output, q/k/v biases...). llama3's
  // rope_freqs is a constant of the model, not a parameter: when taken, it is an
  // F32 tensor in weights() (for either Real) outside tensors(), set by load_params.
  ParamStore(const ModelConfig& config,
             const std::function<bool(const TensorSpec&)>& include_optional);
  // Fine-tuning: the tensors `specs` are trained, everything else of the model is read from
  // `base` (any stored type, not copied; it must outlive the store). A spec whose name is a
  // model tensor replaces that slot of weights(); others (LoRA's .lora_a / .lora_b) are
  // reached by find() and bind_lora(). Without a base, weights() has only the store's tensors.
  ParamStore(const ModelConfig& config, const std::vector<TensorSpec>& specs, const Weights* base);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const ParamTensor* find(std::string_view name) const;
  int64_t total() const { return total_; }

  Real* params() { return params_; }  // (total)
  Real* grads() { return grads_; }    // (total)
  const Real* params() const { return params_; }
  const Real* grads() const { return grads_; }

  // The AdamW moments m and v of elements [moments_begin(), moments_end()) of the layout:
  // the whole store, or one rank's shard under ZeRO-1, so that a rank allocates only the
  // moments it updates. None until use_moments (the Trainer's, AdamW's or a checkpoint
  // load's) allocates them, zero; another range allocates them anew (zero).
  void use_moments(int64_t begin, int64_t end);
  bool has_moments() const { return m_ != nullptr; }
  int64_t moments_begin() const { return moments_begin_; }
  int64_t moments_end() const { return moments_end_; }
  Real* moment1() { return m_; }  // (moments_end − moments_begin), element moments_begin first
  Real* moment2() { return v_; }  // (moments_end − moments_begin)
  const Real* moment1() const { return m_; }
  const Real* moment2() const { return v_; }

  // What the forward reads: views into params(), and the base's tensors where the store
  // has none (fine-tuning).
  Weights& weights() { return weights_; }
  Weights& grad_weights() { return grad_weights_; }  // views into grads(); empty when frozen
  const Weights& weights() const { return weights_; }
  Tensor param_view(const ParamTensor& p) const;  // p's values in params()
  Tensor view_over(Real* base, const ParamTensor& p) const;

  // LoRA (train/finetune.h): tensors a_name and b_name of the store adapt the base matrix
  // at base_data with scale alpha / r.
  void bind_lora(const void* base_data, std::string_view a_name, std::string_view b_name,
                 float scale);
  const std::vector<LoraBinding>& lora() const { return lora_; }
  // The trainable adapters as linear() applies them, accumulating their gradients into
  // `grads` (total() elements in this store's layout); null when the store has none.
  std::unique_ptr<LoraSet> lora_over(Real* grads) const;

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
  int64_t moments_begin_ = 0, moments_end_ = 0;
  Weights weights_, grad_weights_;
  std::unordered_map<std::string, size_t> index_;  // tensor name -> position in tensors_
  std::vector<LoraBinding> lora_;
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

// n samples of N(0, std_dev²) from the stream `stream` (the same bits on every platform).
template <typename Real>
void fill_gaussian(Real* data, int64_t n, double std_dev, uint64_t stream);

// Initialization from a seed (same seed → same bits): token embeddings N(0, 0.02),
// matrices N(0, init_scale/sqrt(fan_in)), norm weights 1, biases 0. Each tensor draws
// from its own stream seeded by (seed, tensor index), in visitor order.
template <typename Real>
void init_random(ParamStore<Real>& store, uint64_t seed, double init_scale);
// The same for the store's tensor at `index` alone (a tensor added over a loaded base, as
// toy finetune's projection lens, starts exactly as toy train would start it).
template <typename Real>
void init_tensor(ParamStore<Real>& store, size_t index, uint64_t seed, double init_scale);

// Copies every tensor of `source` (any stored type, dequantized) into the store;
// throws toy::Error naming a tensor whose shape differs, a store tensor the source lacks,
// and (unless `subset`: a store that trains only some of the source's tensors) a source
// tensor the store lacks.
template <typename Real>
void load_params(ParamStore<Real>& store, const ModelConfig& source_config, const Weights& source,
                 bool subset = false);
// Copies `tensor` (any stored type, dequantized) into the store's tensor p; throws toy::Error
// naming `source` when the shapes differ or the type cannot be read.
template <typename Real>
void load_tensor(ParamStore<Real>& store, const ParamTensor& p, const Tensor& tensor,
                 const std::string& source);

// One AdamW update of every tensor (decay on the 2-D ones) with the store's
// gradients at (1-based) step `step`; the store's moments cover it whole (allocated here
// when it has none).
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

#include "train/params.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace toy::train {
namespace {

constexpr int64_t kAlignElements = 16;  // 64-byte aligned tensor starts for SIMD loads
constexpr std::string_view kRopeFreqs = "rope_freqs.weight";

int64_t round_up(int64_t n, int64_t m) {
  return (n + m - 1) / m * m;
}

template <typename Real>
Real* take(Arena& arena, int64_t count) {
  arena.reserve(static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(Real));
  arena.zero();
  return arena.take_array<Real>(static_cast<size_t>(std::max<int64_t>(count, 1)));
}

template <typename Real>
constexpr DType dtype_of() {
  return std::is_same_v<Real, float> ? DType::F32 : DType::F64;
}

Tensor view_of(DType type, void* data, const TensorSpec& spec) {
  Tensor t;
  switch (spec.n_dims) {
    case 1:
      t = Tensor::view(type, data, {spec.ne[0]});
      break;
    case 2:
      t = Tensor::view(type, data, {spec.ne[0], spec.ne[1]});
      break;
    case 3:
      t = Tensor::view(type, data, {spec.ne[0], spec.ne[1], spec.ne[2]});
      break;
    default:
      t = Tensor::view(type, data, {spec.ne[0], spec.ne[1], spec.ne[2], spec.ne[3]});
  }
  return t;
}

// Gaussian samples from a 64-bit Mersenne twister through Box–Muller, written
// out so the stream is the same on every standard library.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : engine_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (double(engine_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = double(engine_() >> 11) * 0x1.0p-53;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1));
    spare_ = radius * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return radius * std::cos(2.0 * M_PI * u2);
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<TensorSpec> model_specs(const ModelConfig& config,
                                    const std::function<bool(const TensorSpec&)>& include) {
  std::vector<TensorSpec> specs;
  Weights slots;
  slots.layers.resize(static_cast<size_t>(config.n_layer));
  for_each_tensor(config, slots, [&](const TensorSpec& spec, Tensor&) {
    if (spec.required || include(spec)) specs.push_back(spec);
  });
  return specs;
}

template <typename Real>
ParamStore<Real>::ParamStore(const ModelConfig& config,
                             const std::function<bool(const TensorSpec&)>& include_optional)
    : ParamStore(config, model_specs(config, include_optional), nullptr) {}

template <typename Real>
ParamStore<Real>::ParamStore(const ModelConfig& config, const std::vector<TensorSpec>& specs,
                             const Weights* base)
    : config_(config) {
  // Which tensors, where.
  bool rope_freqs = false;
  for (const TensorSpec& spec : specs) {
    if (spec.name == kRopeFreqs) {  // a constant of the model, not trained
      rope_freqs = true;
      continue;
    }
    TOY_CHECK(!index_.contains(spec.name), "tensor ", spec.name, " listed twice");
    ParamTensor p;
    p.spec = spec;
    p.numel = spec.ne[0] * spec.ne[1] * spec.ne[2] * spec.ne[3];
    p.offset = total_;
    p.decay = spec.n_dims >= 2;
    total_ += round_up(p.numel, kAlignElements);
    index_.emplace(spec.name, tensors_.size());
    tensors_.push_back(p);
  }
  params_ = take<Real>(arena_params_, total_);
  grads_ = take<Real>(arena_grads_, total_);
  // Point the Weights slots at the arenas, over the base's tensors.
  grad_weights_ = views_over(grads_);
  weights_ = views_over(params_);
  if (base) {
    Weights merged = *base;
    for_each_tensor(config_, merged, [&](const TensorSpec& spec, Tensor& tensor) {
      if (const ParamTensor* p = find(spec.name)) tensor = view_over(params_, *p);
    });
    weights_ = std::move(merged);
  }
  if (rope_freqs && !weights_.rope_freqs.data) {
    // F32 for either Real: the forward reads it as RoPE's frequency factors (1 until loaded).
    rope_freqs_.assign(static_cast<size_t>(config.rope.n_rot / 2), 1.0f);
    weights_.rope_freqs = Tensor::view(DType::F32, rope_freqs_.data(), {config.rope.n_rot / 2});
  }
}

template <typename Real>
void ParamStore<Real>::use_moments(int64_t begin, int64_t end) {
  TOY_CHECK(0 <= begin && begin <= end && end <= total_, "moments [", begin, ", ", end, ")");
  if (m_ && begin == moments_begin_ && end == moments_end_) return;
  m_ = take<Real>(arena_m_, end - begin);
  v_ = take<Real>(arena_v_, end - begin);
  moments_begin_ = begin;
  moments_end_ = end;
}

template <typename Real>
Tensor ParamStore<Real>::view_over(Real* base, const ParamTensor& p) const {
  return view_of(dtype_of<Real>(), base + p.offset, p.spec);
}

template <typename Real>
Tensor ParamStore<Real>::param_view(const ParamTensor& p) const {
  return view_over(params_, p);
}

template <typename Real>
Weights ParamStore<Real>::views_over(Real* base) const {
  Weights w;
  w.layers.resize(static_cast<size_t>(config_.n_layer));
  for_each_tensor(config_, w, [&](const TensorSpec& spec, Tensor& tensor) {
    if (const ParamTensor* p = find(spec.name)) tensor = view_over(base, *p);
  });
  return w;
}

template <typename Real>
void ParamStore<Real>::bind_lora(const void* base_data, std::string_view a_name,
                                 std::string_view b_name, float scale) {
  const ParamTensor* a = find(a_name);
  const ParamTensor* b = find(b_name);
  TOY_CHECK(base_data && a && b, "LoRA tensors ", a_name, " / ", b_name);
  lora_.push_back({base_data, static_cast<size_t>(a - tensors_.data()),
                   static_cast<size_t>(b - tensors_.data()), scale});
}

template <typename Real>
std::unique_ptr<LoraSet> ParamStore<Real>::lora_over(Real* grads) const {
  if (lora_.empty()) return nullptr;
  auto set = std::make_unique<LoraSet>();
  for (const LoraBinding& l : lora_) {
    const ParamTensor& a = tensors_[l.a];
    const ParamTensor& b = tensors_[l.b];
    set->add_trainable(l.base_data, param_view(a), param_view(b), l.scale, view_over(grads, a),
                       view_over(grads, b));
  }
  return set;
}

template <typename Real>
GradBuffer<Real>::GradBuffer(const ParamStore<Real>& store) : total_(store.total()) {
  data_ = take<Real>(arena_, total_);
  weights_ = store.views_over(data_);
}

template <typename Real>
void GradBuffer<Real>::zero() {
  std::memset(data_, 0, static_cast<size_t>(total_) * sizeof(Real));
}

template <typename Real>
const ParamTensor* ParamStore<Real>::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

template <typename Real>
void ParamStore<Real>::zero_grads() {
  std::memset(grads_, 0, static_cast<size_t>(total_) * sizeof(Real));
}

template <typename Real>
void fill_gaussian(Real* data, int64_t n, double std_dev, uint64_t stream) {
  Gaussian gaussian(stream);
  for (int64_t i = 0; i < n; ++i) data[i] = Real(gaussian.next() * std_dev);
}

template <typename Real>
void init_tensor(ParamStore<Real>& store, size_t index, uint64_t seed, double init_scale) {
  const ParamTensor& p = store.tensors()[index];
  Real* data = store.params() + p.offset;
  const std::string& name = p.spec.name;
  if (gdn_initial_value(name, 0, 1)) {  // a GDN layer's decay parameters (model/weights.h)
    for (int64_t i = 0; i < p.numel; ++i) data[i] = Real(*gdn_initial_value(name, i, p.numel));
    return;
  }
  if (ends_with(name, ".bias")) {
    std::fill(data, data + p.numel, Real(0));
    return;
  }
  if (p.spec.n_dims == 1) {  // norm weights
    std::fill(data, data + p.numel, Real(1));
    return;
  }
  // One stream per tensor: adding a tensor does not shift the others' values.
  const double std_dev =
      name == "token_embd.weight" ? 0.02 : init_scale / std::sqrt(double(p.spec.ne[0]));
  fill_gaussian(data, p.numel, std_dev, seed * 0x9E3779B97F4A7C15ull + index + 1);
}

template <typename Real>
void init_random(ParamStore<Real>& store, uint64_t seed, double init_scale) {
  for (size_t index = 0; index < store.tensors().size(); ++index)
    init_tensor(store, index, seed, init_scale);
}

template <typename Real>
void load_tensor(ParamStore<Real>& store, const ParamTensor& p, const Tensor& tensor,
                 const std::string& source) {
  for (int d = 0; d < 4; ++d)
    if (tensor.ne[d] != p.spec.ne[d])
      fail("tensor ", p.spec.name, " of ", source, ": expected shape ", p.spec.shape_string(),
           ", found ", tensor.shape_string());
  if (!quant::can_dequantize(tensor.type))
    fail("tensor ", p.spec.name, " of ", source, " has type ", dtype_name(tensor.type),
         ", which cannot be converted to F32 for training");
  const int64_t n = tensor.ne[0];
  std::vector<float> row(static_cast<size_t>(n));
  Real* dst = store.params() + p.offset;
  for (int64_t r = 0; r < tensor.rows(); ++r) {
    quant::dequantize_row(tensor.type, tensor.row(r), row.data(), n);
    for (int64_t i = 0; i < n; ++i) dst[r * n + i] = Real(row[i]);
  }
}

template <typename Real>
void load_params(ParamStore<Real>& store, const ModelConfig& source_config, const Weights& source,
                 bool subset) {
  std::vector<const ParamTensor*> loaded;
  for_each_tensor(source_config, source, [&](const TensorSpec& spec, const Tensor& tensor) {
    const ParamTensor* p = store.find(spec.name);
    if (spec.name == kRopeFreqs) {  // a constant of the model, kept when the store has it
      if (Tensor& freqs = store.weights().rope_freqs; freqs.data && freqs.data != tensor.data)
        quant::dequantize_row(tensor.type, tensor.row(0), freqs.ptr<float>(), freqs.ne[0]);
      return;
    }
    if (!p) {
      if (subset) return;
      fail("tensor ", spec.name, " of ", source_config.source,
           " is not a trainable tensor of this configuration");
    }
    load_tensor(store, *p, tensor, source_config.source);
    loaded.push_back(p);
  });
  for (const ParamTensor& p : store.tensors())
    if (std::find(loaded.begin(), loaded.end(), &p) == loaded.end())
      fail(source_config.source, ": tensor ", p.spec.name, " is missing");
}

template <typename Real>
void adamw_step(ParamStore<Real>& store, const AdamWConfig& config, double lr, int64_t step,
                ThreadPool* pool) {
  if (!store.has_moments()) store.use_moments(0, store.total());
  TOY_CHECK(store.moments_begin() == 0 && store.moments_end() == store.total(),
            "adamw_step over a store holding a shard of the moments");
  for (const ParamTensor& p : store.tensors()) {
    auto update = [&](int64_t begin, int64_t end) {
      const int64_t o = p.offset + begin;
      adamw_update(store.params() + o, store.grads() + o, store.moment1() + o, store.moment2() + o,
                   end - begin, config, lr, step, p.decay);
    };
    if (pool) {
      pool->parallel_for(p.numel, update, 16384);
    } else {
      update(0, p.numel);
    }
  }
}

template <typename Real>
double grad_norm(const ParamStore<Real>& store, ThreadPool& pool) {
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (store.total() + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  pool.parallel_for(blocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = b * kBlock, n = std::min(kBlock, store.total() - first);
      partial[b] = squared_norm(store.grads() + first, n);
    }
  });
  double sum = 0.0;
  for (double p : partial) sum += p;
  return std::sqrt(sum);
}

template class ParamStore<float>;
template class GradBuffer<float>;
template class GradBuffer<double>;
template class ParamStore<double>;
template void fill_gaussian<float>(float*, int64_t, double, uint64_t);
template void fill_gaussian<double>(double*, int64_t, double, uint64_t);
template void init_tensor<float>(ParamStore<float>&, size_t, uint64_t, double);
template void init_tensor<double>(ParamStore<double>&, size_t, uint64_t, double);
template void init_random<float>(ParamStore<float>&, uint64_t, double);
template void init_random<double>(ParamStore<double>&, uint64_t, double);
template void load_params<float>(ParamStore<float>&, const ModelConfig&, const Weights&, bool);
template void adamw_step<float>(ParamStore<float>&, const AdamWConfig&, double, int64_t,
                                ThreadPool*);
template void adamw_step<double>(ParamStore<double>&, const AdamWConfig&, double, int64_t,
                                 ThreadPool*);
template double grad_norm<float>(const ParamStore<float>&, ThreadPool&);
template double grad_norm<double>(const ParamStore<double>&, ThreadPool&);
template void load_tensor<float>(ParamStore<float>&, const ParamTensor&, const Tensor&,
                                 const std::string&);
template void load_params<double>(ParamStore<double>&, const ModelConfig&, const Weights&, bool);

}  // namespace toy::train

#include "model/lora.h"

#include <map>
#include <string_view>

#include "core/error.h"
#include "gguf/reader.h"
#include "quant/quant.h"

namespace toy {
namespace {

constexpr std::string_view kSuffixA = ".lora_a";
constexpr std::string_view kSuffixB = ".lora_b";

std::string shape_of(const gguf::TensorInfo& info) {
  std::string s = "[";
  for (int i = 0; i < info.n_dims; ++i) s += (i ? ", " : "") + std::to_string(info.ne[i]);
  return s + "]";
}

// The base matrices an adapter may name: every 2-D weight of the model that is multiplied
// through linear(). token_embd is excluded: its adapter is applied to looked-up rows with A
// and B flipped (llama.cpp's build_inp_embd), not to a product, and toy does not do that.
std::map<std::string, Tensor, std::less<>> adaptable_matrices(const Model& model,
                                                              std::map<std::string, int>* others) {
  std::map<std::string, Tensor, std::less<>> out;
  for_each_tensor(model.config, model.weights, [&](const TensorSpec& spec, const Tensor& t) {
    if (spec.n_dims == 2 && !spec.plain_f32 && spec.name != "token_embd.weight")
      out.emplace(spec.name, t);
    else
      (*others)[spec.name] = spec.n_dims;
  });
  return out;
}

// A tensor of the adapter as an owned F32 copy (A and B are small; any stored type is fine).
Tensor to_f32(const gguf::File& file, const gguf::TensorInfo& info) {
  if (!quant::can_dequantize(info.type))
    fail(file.path(), ": tensor ", info.name, " has type ", dtype_name(info.type),
         ", which this engine cannot read");
  if (info.n_dims != 2)
    fail(file.path(), ": tensor ", info.name, " has shape ", shape_of(info),
         ", expected a 2-D matrix");
  const Tensor src = file.tensor(info);
  Tensor out = Tensor::zeros(DType::F32, {info.ne[0], info.ne[1]});
  for (int64_t r = 0; r < info.ne[1]; ++r)
    quant::dequantize_row(info.type, src.row(r), out.ptr<float>() + r * info.ne[0], info.ne[0]);
  return out;
}

}  // namespace

LoraAdapter LoraAdapter::load(const std::string& path, const Model& base) {
  const auto file = gguf::File::open(path);
  const std::string type = file->get_string_or("general.type", "");
  if (type != "adapter")
    fail(path, ": general.type is '", type, "', expected 'adapter' (is this a model, not a ",
         "LoRA adapter?)");
  const std::string adapter_type = file->get_string_or("adapter.type", "");
  if (adapter_type != "lora") fail(path, ": adapter.type is '", adapter_type, "', expected 'lora'");
  const std::string arch = file->get_string_or("general.architecture", "");
  if (arch != base.config.arch().name)
    fail(path, ": adapter for architecture '", arch, "', but the model is '",
         base.config.arch().name, "'");

  LoraAdapter adapter;
  adapter.path = path;
  adapter.alpha = static_cast<float>(file->get_number_or("adapter.lora.alpha", 0.0));

  // Pair every .lora_a with its .lora_b by base name.
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>, std::less<>>
      pairs;
  for (const gguf::TensorInfo& info : file->tensors()) {
    const std::string_view name = info.name;
    if (name.ends_with(kSuffixA))
      pairs[std::string(name.substr(0, name.size() - kSuffixA.size()))].first = &info;
    else if (name.ends_with(kSuffixB))
      pairs[std::string(name.substr(0, name.size() - kSuffixB.size()))].second = &info;
    else
      fail(path, ": tensor ", name, " is not a LoRA tensor (expected names ending in ", kSuffixA,
           " or ", kSuffixB, ")");
  }
  if (pairs.empty()) fail(path, ": the adapter has no tensors");

  std::map<std::string, int> others;
  const auto matrices = adaptable_matrices(base, &others);
  const std::string model_path = base.file ? base.file->path() : std::string("the model");
  for (const auto& [name, ab] : pairs) {
    if (!ab.first || !ab.second)
      fail(path, ": tensor ", name, ab.first ? kSuffixA : kSuffixB, " has no matching ",
           ab.first ? kSuffixB : kSuffixA);
    const auto it = matrices.find(name);
    if (it == matrices.end()) {
      if (name == "token_embd.weight")
        fail(path, ": LoRA on token_embd.weight (the embedding lookup) is not supported");
      const auto other = others.find(name);
      if (other != others.end())
        fail(path, ": LoRA on ", name, " is not supported (", other->second,
             "-D tensor; adapters apply to 2-D weight matrices)");
      fail(path, ": adapter tensor ", name, kSuffixA, " names ", name, ", which ", model_path,
           " does not have (wrong base model?)");
    }
    const Tensor& w = it->second;  // ne = [n_in, n_out]
    const gguf::TensorInfo& a = *ab.first;
    const gguf::TensorInfo& b = *ab.second;
    if (a.n_dims != 2 || b.n_dims != 2 || a.ne[0] != w.ne[0] || b.ne[1] != w.ne[1] ||
        a.ne[1] != b.ne[0] || a.ne[1] <= 0)
      fail(path, ": tensor ", name, " has lora_a ", shape_of(a), " and lora_b ", shape_of(b),
           ", expected [", w.ne[0], ", r] and [r, ", w.ne[1], "] for the base matrix ",
           w.shape_string(), " (hint: A and B may be transposed)");
    adapter.weights.push_back({name, to_f32(*file, a), to_f32(*file, b)});
  }
  return adapter;
}

void LoraSet::add(std::shared_ptr<const LoraAdapter> adapter, float scale, const Model& model) {
  TOY_CHECK(adapter != nullptr, "null adapter");
  std::map<std::string, int> others;
  const auto matrices = adaptable_matrices(model, &others);
  adapters_.emplace_back(adapter, scale);
  for (const LoraWeight& w : adapter->weights) {
    const auto it = matrices.find(w.base_name);
    TOY_CHECK(it != matrices.end(), "adapter weight ", w.base_name, " is not a model matrix");
    TOY_CHECK(it->second.data != nullptr, "adapter weight ", w.base_name, " has no data");
    terms_[it->second.data].push_back({&w.a, &w.b, adapter->effective_scale(scale, w.rank())});
  }
}

void LoraSet::add_trainable(const void* w_data, const Tensor& a, const Tensor& b, float scale,
                            const Tensor& grad_a, const Tensor& grad_b) {
  TOY_CHECK(
      w_data && a.ne[1] == b.ne[0] && grad_a.numel() == a.numel() && grad_b.numel() == b.numel(),
      "trainable LoRA term ", a.shape_string(), " x ", b.shape_string());
  const Tensor* views[4];
  for (int i = 0; const Tensor* t : {&a, &b, &grad_a, &grad_b})
    views[i++] = &owned_.emplace_back(*t);
  terms_[w_data].push_back(
      {views[0], views[1], scale, views[2], views[3], static_cast<uint32_t>(owned_.size() / 4)});
}

void add_lora_rows(float* w, int64_t row0, int64_t n_rows, int64_t n_in,
                   std::span<const LoraTerm> terms) {
  for (const LoraTerm& term : terms) {
    const int64_t r = term.a->ne[1];
    TOY_CHECK(term.a->ne[0] == n_in && row0 + n_rows <= term.b->ne[1], "LoRA shapes");
    const float* a = term.a->ptr<const float>();  // (r, n_in)
    const float* b = term.b->ptr<const float>();  // (n_out, r)
    for (int64_t o = 0; o < n_rows; ++o) {
      float* row = w + o * n_in;
      const float* b_row = b + (row0 + o) * r;
      // Row o of B·A is Σ_k B[o][k]·A[k]: r scaled rows of A, accumulated with the scale
      // applied to the sum as llama-export-lora does (delta = scale·(B·A), then W + delta).
      for (int64_t i = 0; i < n_in; ++i) {
        float sum = 0.0f;
        for (int64_t k = 0; k < r; ++k) sum += b_row[k] * a[k * n_in + i];
        row[i] += term.scale * sum;
      }
    }
  }
}

}  // namespace toy

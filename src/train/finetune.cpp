#include "train/finetune.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "quant/quant.h"
#include "train/export.h"
#include "train/lens.h"

namespace toy::train {
namespace {

// PEFT's names for the llama family's projections, and the GGUF names they map to.
const std::map<std::string, std::string, std::less<>>& target_names() {
  static const std::map<std::string, std::string, std::less<>> names = {
      {"q", "attn_q"},          {"k", "attn_k"},           {"v", "attn_v"},
      {"o", "attn_output"},     {"gate", "ffn_gate"},      {"up", "ffn_up"},
      {"down", "ffn_down"},     {"q_proj", "attn_q"},      {"k_proj", "attn_k"},
      {"v_proj", "attn_v"},     {"o_proj", "attn_output"}, {"gate_proj", "ffn_gate"},
      {"up_proj", "ffn_up"},    {"down_proj", "ffn_down"}, {"attn_q", "attn_q"},
      {"attn_k", "attn_k"},     {"attn_v", "attn_v"},      {"attn_output", "attn_output"},
      {"ffn_gate", "ffn_gate"}, {"ffn_up", "ffn_up"},      {"ffn_down", "ffn_down"},
  };
  return names;
}

std::string block_tensor(int64_t il, const std::string& name) {
  return "blk." + std::to_string(il) + "." + name + ".weight";
}

}  // namespace

bool is_expert_or_router(std::string_view name) {
  for (const char* part :
       {".ffn_gate_inp.", ".ffn_gate_exps.", ".ffn_up_exps.", ".ffn_down_exps.",
        ".ffn_gate_inp_shexp.", ".ffn_gate_shexp.", ".ffn_up_shexp.", ".ffn_down_shexp."})
    if (name.find(part) != std::string_view::npos) return true;
  return false;
}

std::vector<std::string> parse_lora_targets(const std::string& list) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item == "all-linear" || item == "all") {
      for (const char* n :
           {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
        add(n);
    } else if (const auto it = target_names().find(item); it != target_names().end()) {
      add(it->second);
    } else {
      fail("--lora-targets: unknown target '", item,
           "'; use q, k, v, o, gate, up, down (or q_proj ... down_proj, attn_q ... ffn_down, "
           "all-linear), comma-separated");
    }
    start = comma + 1;
  }
  return out;
}

template <typename Real>
std::unique_ptr<ParamStore<Real>> make_lora_store(const ModelConfig& config, const Weights& base,
                                                  const LoraConfig& lora) {
  TOY_CHECK(lora.rank > 0, "LoRA rank ", lora.rank);
  // The targeted matrices of every block, in the visitor's order.
  struct Target {
    std::string name;
    const Tensor* weight;
  };
  std::vector<Target> targets;
  std::map<std::string, const Tensor*, std::less<>> matrices;
  for_each_tensor(config, base, [&](const TensorSpec& spec, const Tensor& t) {
    if (spec.n_dims == 2) matrices.emplace(spec.name, &t);
  });
  for (int64_t il = 0; il < config.n_layer; ++il)
    for (const std::string& target : lora.targets) {
      std::string name = block_tensor(il, target);
      if (config.is_gdn(il)) {
        // A gated delta-net layer's counterparts: the fused q|k|v projection and ssm_out.
        if (target == "attn_q" || target == "attn_k" || target == "attn_v")
          name = block_tensor(il, "attn_qkv");
        if (target == "attn_output") name = block_tensor(il, "ssm_out");
        const bool seen = std::any_of(targets.begin(), targets.end(),
                                      [&](const Target& t) { return t.name == name; });
        if (seen) continue;
      }
      const auto it = matrices.find(name);
      if (it == matrices.end())
        fail(config.source, ": --lora-targets names ", target, ", but the model has no ", name,
             config.is_moe() && target.starts_with("ffn_")
                 ? " (a mixture-of-experts model: adapt the attention projections)"
                 : "");
      targets.push_back({name, it->second});
    }
  std::vector<TensorSpec> specs;
  for (const Target& t : targets) {
    const int64_t n_in = t.weight->ne[0], n_out = t.weight->ne[1];
    if (lora.rank > std::min(n_in, n_out))
      fail("--lora-rank ", lora.rank, " is larger than the matrix ", t.name, " ",
           t.weight->shape_string(), " allows");
    TensorSpec a{t.name + ".lora_a", 2, {n_in, lora.rank, 1, 1}};
    TensorSpec b{t.name + ".lora_b", 2, {lora.rank, n_out, 1, 1}};
    specs.push_back(a);
    specs.push_back(b);
  }
  auto store = std::make_unique<ParamStore<Real>>(config, specs, &base);
  const float scale = static_cast<float>(lora.alpha / double(lora.rank));
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    store->bind_lora(t.weight->data, specs[2 * i].name, specs[2 * i + 1].name, scale);
    // A ~ N(0, 1/r), one stream per matrix; B stays zero (the arena starts zeroed).
    const ParamTensor& a = *store->find(specs[2 * i].name);
    fill_gaussian(store->params() + a.offset, a.numel, 1.0 / double(lora.rank),
                  lora.seed * 0x9E3779B97F4A7C15ull + i + 1);
  }
  return store;
}

void write_lora_adapter(const std::string& path, const ParamStore<float>& store,
                        const ModelConfig& config, double alpha, const std::string& name) {
  using gguf::Value;
  gguf::Writer writer;
  writer.set("general.architecture", Value::string(std::string(config.arch().name)));
  writer.set("general.type", Value::string("adapter"));
  writer.set("general.name", Value::string(name));
  writer.set("adapter.type", Value::string("lora"));
  writer.set("adapter.lora.alpha", Value::f32(static_cast<float>(alpha)));
  for (const ParamTensor& p : store.tensors()) {
    TOY_CHECK(p.spec.n_dims == 2, "adapter tensor ", p.spec.name);
    writer.add_tensor(p.spec.name, DType::F32, {p.spec.ne[0], p.spec.ne[1]},
                      static_cast<const void*>(store.params() + p.offset));
  }
  writer.write(path);
}

std::vector<TensorSpec> full_finetune_specs(const Model& base, bool train_embeddings,
                                            bool train_experts) {
  std::vector<TensorSpec> specs;
  for_each_tensor(base.config, base.weights, [&](const TensorSpec& spec, const Tensor& t) {
    if (!quant::can_dequantize(t.type))
      fail(base.config.source, ": tensor ", spec.name, " has type ", dtype_name(t.type),
           ", which cannot be converted to F32 for training");
    // A mixture of experts keeps its experts and router frozen unless asked
    // (train/moe_backward.h).
    const bool block =
        spec.name.starts_with("blk.") && (train_experts || !is_expert_or_router(spec.name));
    const bool global = spec.name == "token_embd.weight" || spec.name == "output_norm.weight" ||
                        spec.name == "output.weight";
    if (block || (train_embeddings && global)) specs.push_back(spec);
  });
  return specs;
}

std::unique_ptr<ParamStore<float>> make_full_store(const Model& base, bool train_embeddings,
                                                   bool train_experts) {
  const std::vector<TensorSpec> specs = full_finetune_specs(base, train_embeddings, train_experts);
  auto store = std::make_unique<ParamStore<float>>(base.config, specs, &base.weights);
  load_params(*store, base.config, base.weights, /*subset=*/true);
  return store;
}

DType written_type(const std::string& name, int64_t ne0, DType base_type,
                   std::optional<DType> out_type) {
  const DType type = out_type.value_or(base_type);
  if (!quant::can_quantize(type))
    fail("tensor ", name, ": toy cannot write type ", dtype_name(type),
         out_type ? "" : " (the base's type); choose another with --out-type");
  const int64_t block = dtype_info(type).block_size;
  if (ne0 % block != 0)
    fail("tensor ", name, ": rows of ", ne0, " values do not fit ", dtype_name(type), " blocks of ",
         block, "; choose another --out-type");
  return type;
}

void check_written_types(const ParamStore<float>& store, const Model& base,
                         std::optional<DType> out_type) {
  TOY_CHECK(base.file != nullptr, "check_written_types needs a file-backed base");
  const bool lens = store.config().n_embd_lens > 0;
  for (const gguf::TensorInfo& info : base.file->tensors()) {
    const std::string name(info.name);
    const ParamTensor* p = store.find(name);
    // What write_finetuned_model converts: trained matrices, and under a lens the folded
    // token_embd (a new head has its rows: n_embd values).
    const bool converted =
        (lens && name == "token_embd.weight") || (p && info.n_dims >= 2 && !p->spec.plain_f32);
    if (converted) written_type(name, info.ne[0], info.type, out_type);
  }
}

void write_finetuned_model(const std::string& path, const ParamStore<float>& store,
                           const Model& base, std::optional<DType> out_type, ThreadPool& pool,
                           const std::function<void(gguf::Writer&)>& tokenizer_metadata) {
  TOY_CHECK(base.file != nullptr, "write_finetuned_model needs a file-backed base");
  const gguf::File& file = *base.file;
  const ModelConfig& c = store.config();
  const bool lens = c.n_embd_lens > 0;
  gguf::Writer writer;
  gguf::copy_metadata(file, writer);
  if (out_type) writer.set("general.file_type", gguf::Value::u32(file_type_of(*out_type)));
  if (lens) {
    // The donor's vocabulary is the model's now: none of the base's tokenizer keys may stay
    // (a BPE base's merges under an SPM donor), and the size follows the donor.
    TOY_CHECK(static_cast<bool>(tokenizer_metadata), "a lens export needs the donor's vocabulary");
    for (size_t i = 0; i < file.metadata_count(); ++i)
      if (const std::string_view key = file.metadata(i).key(); key.starts_with("tokenizer."))
        writer.remove(std::string(key));
    tokenizer_metadata(writer);
    writer.set(std::string(c.arch().name) + ".vocab_size",
               gguf::Value::u32(static_cast<uint32_t>(c.n_vocab)));
  }
  // A trained tensor (F32 rows in the store's layout) converted to its written type.
  auto add_trained = [&](const std::string& name, std::vector<int64_t> ne, DType type,
                         const float* data, int64_t numel) {
    const int64_t n = ne[0], rows = numel / n;
    const auto row_size = static_cast<size_t>(row_bytes(type, n));
    writer.add_tensor(name, type, std::move(ne), [=, &pool](uint8_t* dst) {
      pool.parallel_for(
          rows,
          [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r)
              quant::quantize_row(type, data + r * n, dst + static_cast<size_t>(r) * row_size, n);
          },
          16);
    });
  };
  // Under a lens: the output head, trained (then in --out-type or `base_type`, the type of the
  // base tensor it came from or replaces) or the base's kept head as stored.
  auto add_head = [&](DType base_type) {
    const std::string name = "output.weight";
    if (const ParamTensor* p = store.find(name)) {
      add_trained(name, {c.n_embd, c.n_vocab}, written_type(name, c.n_embd, base_type, out_type),
                  store.params() + p->offset, p->numel);
    } else {
      const Tensor& head = store.weights().output;  // the base's output (or tied token_embd)
      writer.add_tensor(name, head.type, {c.n_embd, c.n_vocab}, head.data);
    }
  };
  std::vector<float> folded;  // (V, n_embd) the lens folded into token_embd
  for (const gguf::TensorInfo& info : file.tensors()) {
    const std::string name(info.name);
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    if (lens && name == "token_embd.weight") {
      folded = fold_lens(store);
      add_trained(name, {c.n_embd, c.n_vocab}, written_type(name, c.n_embd, info.type, out_type),
                  folded.data(), static_cast<int64_t>(folded.size()));
      // A tied base's head was this table; it stays the base's, now as output.weight.
      if (!file.find_tensor("output.weight")) add_head(info.type);
      continue;
    }
    if (lens && name == "output.weight") {
      add_head(info.type);
      continue;
    }
    const ParamTensor* p = store.find(name);
    if (!p) {
      writer.add_tensor(name, info.type, std::move(ne), file.tensor(info).data);
      continue;
    }
    // Vectors (norms, biases) and plain-F32 kernels (a GDN layer's conv) stay in their type
    // (F32 in llama.cpp's files); matrices take --out-type or the base's type.
    const DType type = info.n_dims >= 2 && !p->spec.plain_f32
                           ? written_type(name, info.ne[0], info.type, out_type)
                           : info.type;
    add_trained(name, std::move(ne), type, store.params() + p->offset, p->numel);
  }
  writer.write(path);
}

template std::unique_ptr<ParamStore<float>> make_lora_store<float>(const ModelConfig&,
                                                                   const Weights&,
                                                                   const LoraConfig&);
template std::unique_ptr<ParamStore<double>> make_lora_store<double>(const ModelConfig&,
                                                                     const Weights&,
                                                                     const LoraConfig&);

}  // namespace toy::train

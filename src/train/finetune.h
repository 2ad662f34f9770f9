// Fine-tuning an existing model (toy finetune): what is trained, over which
// frozen base, and how the result is written.
//
//  - LoRA (Hu et al. 2021): for each targeted base matrix W (ne = [n_in, n_out]) the
//    store holds `<W's name>.lora_a` ne = [n_in, r] and `.lora_b` ne = [r, n_out], bound
//    to W so that linear() adds (alpha/r)·B·(A·x) (model/lora.h). The base stays in its
//    mapping in its stored type (F32, F16, BF16, Q8_0, Q4_0, K-quants ...): only the
//    adapters, their gradients and moments are allocated. A ~ N(0, 1/r) (PEFT's
//    init_lora_weights="gaussian"), B = 0, so step 0 is the base bit for bit.
//    Written as llama.cpp's adapter GGUF.
//  - Full: every block tensor (and with train_embeddings the token embeddings, final
//    norm and output) becomes an F32 master copy dequantized from the base; the rest
//    is read from the base as stored. Written as a standard GGUF of the base's layout.
//  - Full under a projection lens (--donor-embeddings, train/lens.h): as full, with a donor's
//    vocabulary and frozen token table as the input, written with the lens folded.
//
// A mixture-of-experts model trains with its experts, router and shared expert frozen
// by default (train/moe_backward.h): LoRA adapts the attention projections (the dense
// FFN names do not exist there) and --full leaves those tensors out unless asked to
// train them too (train_experts).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "train/params.h"

namespace toy::train {

// --lora-targets: PEFT's short names (q, k, v, o, gate, up, down), their module names
// (q_proj ... down_proj), GGUF names (attn_q ... ffn_down) or all-linear, comma-separated;
// returns the GGUF names (attn_q ...) in that order, without repeats. toy::Error otherwise.
std::vector<std::string> parse_lora_targets(const std::string& list);

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16.0;
  std::vector<std::string> targets{"attn_q", "attn_v"};  // GGUF matrix names of each block
  uint64_t seed = 1337;
};

// The adapters of `config` over `base` (which must outlive the store), initialized.
// Throws toy::Error when a target does not exist in the model or the rank does not fit.
template <typename Real>
std::unique_ptr<ParamStore<Real>> make_lora_store(const ModelConfig& config, const Weights& base,
                                                  const LoraConfig& lora);

// Writes the adapters of `store` as llama.cpp's LoRA GGUF (general.type = adapter,
// adapter.type = lora, adapter.lora.alpha, general.architecture of the base), F32 tensors.
void write_lora_adapter(const std::string& path, const ParamStore<float>& store,
                        const ModelConfig& config, double alpha, const std::string& name);

// Full fine-tuning: an F32 copy of every block tensor (and with `train_embeddings`
// token_embd, output_norm and output) of `base`, the rest read from `base` in place.
// Experts and routers (is_expert_or_router) stay frozen in the base unless `train_experts`.
std::unique_ptr<ParamStore<float>> make_full_store(const Model& base, bool train_embeddings,
                                                   bool train_experts = false);
// The base tensors make_full_store trains (toy::Error naming one whose type cannot be read).
std::vector<TensorSpec> full_finetune_specs(const Model& base, bool train_embeddings,
                                            bool train_experts);

// A mixture-of-experts tensor training keeps frozen: a router (ffn_gate_inp), an expert
// stack (ffn_{gate,up,down}_exps) or Qwen2-MoE's shared expert and its gate (*_shexp).
bool is_expert_or_router(std::string_view name);

// Writes the fine-tuned model: every tensor and metadata key of the base file, the trained
// tensors from `store` converted to `out_type` where given (matrices only; vectors stay F32)
// or else to the base tensor's own type. The base must be a file-backed model.
// A lens store (make_lens_store, train/lens.h) is written folded: token_embd.weight
// [n_embd, V] = proj · donor table, output.weight the kept or new head (a tied base's kept
// head is written as output.weight: token_embd is no longer its table), no lens.proj; the
// base's tokenizer.* keys are replaced by those `tokenizer_metadata` sets (the donor's), and
// <arch>.vocab_size becomes V. A standard GGUF.
void write_finetuned_model(const std::string& path, const ParamStore<float>& store,
                           const Model& base, std::optional<DType> out_type, ThreadPool& pool,
                           const std::function<void(gguf::Writer&)>& tokenizer_metadata = {});

// Throws the toy::Error write_finetuned_model would throw for a tensor it cannot write in
// --out-type (or the base's type), so that a run is refused before it trains, not at the end.
void check_written_types(const ParamStore<float>& store, const Model& base,
                         std::optional<DType> out_type);

// The type a trained or merged matrix `name` of row length ne0 is written in: `out_type`,
// else `base_type`; toy::Error when toy cannot write it or the rows do not fit its blocks.
DType written_type(const std::string& name, int64_t ne0, DType base_type,
                   std::optional<DType> out_type);

}  // namespace toy::train

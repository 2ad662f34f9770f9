#include "train/lens.h"

#include <cstring>
#include <map>
#include <set>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/features.h"
#include "kernels/matmul.h"
#include "quant/quant.h"
#include "train/finetune.h"

namespace toy::train {

bool same_vocabulary(const tokenizer::Vocab& a, const tokenizer::Vocab& b) {
  // A vocabulary of bare ids (tokenizer.ggml.model none) has no token list to compare.
  if (!a.has_text() || !b.has_text() || a.size() != b.size()) return false;
  for (int32_t id = 0; id < a.size(); ++id)
    if (a.token(id).text != b.token(id).text) return false;
  return true;
}

std::vector<float> fold_lens(const ParamStore<float>& store) {
  const ModelConfig& c = store.config();
  const Weights& w = store.weights();
  TOY_CHECK(c.n_embd_lens > 0 && w.lens_proj.data, "fold_lens without a lens");
  const int64_t V = c.n_vocab, D = c.n_embd_lens, E = c.n_embd;
  std::vector<float> donor(static_cast<size_t>(V * D));  // (V, D)
  for (int64_t v = 0; v < V; ++v)
    quant::dequantize_row(w.token_embd.type, w.token_embd.row(v), donor.data() + v * D, D);
  std::vector<float> folded(static_cast<size_t>(V * E));  // (V, E)
  ThreadPool pool(default_thread_count());
  matmul(folded.data(), donor.data(), w.lens_proj, V, Compute{pool, cpu::host_backend()},
         MatmulMode::Train);
  return folded;
}

LensStore make_lens_store(const Model& base, const Tensor& donor_table, bool keep_base_head,
                          bool train_embeddings, bool train_experts, uint64_t seed) {
  const int64_t D = donor_table.ne[0], V = donor_table.ne[1];
  TOY_CHECK(!keep_base_head || V == base.config.n_vocab, "the base's head reads ",
            base.config.n_vocab, " tokens, the donor has ", V);
  ModelConfig config = base.config;
  config.n_vocab = V;
  config.n_embd_lens = D;
  config.has_vocab = true;

  LensStore out;
  const bool base_tied = base.weights.output.data == nullptr;
  out.head = !keep_base_head ? LensHead::New : base_tied ? LensHead::BaseTied : LensHead::Base;
  const bool train_head = out.head == LensHead::New || train_embeddings;

  // What trains: the full fine-tune's base tensors without the input table (the donor's
  // replaces it) and head (decided here), the lens, and the head when it trains.
  std::set<std::string, std::less<>> trained;
  for (const TensorSpec& spec : full_finetune_specs(base, train_embeddings, train_experts))
    if (spec.name != "token_embd.weight" && spec.name != "output.weight") trained.insert(spec.name);
  trained.insert("lens.proj.weight");
  if (train_head) trained.insert("output.weight");
  // In the visitor's order, with the lens configuration's shapes (output.weight [n_embd, V]).
  std::vector<TensorSpec> specs;
  for (TensorSpec& spec : model_specs(config, [](const TensorSpec&) { return true; }))
    if (trained.contains(spec.name)) specs.push_back(std::move(spec));

  // The frozen rest: the base as stored, the donor's table as the input, and the kept head
  // (a tied base's head is its own token_embd, which the donor's table no longer stands for).
  Weights frozen = base.weights;
  frozen.token_embd = donor_table;
  frozen.output = keep_base_head ? base.weights.output_matrix() : Tensor{};
  out.store = std::make_unique<ParamStore<float>>(config, specs, &frozen);
  ParamStore<float>& store = *out.store;

  std::map<std::string, Tensor, std::less<>> base_tensors;
  for_each_tensor(base.config, base.weights,
                  [&](const TensorSpec& spec, const Tensor& t) { base_tensors[spec.name] = t; });
  for (size_t i = 0; i < store.tensors().size(); ++i) {
    const ParamTensor& p = store.tensors()[i];
    if (p.spec.name == "lens.proj.weight") {
      init_tensor(store, i, seed, 1.0);
    } else if (p.spec.name == "output.weight") {
      if (keep_base_head) load_tensor(store, p, base.weights.output_matrix(), config.source);
    } else {
      load_tensor(store, p, base_tensors.at(p.spec.name), config.source);
    }
  }
  if (out.head == LensHead::New) {
    // output.weight ne = [n_embd, V] is V rows of n_embd: the folded table's layout.
    const std::vector<float> folded = fold_lens(store);
    const ParamTensor& head = *store.find("output.weight");
    TOY_CHECK(static_cast<int64_t>(folded.size()) == head.numel, "folded table size");
    std::memcpy(store.params() + head.offset, folded.data(), folded.size() * sizeof(float));
  }
  return out;
}

}  // namespace toy::train

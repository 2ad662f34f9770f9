// The projection lens (toy train / toy finetune --donor-embeddings): a donor model's frozen
// token table [d_donor, V] (GGUF ne; V rows of d_donor) is the input, a trained
// `lens.proj.weight` ne = [d_donor, n_embd] maps each row into the model's width before the
// first block (ModelConfig::n_embd_lens; the forward's embed, the backward in train/model.cpp),
// and the donor's vocabulary becomes the model's. A written model folds the lens:
// token_embd[v] = proj · donor[v] (train/export.h, write_finetuned_model); checkpoints keep
// it unfolded.
//
// Under fine-tuning (make_lens_store) the base keeps its blocks and gets the donor's input.
// Its output head reads the base's vocabulary, so it is kept only when the donor's vocabulary
// is the base's (same_vocabulary); otherwise the head is a new trainable F32 output.weight
// [n_embd, V] that starts as the folded table, i.e. tied to the lens input at step 0 (the
// usual tied start: the logit of v is the hidden state's dot product with v's own input
// embedding), and is untied from then on so that it can learn the base's output geometry.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/model.h"
#include "tokenizer/vocab.h"
#include "train/params.h"

namespace toy::train {

// Whether two vocabularies have the same tokens under the same ids (the texts: a head trained
// for one reads the other's ids as the same tokens). A vocabulary of bare ids
// (tokenizer.ggml.model none) has no tokens to compare: never the same.
bool same_vocabulary(const tokenizer::Vocab& a, const tokenizer::Vocab& b);

// The lens folded into the table it reads: (V, n_embd) row v = proj · donor[v], with the
// product the training forward uses (MatmulMode::Train), for the store's current lens.
std::vector<float> fold_lens(const ParamStore<float>& store);

// What the output head of a base fine-tuned under a lens is.
enum class LensHead {
  Base,      // the base's output.weight (the donor's vocabulary is the base's)
  BaseTied,  // the base is tied: its token_embd, now read as output.weight (same vocabulary)
  New,       // a new trainable output.weight starting as the folded table (another vocabulary)
};

struct LensStore {
  std::unique_ptr<ParamStore<float>> store;
  LensHead head = LensHead::New;
};

// toy finetune --full --donor-embeddings: the base's block tensors (experts and routers only
// with train_experts) as F32 master copies, the donor's table `donor_table` [d_donor, V]
// frozen in its stored type (it must outlive the store, as the base), and lens.proj.weight
// initialized as toy train does (init_tensor with `seed`, scale 1). With `keep_base_head`
// (the caller found same_vocabulary; V must be the base's) the base's head is kept: frozen in
// its stored type, or with `train_embeddings` an F32 copy trained with output_norm.weight.
// Otherwise a new output.weight (always trained) starts as fold_lens. The donor's table
// itself never trains: it is the frozen input the lens reads.
LensStore make_lens_store(const Model& base, const Tensor& donor_table, bool keep_base_head,
                          bool train_embeddings, bool train_experts, uint64_t seed);

}  // namespace toy::train

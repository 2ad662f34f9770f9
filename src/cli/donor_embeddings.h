// --donor-embeddings DONOR.gguf, the projection lens of `toy train` and `toy finetune`
// (train/lens.h): the donor opened once and checked, its vocabulary (the output model's:
// the data is tokenized with it and the written file carries it) and its frozen token table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gguf/writer.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"

namespace toy::cli {

struct DonorEmbeddings {
  std::string path;
  Model model;  // stays mapped while training: the lens reads its table
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;

  const Tensor& table() const { return model.weights.token_embd; }  // [d_donor, n_vocab]
  int64_t width() const { return table().ne[0]; }                   // d_donor
  int64_t n_vocab() const { return table().ne[1]; }
  // Sets the donor's tokenizer.* keys on an output file.
  void write_tokenizer(gguf::Writer& writer) const;
  // What a checkpoint must match on --resume: the file, its size and width.
  std::pair<std::string, std::string> run_entry() const;
};

// Opens the donor: a GGUF model with a text vocabulary (tokenizer.ggml.model) whose
// token_embd.weight has a row per token. toy::Error naming --donor-embeddings otherwise.
DonorEmbeddings load_donor_embeddings(const std::string& path);

// "CMD: projection lens from DONOR: its V-token vocabulary and frozen D-wide embeddings,
// mapped into n_embd by lens.proj.weight" on stderr.
void print_lens(const std::string& command, const DonorEmbeddings& donor, int64_t n_embd);

}  // namespace toy::cli

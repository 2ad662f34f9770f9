#include "cli/donor_embeddings.h"

#include <cstdio>

#include "core/error.h"
#include "train/export.h"

namespace toy::cli {

void DonorEmbeddings::write_tokenizer(gguf::Writer& writer) const {
  train::copy_tokenizer_metadata(*model.file, writer);
}

std::pair<std::string, std::string> DonorEmbeddings::run_entry() const {
  return {"donor-embeddings",
          str(path, " (", model.file->file_size(), " bytes, ", width(), " wide)")};
}

namespace {

// The donor's own errors (not a GGUF, a missing tensor) say which flag named the file.
Model load_donor_model(const std::string& path) {
  try {
    return Model::load(path);
  } catch (const Error& e) {
    fail("--donor-embeddings: ", e.what());
  }
}

}  // namespace

DonorEmbeddings load_donor_embeddings(const std::string& path) {
  DonorEmbeddings donor{path, load_donor_model(path), nullptr};
  // Read from the file already opened and validated, not mapped a second time.
  donor.tokenizer = tokenizer::Tokenizer::from_gguf(*donor.model.file);
  if (!donor.tokenizer->has_text())
    fail("--donor-embeddings ", path, ": the model has no vocabulary (tokenizer.ggml.model)");
  if (donor.n_vocab() != donor.tokenizer->n_vocab())
    fail("--donor-embeddings ", path, ": token_embd.weight has ", donor.n_vocab(),
         " rows but the vocabulary has ", donor.tokenizer->n_vocab(), " tokens");
  return donor;
}

void print_lens(const std::string& command, const DonorEmbeddings& donor, int64_t n_embd) {
  std::fprintf(stderr,
               "%s: projection lens from %s: its %lld-token vocabulary and frozen %lld-wide "
               "embeddings, mapped into %lld by lens.proj.weight\n",
               command.c_str(), donor.path.c_str(), static_cast<long long>(donor.n_vocab()),
               static_cast<long long>(donor.width()), static_cast<long long>(n_embd));
}

}  // namespace toy::cli

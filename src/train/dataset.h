// Token data for language-model training: one token stream split into a
// training head and a held-out validation tail, random (seeded) batches of
// B windows of T+1 tokens from the head, and fixed windows over the tail.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace toy::train {

struct Batch {
  std::vector<int32_t> tokens;   // (B, T) inputs
  std::vector<int32_t> targets;  // (B, T) next tokens
};

class Dataset {
 public:
  // Splits `tokens` at (1 − val_fraction); each part must hold at least one window
  // of T+1 tokens (toy::Error naming `source` and the sizes otherwise).
  Dataset(std::vector<int32_t> tokens, double val_fraction, int64_t n_pos,
          const std::string& source);

  int64_t train_tokens() const { return split_; }
  int64_t val_tokens() const { return static_cast<int64_t>(tokens_.size()) - split_; }
  // Non-overlapping windows of T+1 tokens in the validation tail.
  int64_t val_windows() const;

  // B windows starting at uniformly random offsets of the training part.
  void sample_train(Batch& batch, int64_t n_seq, std::mt19937_64& rng) const;
  // Validation windows [first, first+B) (windows past the end are ignored rows: targets −1).
  void val_batch(Batch& batch, int64_t n_seq, int64_t first_window) const;

 private:
  std::vector<int32_t> tokens_;
  int64_t split_ = 0;
  int64_t T_ = 0;
};

}  // namespace toy::train

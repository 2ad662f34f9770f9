// Token data for language-model training, in one of two shapes:
//
//  - a token stream (plain text): split into a training head and a held-out
//    validation tail; training batches are B windows of T+1 tokens at random
//    (seeded) offsets of the head, validation reads fixed windows of the tail;
//  - examples (JSON lines, train/sft_data.h): each example is its tokens and a
//    loss mask; the last examples are held out. Every example becomes its own
//    row of T positions, or with `pack` several share one row under a
//    block-causal mask (segment ids, positions restarting per example).
//    Training batches are B rows drawn at random, validation reads them in order.
//
// A row of T positions holds the inputs t[0..n-2] of an example of n tokens and
// the targets t[1..n-1] (-1 where the loss mask is off), so an example takes
// n-1 positions and no target crosses from one example into the next.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace toy::train {

struct Batch {
  std::vector<int32_t> tokens;     // (B, T) inputs
  std::vector<int32_t> targets;    // (B, T) next tokens; -1: no loss at this position
  std::vector<int32_t> positions;  // (B, T) RoPE positions: 0.. within each example
  // (B, T) the example of each position within its row, for the block-causal mask
  // (kernels/attention_backward.h); -1 on padding. Empty when rows are not packed:
  // then every row is one sequence under the plain causal mask.
  std::vector<int32_t> segment;
};

// One fine-tuning example.
struct Example {
  std::vector<int32_t> tokens;  // (n)
  std::vector<uint8_t> loss;    // (n) 1: token i is a target (predicted at position i-1)
};

// How a set of examples was laid out in rows (for messages).
struct RowStats {
  int64_t examples = 0;   // kept
  int64_t truncated = 0;  // longer than T+1 tokens: cut to T+1
  int64_t dropped = 0;    // no token left with loss (or fewer than 2 tokens)
  int64_t rows = 0;
};

// How much of the data is held out for validation: the last `count` tokens of a stream
// or the last `count` examples.
struct HeldOut {
  int64_t count = 0;
};

class Dataset {
 public:
  // A token stream. Splits `tokens` at (1 − val_fraction); each part must hold at least one
  // window of T+1 tokens (toy::Error naming `source` and the sizes otherwise).
  Dataset(std::vector<int32_t> tokens, double val_fraction, int64_t n_pos,
          const std::string& source);
  // Examples: the last floor(n · val_fraction) are held out (at least one must be when
  // val_fraction > 0). Examples longer than T+1 tokens are truncated; examples left without a
  // target are dropped. toy::Error naming `source` when either part ends up empty.
  Dataset(const std::vector<Example>& examples, double val_fraction, int64_t n_pos, bool pack,
          const std::string& source);
  // The same with an explicit held-out tail (--val-data: a separate file appended to the
  // training data).
  Dataset(std::vector<int32_t>&& tokens, HeldOut held_out, int64_t n_pos,
          const std::string& source);
  Dataset(const std::vector<Example>& examples, HeldOut held_out, int64_t n_pos, bool pack,
          const std::string& source);

  bool has_examples() const { return examples_; }
  bool packed() const { return pack_; }
  const RowStats& train_stats() const { return train_stats_; }
  const RowStats& val_stats() const { return val_stats_; }

  // Tokens in each part (of the examples kept, for examples).
  int64_t train_tokens() const;
  int64_t val_tokens() const;
  // Validation batches read windows (stream) or rows (examples) 0, 1, ...
  int64_t val_windows() const;

  // B windows starting at uniformly random offsets of the training part, or B random rows.
  void sample_train(Batch& batch, int64_t n_seq, std::mt19937_64& rng) const;
  // Validation windows [first, first+B) (windows past the end are ignored rows: targets −1).
  void val_batch(Batch& batch, int64_t n_seq, int64_t first_window) const;

 private:
  // Rows of T positions, laid out like Batch (segment empty unless packed).
  struct Rows {
    std::vector<int32_t> tokens, targets, positions, segment;  // (n_rows, T)
    int64_t n_rows = 0;
    int64_t n_tokens = 0;
  };
  Rows make_rows(const std::vector<Example>& examples, size_t begin, size_t end,
                 RowStats& stats) const;
  void copy_row(Batch& batch, int64_t b, const Rows& rows, int64_t row) const;
  void resize(Batch& batch, int64_t n_seq) const;

  std::vector<int32_t> tokens_;  // stream
  int64_t split_ = 0;            // stream: first held-out token
  Rows train_rows_, val_rows_;   // examples
  RowStats train_stats_, val_stats_;
  bool examples_ = false;
  bool pack_ = false;
  int64_t T_ = 0;
};

}  // namespace toy::train

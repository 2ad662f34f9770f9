#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace toy::train {

Dataset::Dataset(std::vector<int32_t> tokens, double val_fraction, int64_t n_pos,
                 const std::string& source)
    : tokens_(std::move(tokens)), T_(n_pos) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    fail("--val-fraction must be in [0, 1), got ", val_fraction);
  const int64_t n = static_cast<int64_t>(tokens_.size());
  split_ = n - static_cast<int64_t>(std::floor(double(n) * val_fraction));
  if (split_ < T_ + 1)
    fail(source, ": the training part has ", split_, " tokens, fewer than one window of --ctx ", T_,
         " + 1; use a larger file or a smaller --ctx");
  if (val_fraction > 0.0 && val_tokens() < T_ + 1)
    fail(source, ": the validation part has ", val_tokens(),
         " tokens, fewer than one window of --ctx ", T_,
         " + 1; raise --val-fraction or lower --ctx");
}

int64_t Dataset::val_windows() const {
  return val_tokens() > T_ ? (val_tokens() - 1) / T_ : 0;
}

void Dataset::sample_train(Batch& batch, int64_t n_seq, std::mt19937_64& rng) const {
  batch.tokens.resize(static_cast<size_t>(n_seq * T_));
  batch.targets.resize(static_cast<size_t>(n_seq * T_));
  const uint64_t n_offsets = static_cast<uint64_t>(split_ - T_);  // offsets 0 .. split-T-1
  for (int64_t b = 0; b < n_seq; ++b) {
    // rng() % n has a negligible bias for these sizes and, unlike
    // std::uniform_int_distribution, the same stream on every standard library.
    const int64_t start = static_cast<int64_t>(rng() % n_offsets);
    std::copy_n(tokens_.begin() + start, T_, batch.tokens.begin() + b * T_);
    std::copy_n(tokens_.begin() + start + 1, T_, batch.targets.begin() + b * T_);
  }
}

void Dataset::val_batch(Batch& batch, int64_t n_seq, int64_t first_window) const {
  batch.tokens.assign(static_cast<size_t>(n_seq * T_), 0);
  batch.targets.assign(static_cast<size_t>(n_seq * T_), -1);
  for (int64_t b = 0; b < n_seq; ++b) {
    const int64_t w = first_window + b;
    if (w >= val_windows()) continue;
    const int64_t start = split_ + w * T_;
    std::copy_n(tokens_.begin() + start, T_, batch.tokens.begin() + b * T_);
    std::copy_n(tokens_.begin() + start + 1, T_, batch.targets.begin() + b * T_);
  }
}

}  // namespace toy::train

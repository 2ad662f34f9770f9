#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>

#include "core/error.h"

namespace toy::train {

namespace {

double checked_fraction(double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    fail("--val-fraction must be in [0, 1), got ", val_fraction);
  return val_fraction;
}

HeldOut held_out(size_t n, double val_fraction) {
  return {static_cast<int64_t>(std::floor(double(n) * checked_fraction(val_fraction)))};
}

HeldOut held_out_examples(size_t n, double val_fraction, const std::string& source) {
  const HeldOut held = held_out(n, val_fraction);
  if (val_fraction > 0.0 && held.count == 0)
    fail(source, ": ", n, " examples hold out none at --val-fraction ", val_fraction,
         "; raise --val-fraction (or 0 for no validation) or add examples");
  return held;
}

}  // namespace

Dataset::Dataset(std::vector<int32_t> tokens, double val_fraction, int64_t n_pos,
                 const std::string& source)
    : Dataset(std::move(tokens), held_out(tokens.size(), val_fraction), n_pos, source) {}

Dataset::Dataset(std::vector<int32_t>&& tokens, HeldOut held_out, int64_t n_pos,
                 const std::string& source)
    : tokens_(std::move(tokens)), T_(n_pos) {
  const int64_t n = static_cast<int64_t>(tokens_.size());
  TOY_CHECK(held_out.count >= 0 && held_out.count <= n, "held-out tokens ", held_out.count);
  split_ = n - held_out.count;
  if (split_ < T_ + 1)
    fail(source, ": the training part has ", split_, " tokens, fewer than one window of --ctx ", T_,
         " + 1; use a larger file or a smaller --ctx");
  if (held_out.count > 0 && val_tokens() < T_ + 1)
    fail(source, ": the validation part has ", val_tokens(),
         " tokens, fewer than one window of --ctx ", T_,
         " + 1; use more validation text or a smaller --ctx");
}

Dataset::Dataset(const std::vector<Example>& examples, double val_fraction, int64_t n_pos,
                 bool pack, const std::string& source)
    : Dataset(examples, held_out_examples(examples.size(), val_fraction, source), n_pos, pack,
              source) {}

Dataset::Dataset(const std::vector<Example>& examples, HeldOut held, int64_t n_pos, bool pack,
                 const std::string& source)
    : examples_(true), pack_(pack), T_(n_pos) {
  const size_t n = examples.size();
  TOY_CHECK(held.count >= 0 && static_cast<size_t>(held.count) <= n, "held-out examples ",
            held.count);
  const auto n_val = static_cast<size_t>(held.count);
  train_rows_ = make_rows(examples, 0, n - n_val, train_stats_);
  val_rows_ = make_rows(examples, n - n_val, n, val_stats_);
  if (train_rows_.n_rows == 0)
    fail(source, ": no training example has a token to learn (", train_stats_.dropped,
         " dropped: fewer than 2 tokens, or no completion / assistant token within --ctx ", T_,
         " + 1)");
  if (n_val > 0 && val_rows_.n_rows == 0)
    fail(source, ": no held-out example has a token to learn (", val_stats_.dropped, " dropped)");
}

// Lays the examples [begin, end) out in rows of T positions: one per row, or
// packed by best-fit decreasing (each example, longest first, goes to the row
// whose free space fits it most tightly), which wastes little space and does
// not depend on the order of the file.
Dataset::Rows Dataset::make_rows(const std::vector<Example>& examples, size_t begin, size_t end,
                                 RowStats& stats) const {
  struct Item {
    size_t example;
    int64_t length;  // positions: tokens − 1 after truncation
  };
  std::vector<Item> items;
  for (size_t e = begin; e < end; ++e) {
    const Example& ex = examples[e];
    TOY_CHECK(ex.tokens.size() == ex.loss.size(), "example ", e, ": ", ex.tokens.size(),
              " tokens but ", ex.loss.size(), " mask entries");
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(ex.tokens.size()), T_ + 1);
    stats.truncated += static_cast<int64_t>(ex.tokens.size()) > T_ + 1;
    // Token 0 is never a target: it has no position before it.
    if (n < 2 || std::find(ex.loss.begin() + 1, ex.loss.begin() + n, 1) == ex.loss.begin() + n) {
      ++stats.dropped;
      continue;
    }
    items.push_back({e, n - 1});
  }
  stats.examples = static_cast<int64_t>(items.size());

  std::vector<std::vector<Item>> layout;  // the examples of each row, in order
  if (pack_) {
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& a, const Item& b) { return a.length > b.length; });
    std::multimap<int64_t, size_t> free_space;  // free positions -> row
    for (const Item& item : items) {
      auto it = free_space.lower_bound(item.length);
      size_t row;
      int64_t left;
      if (it == free_space.end()) {
        row = layout.size();
        layout.emplace_back();
        left = T_ - item.length;
      } else {
        row = it->second;
        left = it->first - item.length;
        free_space.erase(it);
      }
      layout[row].push_back(item);
      if (left > 0) free_space.emplace(left, row);
    }
  } else {
    for (const Item& item : items) layout.push_back({item});
  }

  Rows rows;
  rows.n_rows = static_cast<int64_t>(layout.size());
  const size_t size = layout.size() * static_cast<size_t>(T_);
  rows.tokens.assign(size, 0);
  rows.targets.assign(size, -1);
  rows.positions.assign(size, 0);
  if (pack_) rows.segment.assign(size, -1);
  for (size_t r = 0; r < layout.size(); ++r) {
    const size_t base = r * static_cast<size_t>(T_);
    int64_t p = 0;
    for (size_t s = 0; s < layout[r].size(); ++s) {
      const Item& item = layout[r][s];
      const Example& ex = examples[item.example];
      for (int64_t i = 0; i < item.length; ++i, ++p) {
        const size_t at = base + static_cast<size_t>(p);
        rows.tokens[at] = ex.tokens[i];
        rows.targets[at] = ex.loss[i + 1] ? ex.tokens[i + 1] : -1;
        rows.positions[at] = static_cast<int32_t>(i);
        if (pack_) rows.segment[at] = static_cast<int32_t>(s);
      }
      rows.n_tokens += item.length + 1;
    }
    // Padding: no target. Packed, it is a sequence of its own (segment -1); otherwise it
    // continues the row's one sequence, which no earlier position can see.
    for (int64_t i = 0; p < T_; ++p, ++i)
      rows.positions[base + static_cast<size_t>(p)] = static_cast<int32_t>(pack_ ? i : p);
  }
  stats.rows = rows.n_rows;
  return rows;
}

int64_t Dataset::train_tokens() const {
  return examples_ ? train_rows_.n_tokens : split_;
}

int64_t Dataset::val_tokens() const {
  return examples_ ? val_rows_.n_tokens : static_cast<int64_t>(tokens_.size()) - split_;
}

int64_t Dataset::val_windows() const {
  if (examples_) return val_rows_.n_rows;
  return val_tokens() > T_ ? (val_tokens() - 1) / T_ : 0;
}

void Dataset::resize(Batch& batch, int64_t n_seq) const {
  const size_t size = static_cast<size_t>(n_seq * T_);
  batch.tokens.resize(size);
  batch.targets.resize(size);
  batch.positions.resize(size);
  if (pack_) {
    batch.segment.resize(size);
  } else {
    batch.segment.clear();
  }
}

void Dataset::copy_row(Batch& batch, int64_t b, const Rows& rows, int64_t row) const {
  const auto from = static_cast<std::ptrdiff_t>(row * T_);
  const auto to = static_cast<std::ptrdiff_t>(b * T_);
  std::copy_n(rows.tokens.begin() + from, T_, batch.tokens.begin() + to);
  std::copy_n(rows.targets.begin() + from, T_, batch.targets.begin() + to);
  std::copy_n(rows.positions.begin() + from, T_, batch.positions.begin() + to);
  if (pack_) std::copy_n(rows.segment.begin() + from, T_, batch.segment.begin() + to);
}

void Dataset::sample_train(Batch& batch, int64_t n_seq, std::mt19937_64& rng) const {
  resize(batch, n_seq);
  if (examples_) {
    // rng() % n has a negligible bias for these sizes and, unlike
    // std::uniform_int_distribution, the same stream on every standard library.
    for (int64_t b = 0; b < n_seq; ++b)
      copy_row(batch, b, train_rows_,
               static_cast<int64_t>(rng() % static_cast<uint64_t>(train_rows_.n_rows)));
    return;
  }
  const uint64_t n_offsets = static_cast<uint64_t>(split_ - T_);  // offsets 0 .. split-T-1
  for (int64_t b = 0; b < n_seq; ++b) {
    const int64_t start = static_cast<int64_t>(rng() % n_offsets);
    std::copy_n(tokens_.begin() + start, T_, batch.tokens.begin() + b * T_);
    std::copy_n(tokens_.begin() + start + 1, T_, batch.targets.begin() + b * T_);
    std::iota(batch.positions.begin() + b * T_, batch.positions.begin() + (b + 1) * T_, 0);
  }
}

void Dataset::val_batch(Batch& batch, int64_t n_seq, int64_t first_window) const {
  resize(batch, n_seq);
  std::fill(batch.tokens.begin(), batch.tokens.end(), 0);
  std::fill(batch.targets.begin(), batch.targets.end(), -1);
  std::fill(batch.segment.begin(), batch.segment.end(), -1);
  for (int64_t b = 0; b < n_seq; ++b)
    std::iota(batch.positions.begin() + b * T_, batch.positions.begin() + (b + 1) * T_, 0);
  for (int64_t b = 0; b < n_seq; ++b) {
    const int64_t w = first_window + b;
    if (w >= val_windows()) continue;
    if (examples_) {
      copy_row(batch, b, val_rows_, w);
      continue;
    }
    const int64_t start = split_ + w * T_;
    std::copy_n(tokens_.begin() + start, T_, batch.tokens.begin() + b * T_);
    std::copy_n(tokens_.begin() + start + 1, T_, batch.targets.begin() + b * T_);
  }
}

}  // namespace toy::train

#include "infer/batch_decode.h"

#include <algorithm>

#include "core/error.h"
#include "infer/session.h"

namespace toy {
namespace {

int64_t context_length(const Model& model, int64_t n_ctx) {
  const int64_t n = n_ctx > 0 ? n_ctx : std::min(model.config.n_ctx_train, kDefaultMaxContext);
  if (n <= 0) fail("context length must be positive, got ", n);
  return n;
}

}  // namespace

BatchDecoder::BatchDecoder(const Model& model, const Compute& compute,
                           const BatchDecoderOptions& options)
    : model_(model),
      compute_(compute),
      options_(options),
      n_ctx_(context_length(model, options.n_ctx)),
      max_batch_(std::clamp<int64_t>(options.max_batch, 1, n_ctx_)),
      scratch_(model.config, std::max<int64_t>(max_batch_, options.n_slots), n_ctx_,
               options.kv_type, compute.size()) {
  if (options.n_slots < 1) fail("the number of parallel sequences must be at least 1");
  scratch_.attention = options.attention;
  caches_.reserve(static_cast<size_t>(options.n_slots));
  cached_.resize(static_cast<size_t>(options.n_slots));
  for (int s = 0; s < options.n_slots; ++s) {
    caches_.emplace_back(model.config, n_ctx_, options.kv_type);
    cached_[static_cast<size_t>(s)].reserve(static_cast<size_t>(n_ctx_));
  }
  logits_.resize(static_cast<size_t>(options.n_slots * model.config.n_vocab));
  rows_.resize(static_cast<size_t>(options.n_slots));
}

void BatchDecoder::check_slot(int slot) const {
  TOY_CHECK(slot >= 0 && slot < n_slots(), "slot ", slot, " of ", n_slots());
}

std::span<const int32_t> BatchDecoder::tokens(int slot) const {
  check_slot(slot);
  return cached_[static_cast<size_t>(slot)];
}

int64_t BatchDecoder::common_prefix(int slot, std::span<const int32_t> prompt) const {
  const std::span<const int32_t> have = tokens(slot);
  const auto end = std::mismatch(have.begin(), have.end(), prompt.begin(), prompt.end());
  const int64_t common = static_cast<int64_t>(end.first - have.begin());
  // A hybrid's recurrent state holds every cached position: it can be continued (the
  // whole cache is a prefix of a longer prompt) or started over, never cut back.
  if (caches_[static_cast<size_t>(slot)].recurrent())
    return common == static_cast<int64_t>(have.size()) &&
                   common < static_cast<int64_t>(prompt.size())
               ? common
               : 0;
  return common;
}

void BatchDecoder::truncate(int slot, int64_t n) {
  check_slot(slot);
  std::vector<int32_t>& have = cached_[static_cast<size_t>(slot)];
  if (n < 0 || n > static_cast<int64_t>(have.size()))
    fail("cannot keep ", n, " positions of a sequence of ", have.size());
  if (caches_[static_cast<size_t>(slot)].recurrent() && n != 0 &&
      n != static_cast<int64_t>(have.size()))
    fail("cannot keep ", n, " of ", have.size(),
         " positions: the gated delta-net layers' recurrent state cannot be rewound");
  have.resize(static_cast<size_t>(n));  // the cache rows past n are overwritten as it refills
}

std::span<const float> BatchDecoder::prefill(int slot, std::span<const int32_t> tokens) {
  check_slot(slot);
  if (tokens.empty()) fail("prefill needs at least one token");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab())
      fail("token id ", tokens[i], " (at index ", i, ") is outside the vocabulary [0, ", n_vocab(),
           ")");
  }
  std::vector<int32_t>& have = cached_[static_cast<size_t>(slot)];
  if (static_cast<int64_t>(have.size() + tokens.size()) > n_ctx_)
    fail("context length exceeded: ", have.size(), " tokens in the cache + ", tokens.size(),
         " new > ", n_ctx_);
  const LinearContext ctx{compute_, options_.mode, options_.lora};
  const size_t chunk = static_cast<size_t>(max_batch_);
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    const auto part = tokens.subspan(begin, std::min(chunk, tokens.size() - begin));
    forward(model_, part, static_cast<int64_t>(have.size()),
            caches_[static_cast<size_t>(slot)].layers(), scratch_, LogitRows::Last, logits_.data(),
            ctx);
    have.insert(have.end(), part.begin(), part.end());
  }
  return std::span<const float>(logits_).first(static_cast<size_t>(n_vocab()));
}

std::span<const float> BatchDecoder::decode(std::span<const int> slots,
                                            std::span<const int32_t> tokens) {
  TOY_CHECK(!slots.empty() && slots.size() == tokens.size() &&
                static_cast<int>(slots.size()) <= n_slots(),
            "decode step of ", slots.size(), " slots and ", tokens.size(), " tokens");
  for (size_t i = 0; i < slots.size(); ++i) {
    const int s = slots[i];
    check_slot(s);
    for (size_t j = 0; j < i; ++j) TOY_CHECK(slots[j] != s, "slot ", s, " twice in one step");
    const int64_t pos = n_past(s);
    if (pos >= n_ctx_) fail("context length exceeded: slot ", s, " holds ", pos, " tokens");
    rows_[i] = {caches_[static_cast<size_t>(s)].layers(), pos};
  }
  // A slot's tokens must not depend on which other slots decode beside it.
  Compute decode_compute = compute_;
  decode_compute.batch_invariant_rows = true;
  const LinearContext ctx{decode_compute, options_.mode, options_.lora};
  forward_rows(model_, tokens, std::span<const SequenceRow>(rows_).first(slots.size()), scratch_,
               logits_.data(), ctx);
  for (size_t i = 0; i < slots.size(); ++i)
    cached_[static_cast<size_t>(slots[i])].push_back(tokens[i]);
  return std::span<const float>(logits_).first(slots.size() * static_cast<size_t>(n_vocab()));
}

}  // namespace toy

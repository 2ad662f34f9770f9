#include "infer/session.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/features.h"

namespace toy {
namespace {

int64_t context_length(const Model& model, const SessionOptions& options) {
  const int64_t n =
      options.n_ctx > 0 ? options.n_ctx : std::min(model.config.n_ctx_train, kDefaultMaxContext);
  if (n <= 0) fail("context length must be positive, got ", n);
  return n;
}

}  // namespace

Session::Session(const Model& model, ThreadPool& pool, const SessionOptions& options)
    : Session(model, Compute{pool, cpu::host_backend()}, options) {}

Session::Session(const Model& model, const Compute& compute, const SessionOptions& options)
    : model_(model),
      compute_(compute),
      options_(options),
      cache_(model.config, context_length(model, options), options.kv_type),
      scratch_(model.config, std::clamp<int64_t>(options.max_batch, 1, cache_.n_ctx()),
               cache_.n_ctx(), options.kv_type, compute.size()),
      logits_(static_cast<size_t>(model.config.n_vocab)) {
  scratch_.attention = options.attention;
  scratch_.chunked_delta_rule = options.chunked_delta_rule;
}

void Session::check_tokens(std::span<const int32_t> tokens) const {
  if (tokens.empty()) fail("prefill needs at least one token");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab())
      fail("token id ", tokens[i], " (at index ", i, ") is outside the vocabulary [0, ", n_vocab(),
           ")");
  }
  check_room(static_cast<int64_t>(tokens.size()));
}

void Session::check_room(int64_t n) const {
  if (n_past_ + n > cache_.n_ctx())
    fail("context length exceeded: ", n_past_, " tokens in the cache + ", n, " new > ",
         cache_.n_ctx(), " (set a larger context with -c, up to the model's ",
         model_.config.n_ctx_train, ")");
}

std::span<const float> Session::prefill(std::span<const int32_t> tokens) {
  check_tokens(tokens);
  const LinearContext ctx{compute_, options_.mode, options_.lora};
  const size_t chunk = static_cast<size_t>(scratch_.max_tokens());
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    const auto part = tokens.subspan(begin, std::min(chunk, tokens.size() - begin));
    forward(model_, part, n_past_, cache_.layers(), scratch_, LogitRows::Last, logits_.data(), ctx);
    n_past_ += static_cast<int64_t>(part.size());
  }
  return logits_;
}

void Session::prefill_all(std::span<const int32_t> tokens, float* out) {
  check_tokens(tokens);
  const LinearContext ctx{compute_, options_.mode, options_.lora};
  const size_t chunk = static_cast<size_t>(scratch_.max_tokens());
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    const auto part = tokens.subspan(begin, std::min(chunk, tokens.size() - begin));
    forward(model_, part, n_past_, cache_.layers(), scratch_, LogitRows::All,
            out + static_cast<int64_t>(begin) * n_vocab(), ctx);
    n_past_ += static_cast<int64_t>(part.size());
  }
  if (tokens.size() > 0)
    std::copy_n(out + static_cast<int64_t>(tokens.size() - 1) * n_vocab(), n_vocab(),
                logits_.begin());
}

void Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_) fail("cannot keep ", n, " positions of a sequence of ", n_past_);
  if (cache_.recurrent() && n != 0 && n != n_past_) {
    if (n != marked_)
      fail("cannot keep ", n, " of ", n_past_,
           " positions: the gated delta-net layers' recurrent state cannot be rewound (keep 0 "
           "or all of them, or mark() the position first)");
    cache_.restore_recurrent(recurrent_);
  }
  // A mark past the kept positions saved a state of tokens that are now gone: whatever
  // refills those positions, that state is not theirs.
  if (n < marked_) marked_ = -1;
  n_past_ = n;
}

void Session::mark() {
  marked_ = n_past_;
  if (cache_.recurrent()) cache_.save_recurrent(recurrent_);
}

std::span<const float> Session::decode(int32_t token) {
  return prefill(std::span<const int32_t>(&token, 1));
}

}  // namespace toy

#include "kernels/embedding_backward.h"

#include <algorithm>

#include "core/error.h"

namespace toy {

template <typename Real>
void embedding_forward_train(Real* out, const Real* table, const int32_t* tokens, int64_t n_tokens,
                             int64_t n_embd, int64_t n_vocab) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (tokens[t] < 0 || tokens[t] >= n_vocab)
      fail("token id ", tokens[t], " at position ", t, " is outside the vocabulary [0, ", n_vocab,
           ")");
    const Real* row = table + int64_t(tokens[t]) * n_embd;
    std::copy(row, row + n_embd, out + t * n_embd);
  }
}

template <typename Real>
void embedding_backward(Real* dtable, const Real* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    Real* row = dtable + int64_t(tokens[t]) * n_embd;
    const Real* d = dout + t * n_embd;
    for (int64_t i = 0; i < n_embd; ++i) row[i] += d[i];
  }
}

template void embedding_forward_train<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                             int64_t);
template void embedding_forward_train<double>(double*, const double*, const int32_t*, int64_t,
                                              int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t);

}  // namespace toy

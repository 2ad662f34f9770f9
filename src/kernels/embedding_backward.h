// Token embedding lookup for training and its backward (a scatter-add of the
// output gradient rows into the rows of the table that were read).
#pragma once

#include <cstdint>

namespace toy {

// out (n_tokens, n_embd) = table[tokens[t]]; table (n_vocab, n_embd). Token ids
// are checked against n_vocab (toy::Error naming the bad id).
template <typename Real>
void embedding_forward_train(Real* out, const Real* table, const int32_t* tokens, int64_t n_tokens,
                             int64_t n_embd, int64_t n_vocab);

// dtable[tokens[t]] += dout[t].
template <typename Real>
void embedding_backward(Real* dtable, const Real* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd);

}  // namespace toy

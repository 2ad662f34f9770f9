#include "kernels/moe.h"

#include "core/error.h"
#include "kernels/activations.h"

namespace toy {

void moe_route(int32_t* ids, float* weights, float* logits, int64_t T, int64_t n_expert, int64_t k,
               bool renormalize) {
  TOY_CHECK(k > 0 && k <= n_expert, "top-", k, " of ", n_expert, " experts");
  for (int64_t t = 0; t < T; ++t) {
    float* p = logits + t * n_expert;
    softmax(p, n_expert);
    int32_t* row_ids = ids + t * k;
    float* row_w = weights + t * k;
    // Selection by repeated arg-max: k is small (<= 8 in practice).
    for (int64_t s = 0; s < k; ++s) {
      int32_t best = -1;
      for (int32_t e = 0; e < n_expert; ++e) {
        bool taken = false;
        for (int64_t r = 0; r < s; ++r) taken |= row_ids[r] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;
      }
      row_ids[s] = best;
      row_w[s] = p[best];
    }
    if (renormalize) {
      double sum = 0.0;
      for (int64_t s = 0; s < k; ++s) sum += row_w[s];
      for (int64_t s = 0; s < k; ++s) row_w[s] = static_cast<float>(row_w[s] / sum);
    }
  }
}

}  // namespace toy

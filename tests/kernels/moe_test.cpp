// moe_route: softmax over all experts, top-k in descending order, optional renormalisation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/moe.h"

namespace toy {
namespace {

TEST(MoeRoute, TopKOfSoftmax) {
  // Two positions, four experts, top-2.
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f,  //
                               3.0f, 0.0f, 3.5f,  -2.0f};
  const std::vector<float> in = logits;
  std::vector<int32_t> ids(4);
  std::vector<float> w(4);
  moe_route(ids.data(), w.data(), logits.data(), 2, 4, 2, /*renormalize=*/false);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 2, 0}));
  for (int t = 0; t < 2; ++t) {
    double sum = 0;
    for (int e = 0; e < 4; ++e) sum += std::exp(double(in[t * 4 + e]));
    for (int s = 0; s < 2; ++s)
      EXPECT_NEAR(w[t * 2 + s], std::exp(double(in[t * 4 + ids[t * 2 + s]])) / sum, 1e-6);
  }
}

TEST(MoeRoute, RenormalisedWeightsSumToOne) {
  std::vector<float> logits = {0.3f, -0.2f, 1.1f, 0.7f, 0.0f, 2.0f, -3.0f, 0.5f};
  std::vector<int32_t> ids(3);
  std::vector<float> w(3);
  moe_route(ids.data(), w.data(), logits.data(), 1, 8, 3, /*renormalize=*/true);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 2, 3}));
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0f, 1e-6);
  // Ratios are those of the raw probabilities: exp(l_a - l_b).
  EXPECT_NEAR(w[0] / w[1], std::exp(2.0 - 1.1), 1e-5);
  EXPECT_NEAR(w[1] / w[2], std::exp(1.1 - 0.7), 1e-5);
}

TEST(MoeRoute, TiesGoToTheLowerExpert) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  moe_route(ids.data(), w.data(), logits.data(), 1, 3, 2, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1}));
}

}  // namespace
}  // namespace toy

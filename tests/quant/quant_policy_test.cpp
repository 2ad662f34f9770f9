// The per-tensor type policy of `toy quantize`: llama.cpp's K-quant mixtures and its
// fallback for rows that do not fit a 256 block (end-to-end checks against llama.cpp's
// q4_k_m file are in tests/cli/quantize_test.cpp).
#include "quant/quant_policy.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace toy::quant {
namespace {

TEST(QuantPolicy, FittingRowsKeepTheWantedType) {
  for (DType type : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(fitting_type(type, 512), type);
  EXPECT_EQ(fitting_type(DType::Q8_0, 96), DType::Q8_0);
  EXPECT_EQ(fitting_type(DType::F16, 7), DType::F16);
}

TEST(QuantPolicy, KQuantsFallBackToBlock32TypesLikeLlamaCpp) {
  // SmolLM2-135M's n_embd 576 = 2.25 blocks of 256, 18 blocks of 32.
  EXPECT_EQ(fitting_type(DType::Q4_K, 576), DType::Q5_0);
  EXPECT_EQ(fitting_type(DType::Q5_K, 576), DType::Q5_1);
  EXPECT_EQ(fitting_type(DType::Q6_K, 576), DType::Q8_0);
  EXPECT_EQ(fitting_type(DType::Q2_K, 576), DType::Q4_0);  // llama.cpp: IQ4_NL
  EXPECT_EQ(fitting_type(DType::Q3_K, 576), DType::Q4_0);
}

TEST(QuantPolicy, NothingFitsWhenTheFallbackDoesNotFitEither) {
  EXPECT_EQ(fitting_type(DType::Q4_K, 172), std::nullopt);
  EXPECT_EQ(fitting_type(DType::Q6_K, 100), std::nullopt);
  EXPECT_EQ(fitting_type(DType::Q8_0, 172), std::nullopt);  // not a K-quant: no fallback
  EXPECT_EQ(fitting_type(DType::Q4_0, 48), std::nullopt);
}

TEST(QuantPolicy, Q4KMGivesMoreBitsToUseMoreBitsLayers) {
  // 30 layers (SmolLM2-135M): the first 3, the last 4 (>= 7*30/8 = 26) and every third from
  // layer 3 + 2 get Q6_K for attn_v and ffn_down.
  const ModelLayout layout{30, 0, true};
  const std::set<int> more_bits = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29};
  for (int layer = 0; layer < 30; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    const DType expected = more_bits.count(layer) ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, blk + "attn_v.weight", 576, layout), expected)
        << layer;
    EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, blk + "ffn_down.weight", 1536, layout),
              expected)
        << layer;
    EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, blk + "attn_q.weight", 576, layout),
              DType::Q4_K);
    EXPECT_EQ(mixture_type(Mix::kQ5_K_M, DType::Q5_K, blk + "ffn_down.weight", 1536, layout),
              more_bits.count(layer) ? DType::Q6_K : DType::Q5_K);
  }
}

TEST(QuantPolicy, OutputAndTiedEmbeddings) {
  const ModelLayout separate{2, 0, true};
  const ModelLayout tied{2, 0, false};
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "output.weight", 256, separate), DType::Q6_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "token_embd.weight", 256, separate),
            DType::Q4_K);
  // Tied: the embedding is the output projection, and 576-wide rows go straight to Q8_0.
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "token_embd.weight", 256, tied), DType::Q6_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "token_embd.weight", 576, tied), DType::Q8_0);
  EXPECT_EQ(mixture_type(Mix::kQ5_K_S, DType::Q5_K, "output.weight", 256, separate), DType::Q6_K);
  // Pure: no exceptions.
  EXPECT_EQ(mixture_type(Mix::kPure, DType::Q4_K, "output.weight", 256, separate), DType::Q4_K);
}

TEST(QuantPolicy, Q4KSAndEightExpertRules) {
  const ModelLayout dense{32, 0, true};
  EXPECT_EQ(mixture_type(Mix::kQ4_K_S, DType::Q4_K, "blk.3.attn_v.weight", 256, dense),
            DType::Q5_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_S, DType::Q4_K, "blk.4.attn_v.weight", 256, dense),
            DType::Q4_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_S, DType::Q4_K, "blk.3.ffn_down.weight", 256, dense),
            DType::Q5_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_S, DType::Q4_K, "blk.4.ffn_down.weight", 256, dense),
            DType::Q4_K);
  const ModelLayout mixtral{32, 8, true};
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "blk.9.attn_v.weight", 256, mixtral),
            DType::Q8_0);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "blk.9.attn_k.weight", 256, mixtral),
            DType::Q8_0);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "blk.9.attn_output.weight", 256, mixtral),
            DType::Q5_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "blk.0.ffn_down_exps.weight", 256, mixtral),
            DType::Q6_K);
  EXPECT_EQ(mixture_type(Mix::kQ4_K_M, DType::Q4_K, "blk.10.ffn_down_exps.weight", 256, mixtral),
            DType::Q4_K);
}

}  // namespace
}  // namespace toy::quant

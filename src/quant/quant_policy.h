// Which weight type each tensor of a model gets when quantizing: llama-quantize's
// K-quant mixtures (Q4_K_M and friends, from llama.cpp's llama_tensor_get_type) and its
// fallback for rows that do not fit a type's block. Pure policy on names and shapes;
// the converting itself is quant::quantize_row's job.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace toy::quant {

// How the weight types are chosen. kPure gives every weight matrix the base type (only the
// row-fit fallback applies), like `llama-quantize --pure`.
enum class Mix { kPure, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M };

// The facts about a model the mixtures depend on.
struct ModelLayout {
  int n_layer = 0;          // {arch}.block_count
  int n_expert = 0;         // {arch}.expert_count, 0 for dense models
  bool has_output = false;  // an `output.weight` tensor exists (else it is tied to token_embd)
};

// The type llama.cpp's llama_tensor_get_type picks for the weight matrix `name` with rows of
// `row_length` elements under `mix` (base type `base`), before the row-fit fallback.
// Implements the rules for the llama family (incl. Mixtral-style 8-expert models); the
// Falcon- and 70B-specific rules are not applied.
DType mixture_type(Mix mix, DType base, std::string_view name, int64_t row_length,
                   const ModelLayout& model);

// `wanted` when rows of `row_length` elements are a whole number of its blocks; otherwise
// llama.cpp's block-32 fallback for it (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
// Q2_K/Q3_K -> Q4_0) if that fits; nullopt when nothing fits (the caller keeps the source).
std::optional<DType> fitting_type(DType wanted, int64_t row_length);

}  // namespace toy::quant

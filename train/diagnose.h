// Where a model's forward first becomes non-finite: for the trainer's
// message when the loss or the gradient is NaN or infinite at step 0, before
// any update, where the learning rate cannot be the cause (docs/training.md,
// "When a run stops").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nn/transformer.h"

namespace miras {

// The forward of `model` on ids (B, T), without gradients, checked stage by
// stage: the embedding, then per block its mixer's output and the block's
// output. Where a block's mixer holds a memory layer (lmm, mag, mal, mac),
// that layer is also run alone on the block's mixer input, one token at a
// time, to say which of its quantities is non-finite first: the gates
// (θ, η, α, δ), the memory's weights after a token's update, or its output.
// Returns e.g. "block 0 (its mixer's output): the memory layer run on the
// block's input has finite gates, and its weights became non-finite at
// token 3 of 32 (row 0)", or "" when every stage is finite.
std::string first_non_finite_stage(Transformer& model, const IndexTensor& ids);

// Of `named` (name, parameter, in the forward's order), the last whose
// gradient holds a non-finite value, with how many of its values do and how
// many parameters are affected: the backward carries a non-finite value to
// every parameter before the place it arose, so the last one marks that
// place. "" if every gradient is finite.
std::string deepest_non_finite_gradient(const std::vector<std::pair<std::string, Tensor>>& named);

// The trainer's message for a training loss or gradient norm (`what`) that
// became `value` (NaN or infinite) at `step`, the batch's inputs (B, T) at
// hand. After step 0 the usual cause is a step too large, and it says so.
// At step 0 of a fresh run no update has happened, so the learning rate
// cannot be the cause: it says where the forward of the initial weights is
// first non-finite (first_non_finite_stage) and, for a gradient
// (`gradients`), which parameter's is deepest (deepest_non_finite_gradient).
std::string non_finite_message(const std::string& what, double value, int64_t step, Transformer& model,
                               const IndexTensor& inputs, bool gradients);

}  // namespace miras

// RoPE backward for training. RoPE is a rotation of each pair (scaled by
// YaRN's magnitude), so its backward is the transpose: the rotation by −θ with
// the same magnitude, applied to the gradient (in place). The angles come from
// the inference kernel's `rope_angles` (every scaling variant), so the backward
// is exactly that of the forward `rope_forward` applied. A double-precision
// table and rotation serve the gradient checks.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/rope.h"

namespace toy {

// cos/sin for positions 0..n_pos-1 and pairs 0..n_rot/2-1.
template <typename Real>
struct RopeTable {
  RopeParams params;
  std::vector<Real> cos;  // (n_pos, n_rot/2)
  std::vector<Real> sin;  // (n_pos, n_rot/2)
};

// float: the angles of rope_angles. double: the same formula (factors, linear
// scaling, YaRN) computed in double, as rope_reference does.
template <typename Real>
RopeTable<Real> make_rope_table(int64_t n_pos, const RopeParams& params);

// Rotates in place the first n_rot dims of every head of every row of x
// (rows, n_heads·head_dim); row r is at position positions[r]. direction +1
// is the forward rotation, −1 the backward (applied to a gradient).
template <typename Real>
void rope_rotate(Real* x, const int32_t* positions, int64_t rows, int64_t n_heads,
                 const RopeTable<Real>& table, int direction);

}  // namespace toy

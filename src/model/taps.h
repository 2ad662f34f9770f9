// Activation taps (toy train --tap, toy logits --tap): statistics of chosen points of
// the forward, per layer, accumulated over every row the forward runs — mean, root mean
// square, largest magnitude and the count of non-finite values — keyed
// `blk.N.<point>`, the way the seeds' engine records them for training telemetry.
//
// The points (LayerTensors fields, taken when the forward has just written them, since
// inference reuses its buffers within a layer):
//   attn_norm   xn     attn_norm(x), the attention block's input
//   attn_out    att·Woᵀ, the attention block's output (before a post norm)
//   resid_mid   x_mid  the residual stream between the two blocks
//   ffn_norm    xn2    ffn_norm(x_mid), the FFN's input
//   ffn_out     the FFN's (or the experts') output (before a post norm)
//   resid_post  x_out  the residual stream leaving the layer
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace toy {

template <typename Real>
struct LayerTensors;

enum class TapPoint { AttnNorm, AttnOut, ResidMid, FfnNorm, FfnOut, ResidPost };

struct TapStats {
  std::string name;  // "blk.3.ffn_out"
  int64_t layer = 0;
  TapPoint point = TapPoint::AttnNorm;
  int64_t count = 0;
  int64_t nonfinite = 0;
  double sum = 0.0, sum_squares = 0.0, max_abs = 0.0;  // over the finite values

  double mean() const;
  double rms() const;
  // Forward order: an earlier layer, or the same layer's earlier point.
  bool before(const TapStats& other) const {
    return layer != other.layer ? layer < other.layer : point < other.point;
  }
};

class LayerTaps {
 public:
  // `list`: comma-separated points, each for every layer ("ffn_out") or one
  // ("blk.3.ffn_out"). Throws toy::Error naming a point that does not exist; layers past
  // n_layer are refused when the model is known (check_layers).
  explicit LayerTaps(std::string_view list);
  void check_layers(int64_t n_layer) const;

  // Called by the forward after each block (model/forward_pass.cpp); N rows of width E.
  void after_attention(int64_t il, const LayerTensors<float>& a, int64_t N, int64_t E);
  void after_ffn(int64_t il, const LayerTensors<float>& a, int64_t N, int64_t E);

  // What was recorded since the last reset, in (layer, point) order.
  const std::vector<TapStats>& stats() const { return stats_; }
  // The first tap, in forward order, that saw a non-finite value; null if none.
  const TapStats* first_nonfinite() const;
  void reset();

 private:
  struct Wanted {
    TapPoint point;
    int64_t layer;  // -1: every layer
  };
  void record(int64_t il, TapPoint point, const float* x, int64_t n);

  std::vector<Wanted> wanted_;
  std::vector<TapStats> stats_;
};

}  // namespace toy

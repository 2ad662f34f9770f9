#include "model/activations.h"

#include <algorithm>

#include "core/error.h"

namespace toy {

template <typename Real>
Activations<Real>::Activations(const ModelConfig& c, int64_t n_seq, int64_t n_pos)
    : B_(n_seq), T_(n_pos) {
  TOY_CHECK(B_ > 0 && T_ > 0, "batch ", B_, " x ", T_);
  TOY_CHECK(c.head_dim_v == c.head_dim, "training needs value_length == key_length");
  TOY_CHECK(c.attn_scale > 0.0f, "attention scale ", c.attn_scale, " (not set in the config?)");
  const int64_t N = B_ * T_, L = c.n_layer, H = c.n_head;
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), V = c.v_dim();
  const int64_t F = std::max({c.n_ff, c.is_moe() ? c.n_ff_exp : 0, c.n_ff_shexp});
  dims_.resize(static_cast<size_t>(L));
  for (int64_t il = 0; il < L; ++il) {
    const AttentionParams p = attention_params(c, il);
    dims_[static_cast<size_t>(il)] = {
        B_, T_, H, c.n_head_kv, c.head_dim, double(p.scale), double(p.softcap), p.window};
  }
  // Gemma 2's post norms: their backward reads each block's output before the norm.
  const bool post_norms = c.arch().post_norms;

  // Mixture of experts: the FFN activations are per-expert scratch (the backward
  // recomputes them), so one gate / up / act set serves every layer; what each layer
  // keeps is its routing: (N, X) probabilities, (N, K) ids and weights, (N) shared gate.
  const bool moe = c.is_moe();
  const int64_t X = c.n_expert, K = c.n_expert_used;
  const int64_t ffn_per_layer = moe ? N * X + N * K + N : 3 * N * F;
  const int64_t ffn_global = moe ? 3 * N * F + 2 * N * E : 0;
  const int64_t ints = moe ? (L + 1) * N * K : 0;  // expert_ids per layer, routed

  // Every slot in one arena; each take is rounded up to 64 bytes.
  const int64_t per_layer = (post_norms ? 6 : 4) * N * E + 3 * N * Q + 2 * N * KV + N * V +
                            ffn_per_layer + B_ * H * T_ * T_;
  const int64_t global = 3 * N * E + N * c.n_vocab + ffn_global;
  // Gated delta-net layers keep their block's tensors (and no attention probabilities).
  int64_t n_gdn = 0;
  for (int64_t il = 0; il < L; ++il) n_gdn += c.is_gdn(il) ? 1 : 0;
  const GdnConfig& g = c.gdn;
  const int64_t gdn_per_layer =
      3 * N * g.conv_channels() + 3 * N * g.d_inner + 3 * N * g.n_v_head - B_ * H * T_ * T_;
  const int64_t n_takes = 31 * L + 10;
  arena_.reserve(static_cast<size_t>(L * per_layer + n_gdn * gdn_per_layer + global) *
                     sizeof(Real) +
                 static_cast<size_t>(ints) * sizeof(int32_t) + static_cast<size_t>(n_takes) * 64);
  auto take = [&](int64_t n) { return arena_.take_array<Real>(static_cast<size_t>(n)); };
  auto take_ids = [&](int64_t n) { return arena_.take_array<int32_t>(static_cast<size_t>(n)); };
  Real* proj = take(N * E);  // shared by every layer: backward does not read it
  Real *gate = nullptr, *up = nullptr, *act = nullptr;
  ExpertBuffers<Real> scratch{};
  if (moe) {
    gate = take(N * F);
    up = take(N * F);
    act = take(N * F);
    scratch.routed = take_ids(N * K);
    scratch.gathered = take(N * E);
    scratch.expert_out = take(N * E);
  }
  layers_.resize(static_cast<size_t>(L));
  probs_.resize(static_cast<size_t>(L));
  experts_.resize(static_cast<size_t>(L));
  gdn_.resize(static_cast<size_t>(L));
  for (int64_t il = 0; il < L; ++il) {
    LayerTensors<Real>& a = layers_[static_cast<size_t>(il)];
    a.x = take(N * E);
    a.xn = take(N * E);
    a.q = take(N * Q);
    a.k = take(N * KV);
    a.v = take(N * V);
    a.qr = take(N * Q);
    a.kr = take(N * KV);
    a.att = take(N * Q);
    a.proj = proj;
    a.attn_out = post_norms ? take(N * E) : proj;
    a.ffn_out = post_norms ? take(N * E) : proj;
    a.x_mid = take(N * E);
    a.xn2 = take(N * E);
    a.gate = moe ? gate : take(N * F);
    a.up = moe ? up : take(N * F);
    a.act = moe ? act : take(N * F);
    if (c.is_gdn(il)) {
      GdnTensors<Real>& t = gdn_[static_cast<size_t>(il)];
      t.qkv = take(N * g.conv_channels());
      t.conv_pre = take(N * g.conv_channels());
      t.conv = take(N * g.conv_channels());
      t.z = take(N * g.d_inner);
      t.beta = take(N * g.n_v_head);
      t.alpha = take(N * g.n_v_head);
      t.gate = take(N * g.n_v_head);
      t.core = take(N * g.d_inner);
      t.normed = take(N * g.d_inner);
    } else {
      probs_[static_cast<size_t>(il)] = take(B_ * H * T_ * T_);
    }
    if (moe) {
      ExpertBuffers<Real>& x = experts_[static_cast<size_t>(il)];
      x = scratch;
      x.router = take(N * X);
      x.expert_ids = take_ids(N * K);
      x.expert_w = take(N * K);
      x.shared_gate = take(N);
    }
  }
  x_final_ = take(N * E);
  xf_ = take(N * E);
  logits_ = take(N * c.n_vocab);
  for (int64_t il = 0; il < L; ++il)
    layers_[static_cast<size_t>(il)].x_out = il + 1 < L ? layers_[il + 1].x : x_final_;
}

template <typename Real>
void Activations<Real>::attend(int64_t il, Real* att, const Real* q, const Real* k, const Real* v,
                               const AttentionParams& p, const Compute& cx) {
  const AttentionDims& d = dims_[static_cast<size_t>(il)];
  TOY_CHECK(float(d.scale) == p.scale && float(d.softcap) == p.softcap && d.window == p.window,
            "layer ", il, ": attention parameters changed since the activations were sized");
  attention_forward_train(att, probs_[static_cast<size_t>(il)], q, k, v, d, cx, segment_);
}

template <typename Real>
void forward_train(const ModelConfig& config, const Weights& weights, const int32_t* tokens,
                   Activations<Real>& acts, const LinearContext& ctx, const int32_t* positions,
                   const int32_t* segment) {
  // A recurrent state would carry one packed example into the next.
  if (segment && config.has_gdn_layers())
    fail("packed rows (--pack) are not supported for models with gated delta-net layers");
  const BatchShape shape{acts.n_seq(), acts.n_pos(), 0, positions};
  acts.set_segment(segment);
  run_forward<Real>(config, weights, {tokens, static_cast<size_t>(acts.rows())}, shape, acts, ctx);
}

template class Activations<float>;
template class Activations<double>;
template void forward_train<float>(const ModelConfig&, const Weights&, const int32_t*,
                                   Activations<float>&, const LinearContext&, const int32_t*,
                                   const int32_t*);
template void forward_train<double>(const ModelConfig&, const Weights&, const int32_t*,
                                    Activations<double>&, const LinearContext&, const int32_t*,
                                    const int32_t*);

}  // namespace toy

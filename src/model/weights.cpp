#include "model/weights.h"

#include <cmath>

#include "core/error.h"

namespace toy {
namespace {

TensorSpec spec(std::string name, std::initializer_list<int64_t> shape, bool required,
                bool plain_f32) {
  TensorSpec s;
  s.name = std::move(name);
  s.n_dims = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t n : shape) s.ne[i++] = n;
  s.required = required;
  s.plain_f32 = plain_f32;
  return s;
}

// Matrices and 3-D expert stacks: any stored type.
TensorSpec matrix(std::string name, std::initializer_list<int64_t> shape, bool required = true) {
  return spec(std::move(name), shape, required, false);
}
// Vectors the kernels read as floats.
TensorSpec vec(std::string name, int64_t n, bool required = true) {
  return spec(std::move(name), {n}, required, true);
}

std::string blk(int64_t il, const char* suffix) {
  return "blk." + std::to_string(il) + "." + suffix;
}

template <typename W, typename Fn>
void visit(const ModelConfig& c, W& w, Fn&& fn) {
  const ArchTraits& arch = c.arch();
  TOY_CHECK(static_cast<int64_t>(w.layers.size()) == c.n_layer, "weights hold ", w.layers.size(),
            " layers, config has ", c.n_layer);
  const int64_t E = c.n_embd, V = c.n_vocab;
  // A projection lens (training only) reads a donor's table of its own width.
  const int64_t D = c.n_embd_lens > 0 ? c.n_embd_lens : E;
  fn(matrix("token_embd.weight", {D, V}), w.token_embd);
  if (c.n_embd_lens > 0) fn(matrix("lens.proj.weight", {D, E}), w.lens_proj);
  // llama3-style frequency factors are a llama feature; other families never have them.
  if (arch.arch == Arch::Llama) fn(vec("rope_freqs.weight", c.rope.n_rot / 2, false), w.rope_freqs);
  fn(vec("output_norm.weight", E), w.output_norm);
  fn(matrix("output.weight", {E, V}, /*required=*/false), w.output);

  // The FFN half of a layer: the same for attention and gated delta-net layers.
  auto ffn = [&](int64_t il, auto& l) {
    fn(vec(blk(il, "ffn_norm.weight"), E), l.ffn_norm);
    if (c.is_moe()) {
      const int64_t F = c.n_ff_exp, X = c.n_expert;
      fn(matrix(blk(il, "ffn_gate_inp.weight"), {E, X}), l.ffn_gate_inp);
      fn(matrix(blk(il, "ffn_gate_exps.weight"), {E, F, X}), l.ffn_gate_exps);
      fn(matrix(blk(il, "ffn_up_exps.weight"), {E, F, X}), l.ffn_up_exps);
      fn(matrix(blk(il, "ffn_down_exps.weight"), {F, E, X}), l.ffn_down_exps);
      if (arch.shared_expert) {
        const int64_t S = c.n_ff_shexp;
        fn(vec(blk(il, "ffn_gate_inp_shexp.weight"), E), l.ffn_gate_inp_shexp);
        fn(matrix(blk(il, "ffn_gate_shexp.weight"), {E, S}), l.ffn_gate_shexp);
        fn(matrix(blk(il, "ffn_up_shexp.weight"), {E, S}), l.ffn_up_shexp);
        fn(matrix(blk(il, "ffn_down_shexp.weight"), {S, E}), l.ffn_down_shexp);
      }
    } else {
      fn(matrix(blk(il, "ffn_gate.weight"), {E, c.n_ff}), l.ffn_gate);
      fn(matrix(blk(il, "ffn_up.weight"), {E, c.n_ff}), l.ffn_up);
      fn(matrix(blk(il, "ffn_down.weight"), {c.n_ff, E}), l.ffn_down);
    }
    if (arch.post_norms) fn(vec(blk(il, "post_ffw_norm.weight"), E), l.post_ffn_norm);
  };
  const int64_t Q = c.q_dim(), KV = c.kv_dim();
  for (int64_t il = 0; il < c.n_layer; ++il) {
    auto& l = w.layers[static_cast<size_t>(il)];
    fn(vec(blk(il, "attn_norm.weight"), E), l.attn_norm);
    if (c.is_gdn(il)) {
      const GdnConfig& g = c.gdn;
      const int64_t C = g.conv_channels(), H = g.n_v_head, D = g.d_inner;
      fn(matrix(blk(il, "attn_qkv.weight"), {E, C}), l.attn_qkv);
      fn(matrix(blk(il, "attn_gate.weight"), {E, D}), l.attn_gate);
      fn(matrix(blk(il, "ssm_beta.weight"), {E, H}), l.ssm_beta);
      fn(matrix(blk(il, "ssm_alpha.weight"), {E, H}), l.ssm_alpha);
      fn(spec(blk(il, "ssm_conv1d.weight"), {g.d_conv, C}, true, true), l.ssm_conv1d);
      fn(vec(blk(il, "ssm_dt.bias"), H), l.ssm_dt);
      fn(vec(blk(il, "ssm_a"), H), l.ssm_a);
      fn(vec(blk(il, "ssm_norm.weight"), g.d_v()), l.ssm_norm);
      fn(matrix(blk(il, "ssm_out.weight"), {D, E}), l.ssm_out);
      ffn(il, l);
      continue;
    }
    fn(matrix(blk(il, "attn_q.weight"), {E, Q}), l.attn_q);
    fn(matrix(blk(il, "attn_k.weight"), {E, KV}), l.attn_k);
    fn(matrix(blk(il, "attn_v.weight"), {E, c.v_dim()}), l.attn_v);
    fn(matrix(blk(il, "attn_output.weight"), {Q, E}), l.attn_output);
    // Qwen2 always has q/k/v biases; llama.cpp also accepts them on llama files.
    const bool bias_allowed = arch.qkv_bias || arch.arch == Arch::Llama;
    if (bias_allowed) {
      fn(vec(blk(il, "attn_q.bias"), Q, arch.qkv_bias), l.attn_q_bias);
      fn(vec(blk(il, "attn_k.bias"), KV, arch.qkv_bias), l.attn_k_bias);
      fn(vec(blk(il, "attn_v.bias"), c.v_dim(), arch.qkv_bias), l.attn_v_bias);
    }
    if (arch.qk_norm == QkNorm::PerHead) {
      fn(vec(blk(il, "attn_q_norm.weight"), c.head_dim), l.attn_q_norm);
      fn(vec(blk(il, "attn_k_norm.weight"), c.head_dim), l.attn_k_norm);
    } else if (arch.qk_norm == QkNorm::FullWidth) {
      fn(vec(blk(il, "attn_q_norm.weight"), Q), l.attn_q_norm);
      fn(vec(blk(il, "attn_k_norm.weight"), KV), l.attn_k_norm);
    }
    if (arch.post_norms) fn(vec(blk(il, "post_attention_norm.weight"), E), l.post_attn_norm);
    ffn(il, l);
  }
}

}  // namespace

std::optional<float> gdn_initial_value(std::string_view name, int64_t i, int64_t n) {
  const double u = (double(i) + 0.5) / double(n);  // evenly over (0, 1)
  if (name.ends_with(".ssm_a")) return static_cast<float>(-(1.0 + 15.0 * u));
  if (name.ends_with(".ssm_dt.bias")) {
    const double dt = std::exp(std::log(1e-3) + u * (std::log(0.1) - std::log(1e-3)));
    return static_cast<float>(std::log(std::expm1(dt)));  // softplus⁻¹(dt)
  }
  return std::nullopt;
}

std::string TensorSpec::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[static_cast<size_t>(i)]);
  }
  return s + "]";
}

void for_each_tensor(const ModelConfig& config, Weights& weights, const TensorVisitor& fn) {
  visit(config, weights, fn);
}

void for_each_tensor(const ModelConfig& config, const Weights& weights,
                     const ConstTensorVisitor& fn) {
  visit(config, weights, [&](const TensorSpec& spec, const Tensor& tensor) {
    if (tensor.data) fn(spec, tensor);
  });
}

}  // namespace toy

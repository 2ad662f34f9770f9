#include "model/taps.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/forward_pass.h"

namespace toy {
namespace {

struct PointName {
  TapPoint point;
  std::string_view name;
};
constexpr PointName kPoints[] = {
    {TapPoint::AttnNorm, "attn_norm"}, {TapPoint::AttnOut, "attn_out"},
    {TapPoint::ResidMid, "resid_mid"}, {TapPoint::FfnNorm, "ffn_norm"},
    {TapPoint::FfnOut, "ffn_out"},     {TapPoint::ResidPost, "resid_post"}};

std::string_view point_name(TapPoint point) {
  for (const PointName& p : kPoints)
    if (p.point == point) return p.name;
  return "?";
}

std::string known_points() {
  std::string s;
  for (const PointName& p : kPoints) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

}  // namespace

double TapStats::mean() const {
  const int64_t finite = count - nonfinite;
  return finite > 0 ? sum / double(finite) : 0.0;
}

double TapStats::rms() const {
  const int64_t finite = count - nonfinite;
  return finite > 0 ? std::sqrt(sum_squares / double(finite)) : 0.0;
}

LayerTaps::LayerTaps(std::string_view list) {
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string_view item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) fail("--tap: an empty tap name in '", list, "'");
    Wanted w{TapPoint::AttnNorm, -1};
    if (item.starts_with("blk.")) {
      const size_t dot = item.find('.', 4);
      const std::string_view digits = item.substr(4, dot == std::string_view::npos ? 0 : dot - 4);
      if (digits.empty() || digits.size() > 6 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        fail("--tap: '", item, "' is not blk.N.<point> with a layer number N");
      w.layer = std::stoll(std::string(digits));
      item = item.substr(dot + 1);
    }
    const auto found = std::find_if(std::begin(kPoints), std::end(kPoints),
                                    [&](const PointName& p) { return p.name == item; });
    if (found == std::end(kPoints))
      fail("--tap: unknown tap point '", item, "'; the points are ", known_points(),
           " (each for every layer, or blk.N.<point> for layer N)");
    w.point = found->point;
    wanted_.push_back(w);
  }
}

void LayerTaps::check_layers(int64_t n_layer) const {
  for (const Wanted& w : wanted_)
    if (w.layer >= n_layer)
      fail("--tap: blk.", w.layer, ".", point_name(w.point), ": the model has ", n_layer,
           " layers (blk.0 .. blk.", n_layer - 1, ")");
}

void LayerTaps::record(int64_t il, TapPoint point, const float* x, int64_t n) {
  const bool wanted = std::any_of(wanted_.begin(), wanted_.end(), [&](const Wanted& w) {
    return w.point == point && (w.layer < 0 || w.layer == il);
  });
  if (!wanted) return;
  const std::string name = "blk." + std::to_string(il) + "." + std::string(point_name(point));
  auto it =
      std::find_if(stats_.begin(), stats_.end(), [&](const TapStats& s) { return s.name == name; });
  if (it == stats_.end()) {
    stats_.push_back({name, il, point});
    it = stats_.end() - 1;
  }
  TapStats& s = *it;
  s.count += n;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!std::isfinite(v)) {
      ++s.nonfinite;
      continue;
    }
    s.sum += v;
    s.sum_squares += v * v;
    s.max_abs = std::max(s.max_abs, std::abs(v));
  }
}

void LayerTaps::after_attention(int64_t il, const LayerTensors<float>& a, int64_t N, int64_t E) {
  record(il, TapPoint::AttnNorm, a.xn, N * E);
  record(il, TapPoint::AttnOut, a.attn_out, N * E);
  record(il, TapPoint::ResidMid, a.x_mid, N * E);
}

void LayerTaps::after_ffn(int64_t il, const LayerTensors<float>& a, int64_t N, int64_t E) {
  record(il, TapPoint::FfnNorm, a.xn2, N * E);
  record(il, TapPoint::FfnOut, a.ffn_out, N * E);
  record(il, TapPoint::ResidPost, a.x_out, N * E);
}

const TapStats* LayerTaps::first_nonfinite() const {
  for (const TapStats& s : stats_)
    if (s.nonfinite > 0) return &s;
  return nullptr;
}

void LayerTaps::reset() {
  stats_.clear();
}

}  // namespace toy

#include "cli/training_plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "cli/files.h"
#include "core/error.h"

namespace toy::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A number field of a metrics object: NaN when absent or null, an error for another type.
double number_field(const nlohmann::json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return kNaN;
  if (!it->is_number())
    fail(where, ": \"", key, "\" must be a number or null, found ", it->dump().substr(0, 80));
  return it->get<double>();
}

// The last finite value of a series (how a tensor's norm ended).
double last_finite(const std::vector<PlotPoint>& points) {
  for (auto it = points.rbegin(); it != points.rend(); ++it)
    if (std::isfinite(it->y)) return it->y;
  return -1.0;
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// "blk.12.attn_q.weight" -> "blk.12" (LoRA names too); other tensors keep their name.
std::string layer_of(const std::string& name) {
  if (!name.starts_with("blk.")) return name;
  const size_t dot = name.find('.', 4);
  return dot == std::string::npos ? name : name.substr(0, dot);
}

// The order lines are listed in: the model's (embeddings, blocks by number, the rest), not
// the order of the records — a --metrics file's objects come back sorted by name, where
// blk.10 sorts before blk.2 — so a run's plot and its log's plot are the same.
bool model_order(const std::string& a, const std::string& b) {
  auto key = [](const std::string& name) {
    const int rank = name.starts_with("token_embd") ? 0 : name.starts_with("blk.") ? 1 : 2;
    const long layer = rank == 1 ? std::strtol(name.c_str() + 4, nullptr, 10) : 0;
    return std::tuple(rank, layer, name);
  };
  return key(a) < key(b);
}

}  // namespace

MetricsStep::MetricsStep() : loss(kNaN), val_loss(kNaN), lr(kNaN), grad_norm(kNaN) {}

MetricsLog::MetricsLog() : final_train_loss(kNaN), final_val_loss(kNaN) {}

void MetricsLog::add(MetricsStep step) {
  while (!steps.empty() && steps.back().step >= step.step) steps.pop_back();
  // A final line before this step belonged to an earlier, shorter run of the same log.
  if (final_step >= 0 && final_step < step.step) set_final(-1, kNaN, kNaN);
  steps.push_back(std::move(step));
}

void MetricsLog::set_final(int64_t step, double train_loss, double val_loss) {
  final_step = step;
  final_train_loss = train_loss;
  final_val_loss = val_loss;
}

MetricsLog parse_metrics(std::string_view text, const std::string& path) {
  MetricsLog log;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = str(path, " line ", line_number);
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": not JSON (", e.what(),
           "); expected one JSON object per line, as toy train --metrics writes");
    }
    if (!object.is_object())
      fail(where, ": expected a JSON object, found ", object.dump().substr(0, 80));
    if (object.value("final", false) == true) {
      const double step = number_field(object, "step", where);
      log.set_final(std::isfinite(step) ? static_cast<int64_t>(step) : 0,
                    number_field(object, "train_loss", where),
                    number_field(object, "val_loss", where));
      continue;
    }
    if (!object.contains("step")) continue;  // another kind of record
    const double step = number_field(object, "step", where);
    if (!std::isfinite(step) || step < 0 || step != std::floor(step))
      fail(where, ": \"step\" must be a whole number >= 0, found ", object["step"].dump());
    MetricsStep s;
    s.step = static_cast<int64_t>(step);
    s.loss = number_field(object, "loss", where);
    s.val_loss = number_field(object, "val_loss", where);
    s.lr = number_field(object, "lr", where);
    s.grad_norm = number_field(object, "grad_norm", where);
    if (const auto it = object.find("tensors"); it != object.end() && !it->is_null()) {
      if (!it->is_object())
        fail(where, ": \"tensors\" must be an object {name: {\"grad_norm\": ...}}");
      for (const auto& [name, stats] : it->items()) {
        if (!stats.is_object())
          fail(where, ": \"tensors\".\"", name, "\" must be an object, found ",
               stats.dump().substr(0, 80));
        s.tensor_grad_norms.emplace_back(name,
                                         number_field(stats, "grad_norm", where + " " + name));
      }
    }
    log.add(std::move(s));
  }
  if (log.steps.empty())
    fail(path, ": no training steps (no line with a \"step\"); expected the JSON lines that ",
         "toy train --metrics writes");
  return log;
}

MetricsStep metrics_step(const train::StepReport& r) {
  MetricsStep s;
  s.step = r.step;
  s.loss = r.loss;
  s.val_loss = r.val_loss >= 0.0 ? r.val_loss : kNaN;
  s.lr = r.lr;
  s.grad_norm = r.grad_norm;
  for (const train::TensorStats& t : r.tensors)
    s.tensor_grad_norms.emplace_back(t.name, t.grad_norm);
  return s;
}

static double auto_smoothing(size_t n_steps) {
  if (n_steps < 100) return 0.0;
  // An EMA over about n/60 steps: a curve with a few dozen independent wiggles.
  return std::clamp(1.0 - 60.0 / double(n_steps), 0.6, 0.995);
}

PlotFigure loss_figure(const MetricsLog& log, const std::string& title, double smoothing) {
  if (smoothing < 0.0) smoothing = auto_smoothing(log.steps.size());
  PlotFigure fig;
  fig.title = title;
  fig.x_label = "step";
  PlotPanel loss{"loss", false, 1.0, {}, ""};
  // Colours fixed per meaning: train blue, validation orange (final green), lr red.
  PlotSeries train{"train loss", {}, true, false, 0};
  PlotSeries val{"val loss", {}, true, true, 1};
  PlotSeries lr{"learning rate", {}, true, false, 3};
  for (const MetricsStep& s : log.steps) {
    train.points.push_back({double(s.step), s.loss});
    if (std::isfinite(s.val_loss)) val.points.push_back({double(s.step), s.val_loss});
    lr.points.push_back({double(s.step), s.lr});
  }
  if (smoothing > 0.0) {
    // TensorBoard's smoothing: an exponential moving average, debiased so the first steps
    // are not pulled towards 0; missing values are skipped and stay gaps.
    char name[48];
    std::snprintf(name, sizeof(name), "smoothed (EMA %.3g)", smoothing);
    PlotSeries smooth{name, {}, true, false, 0};
    double ema = 0.0, weight = 1.0;
    for (const PlotPoint& p : train.points) {
      if (std::isfinite(p.y)) {
        ema = smoothing * ema + (1.0 - smoothing) * p.y;
        weight *= smoothing;
      }
      smooth.points.push_back({p.x, std::isfinite(p.y) ? ema / (1.0 - weight) : kNaN});
    }
    train.opacity = 0.3;
    loss.series.push_back(std::move(train));
    loss.series.push_back(std::move(smooth));
  } else {
    loss.series.push_back(std::move(train));
  }
  if (!val.points.empty()) loss.series.push_back(std::move(val));
  if (log.final_step >= 0 && std::isfinite(log.final_val_loss))
    loss.series.push_back({"final val (whole split)",
                           {{double(log.final_step), log.final_val_loss}},
                           false,
                           true,
                           2});
  // The last values in words: what a reader looks for first.
  const MetricsStep& last = log.steps.back();
  loss.note = str("step ", last.step, ": loss ", format_value(last.loss));
  for (auto it = log.steps.rbegin(); it != log.steps.rend(); ++it)
    if (std::isfinite(it->val_loss)) {
      loss.note += str(", val ", format_value(it->val_loss),
                       it->step == last.step ? "" : str(" (step ", it->step, ")"));
      break;
    }
  if (log.final_step >= 0 && std::isfinite(log.final_val_loss))
    loss.note += str("; final val ", format_value(log.final_val_loss));
  fig.panels.push_back(std::move(loss));
  fig.panels.push_back({"learning rate", false, 0.4, {std::move(lr)}, ""});
  return fig;
}

PlotFigure grads_figure(const MetricsLog& log, const std::string& title, int max_lines) {
  max_lines = std::max(max_lines, 1);
  // Each tensor's points, the tensors listed in the order they first appear.
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  std::vector<std::vector<PlotPoint>> points;
  PlotSeries global{"all (global norm)", {}, true, false};
  for (const MetricsStep& s : log.steps) {
    global.points.push_back({double(s.step), s.grad_norm});
    for (const auto& [name, norm] : s.tensor_grad_norms) {
      auto [it, added] = index.emplace(name, names.size());
      if (added) names.push_back(name), points.emplace_back();
      points[it->second].push_back({double(s.step), norm});
    }
  }
  std::vector<size_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return model_order(names[a], names[b]); });
  std::string note;
  std::vector<PlotSeries> lines;
  if (static_cast<int>(names.size()) <= max_lines) {
    for (size_t i : order) lines.push_back({names[i], points[i], true, false});
    note = "per-tensor gradient norm before clipping";
  } else {
    // Too many lines to tell apart: one per layer, the norm over all of the layer's tensors
    // (√Σ‖g‖², so it is the layer's share of the global norm).
    std::vector<std::string> groups;
    std::map<std::string, std::map<double, double>> sums;  // group -> step -> Σ‖g‖²
    for (size_t i : order) {
      const std::string group = layer_of(names[i]);
      if (!sums.contains(group)) groups.push_back(group);
      for (const PlotPoint& p : points[i]) sums[group][p.x] += p.y * p.y;
    }
    for (const std::string& g : groups) {
      PlotSeries series{g, {}, true, false};
      for (const auto& [x, sum] : sums[g]) series.points.push_back({x, std::sqrt(sum)});
      lines.push_back(std::move(series));
    }
    note = str(names.size(), " tensors combined per layer: blk.N is the norm over all of ",
               "layer N's gradients");
    if (static_cast<int>(lines.size()) > max_lines) {
      const size_t total = lines.size();
      std::stable_sort(lines.begin(), lines.end(), [](const PlotSeries& a, const PlotSeries& b) {
        return last_finite(a.points) > last_finite(b.points);
      });
      lines.resize(max_lines);
      note += str("; the ", max_lines, " of ", total, " largest by last value");
    }
  }
  if (names.empty()) note = "no per-tensor statistics in the log (toy train --metrics-every)";
  PlotFigure fig;
  fig.title = title;
  fig.x_label = "step";
  PlotPanel panel{"gradient norm (log scale)", true, 1.3, {std::move(global)}, note};
  for (PlotSeries& s : lines) panel.series.push_back(std::move(s));
  fig.panels.push_back(std::move(panel));
  return fig;
}

TrainingPlots::TrainingPlots(std::string loss_path, std::string grads_path, std::string title)
    : loss_path_(std::move(loss_path)),
      grads_path_(std::move(grads_path)),
      title_(std::move(title)) {}

void TrainingPlots::resume_from(const std::string& metrics_path, int64_t step) {
  if (!active() || metrics_path.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(metrics_path, ec)) return;
  try {
    const MetricsLog earlier =
        parse_metrics(read_input_text({"--metrics", metrics_path}, false), metrics_path);
    for (const MetricsStep& s : earlier.steps)
      if (s.step <= step) log_.add(s);
  } catch (const Error&) {
    // The plot then starts at the resumed step; the run itself does not depend on it.
  }
}

void TrainingPlots::add(const train::StepReport& report) {
  if (active()) log_.add(metrics_step(report));
}

void TrainingPlots::set_final(int64_t step, double train_loss, double val_loss) {
  log_.set_final(step, train_loss, val_loss);
}

void TrainingPlots::write() const {
  if (log_.steps.empty()) return;
  if (!loss_path_.empty()) {
    const std::string svg = render_svg(loss_figure(log_, title_, -1.0));
    write_output_file(loss_path_, svg.data(), svg.size());
  }
  if (!grads_path_.empty()) {
    const std::string svg = render_svg(grads_figure(log_, "gradient norms: " + title_));
    write_output_file(grads_path_, svg.data(), svg.size());
  }
}

TrainingPlots::WriteOnError::WriteOnError(const TrainingPlots& plots)
    : plots_(plots), exceptions_(std::uncaught_exceptions()) {}

TrainingPlots::WriteOnError::~WriteOnError() {
  if (std::uncaught_exceptions() <= exceptions_ || !plots_.active()) return;
  try {
    plots_.write();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "toy: the plots were not written: %s\n", e.what());
  }
}

}  // namespace toy::cli

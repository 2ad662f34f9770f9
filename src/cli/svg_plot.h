// A small line-chart writer: series of (x, y) points in, a standalone SVG document out.
// `toy plot` and `toy train --plot` draw training curves with it; no plotting library,
// so the output is the same everywhere and needs nothing but a browser to view.
//
// A figure is one or more panels stacked vertically that share the x axis (loss above,
// learning rate below, as TensorBoard shows related scalars), each with its own y axis
// (linear or log10), grid, tick labels and a legend to the right of the plot area.
// Tick steps are "nice numbers" (1, 2 or 5 × 10^k, Heckbert, Graphics Gems 1990).
// Points whose x or y is not finite (NaN from a null in the metrics) — and on a log axis
// y <= 0 — are left out and break the line there, so a gap shows where data is missing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace toy::cli {

struct PlotPoint {
  double x = 0.0, y = 0.0;
};

struct PlotSeries {
  std::string name;  // the legend entry
  std::vector<PlotPoint> points;
  bool line = true;      // false: markers only (a sparse series, e.g. a final value)
  bool markers = false;  // a dot at every point (isolated points always get one)
  int color = -1;        // a palette index; -1: the next colour of the figure
  double opacity = 1.0;  // < 1: drawn faintly (the raw curve under a smoothed one)
};

struct PlotPanel {
  std::string y_label;
  bool log_y = false;
  double height = 1.0;  // relative to the other panels
  std::vector<PlotSeries> series;
  std::string note;  // a line under the legend entries (how the series were chosen)
};

struct PlotFigure {
  std::string title, x_label;
  std::vector<PlotPanel> panels;
  int width = 900;
  int height = 0;  // 0: from the number of panels
};

// The SVG document (UTF-8, with an XML declaration), valid even when no panel has a point.
std::string render_svg(const PlotFigure& figure);

// Ticks for a linear axis covering [lo, hi] with about `target` steps of a nice size; the
// first tick <= lo and the last >= hi (the axis is widened to them). lo == hi is widened.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Ticks for a log10 axis over [lo, hi] (both > 0): powers of ten, with 2 and 5 multiples
// added when the range spans less than two decades; always at least two ticks.
std::vector<double> log_ticks(double lo, double hi);
// A tick label: fixed notation with as many decimals as `step` needs, or 1e-05-style
// scientific notation for very large or small values.
std::string format_tick(double value, double step);
// Text for an SVG element or attribute: & < > " ' escaped, control bytes dropped.
std::string svg_escape(std::string_view text);

}  // namespace toy::cli

#include "cli/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace toy::cli {
namespace {

// Tableau 10: distinct for the common kinds of colour blindness and on white.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

// Layout in pixels.
constexpr double kLeft = 78, kLegendWidth = 240, kTop = 46, kBottom = 52, kPanelGap = 26;
constexpr double kUnitHeight = 300;  // a panel of height 1.0

// A coordinate with one decimal: enough for a screen, and short.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  std::string s = buf;
  if (s.ends_with(".0")) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

// The "nice" number (1, 2, 5 or 10 × 10^k) nearest x (Heckbert's nicenum with rounding).
double nice_number(double x) {
  const double exp = std::floor(std::log10(x));
  const double f = x / std::pow(10.0, exp);
  const double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * std::pow(10.0, exp);
}

bool usable(const PlotPoint& p, bool log_y) {
  return std::isfinite(p.x) && std::isfinite(p.y) && (!log_y || p.y > 0.0);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool empty() const { return lo > hi; }
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
};

// Greedy word wrap at spaces for the legend's note.
std::vector<std::string> wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(pos, end - pos);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    pos = end + 1;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or 0.
size_t utf8_length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  return n;
}

// A legend entry must fit its column: long tensor names keep their start and end (cut at
// character boundaries).
std::string shorten(const std::string& name, size_t max) {
  if (name.size() <= max) return name;
  auto boundary = [&](size_t i) {
    while (i > 0 && i < name.size() && (static_cast<unsigned char>(name[i]) & 0xC0) == 0x80) --i;
    return i;
  };
  const size_t head = boundary((max - 1) / 2);
  const size_t tail = boundary(name.size() - (max - 1 - (max - 1) / 2));
  return name.substr(0, head) + "\u2026" + name.substr(tail);
}

class Writer {
 public:
  explicit Writer(const PlotFigure& figure) : fig_(figure) {}

  std::string render() {
    double units = 0;
    for (const PlotPanel& p : fig_.panels) units += std::max(0.2, p.height);
    const int n = static_cast<int>(fig_.panels.size());
    const double height =
        fig_.height > 0 ? fig_.height
                        : kTop + kBottom + units * kUnitHeight + std::max(0, n - 1) * kPanelGap;
    const double width = std::max(fig_.width, 400);
    plot_width_ = width - kLeft - kLegendWidth;
    const double plot_height = height - kTop - kBottom - std::max(0, n - 1) * kPanelGap;

    out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
            num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
            "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    // An opaque background: viewers with a dark theme would otherwise show black text on black.
    out_ += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    // The title is centred over the plot area; a long one over the whole figure, in a smaller
    // font if it would not fit (text is not measured in SVG: ~0.6 em per character in bold).
    double title_x = kLeft + plot_width_ / 2, title_size = 16;
    const double title_width = 0.6 * title_size * double(fig_.title.size());
    if (title_width > plot_width_) {
      title_x = width / 2;
      title_size = std::max(9.0, std::min(16.0, 16.0 * (width - 20) / title_width));
    }
    out_ += "<text x=\"" + num(title_x) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"" +
            num(title_size) + "\" font-weight=\"bold\">" + svg_escape(fig_.title) + "</text>\n";

    x_axis();
    double top = kTop;
    for (int i = 0; i < n; ++i) {
      const double h = plot_height * std::max(0.2, fig_.panels[i].height) / std::max(units, 1e-9);
      panel(fig_.panels[i], i, top, h, /*last=*/i == n - 1);
      top += h + kPanelGap;
    }
    if (n == 0) {
      out_ += "<text x=\"" + num(width / 2) + "\" y=\"" + num(height / 2) +
              "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#666\">no data</text>\n";
    }
    out_ += "</svg>\n";
    return std::move(out_);
  }

 private:
  // The x axis is shared by every panel: one range over all their points.
  void x_axis() {
    Range r;
    for (const PlotPanel& p : fig_.panels)
      for (const PlotSeries& s : p.series)
        for (const PlotPoint& pt : s.points)
          if (usable(pt, p.log_y)) r.add(pt.x);
    if (r.empty()) r = {0.0, 1.0};
    if (r.lo == r.hi) r = {r.lo - 1.0, r.hi + 1.0};
    x_ticks_ = nice_ticks(r.lo, r.hi, std::max(3, static_cast<int>(plot_width_ / 90)));
    x0_ = x_ticks_.front(), x1_ = x_ticks_.back();
  }

  double px(double x) const { return kLeft + (x - x0_) / (x1_ - x0_) * plot_width_; }

  void panel(const PlotPanel& p, int index, double top, double h, bool last) {
    Range r;
    for (const PlotSeries& s : p.series)
      for (const PlotPoint& pt : s.points)
        if (usable(pt, p.log_y)) r.add(pt.y);
    const bool empty = r.empty();
    if (empty) r = p.log_y ? Range{1.0, 10.0} : Range{0.0, 1.0};
    const std::vector<double> ticks =
        p.log_y ? log_ticks(r.lo, r.hi)
                : nice_ticks(r.lo, r.hi, std::max(2, static_cast<int>(h / 55)));
    const double y0 = ticks.front(), y1 = ticks.back();
    auto py = [&](double y) {
      const double t = p.log_y
                           ? (std::log10(y) - std::log10(y0)) / (std::log10(y1) - std::log10(y0))
                           : (y - y0) / (y1 - y0);
      return top + h - t * h;
    };
    const double right = kLeft + plot_width_, bottom = top + h;

    // Grid and tick labels.
    out_ += "<g font-size=\"11\" fill=\"#333\">\n";
    for (size_t i = 0; i < ticks.size(); ++i) {
      const double y = py(ticks[i]);
      const double step = p.log_y ? ticks[i] : ticks[1] - ticks[0];
      out_ += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(right) + "\" y1=\"" + num(y) +
              "\" y2=\"" + num(y) + "\" stroke=\"#e4e4e4\"/>\n";
      out_ += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y + 4) + "\" text-anchor=\"end\">" +
              svg_escape(format_tick(ticks[i], step)) + "</text>\n";
    }
    const double x_step = x_ticks_.size() > 1 ? x_ticks_[1] - x_ticks_[0] : 1.0;
    for (double t : x_ticks_) {
      const double x = px(t);
      out_ += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(top) + "\" y2=\"" +
              num(bottom) + "\" stroke=\"#e4e4e4\"/>\n";
      // Tick labels only under the last panel; the others share its axis.
      if (last)
        out_ += "<text x=\"" + num(x) + "\" y=\"" + num(bottom + 16) +
                "\" text-anchor=\"middle\">" + svg_escape(format_tick(t, x_step)) + "</text>\n";
    }
    out_ += "</g>\n";
    out_ += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_width_) +
            "\" height=\"" + num(h) + "\" fill=\"none\" stroke=\"#444\"/>\n";
    // Axis labels.
    const double label_x = 18, label_y = top + h / 2;
    out_ += "<text x=\"" + num(label_x) + "\" y=\"" + num(label_y) +
            "\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 " + num(label_x) +
            " " + num(label_y) + ")\">" + svg_escape(p.y_label) + "</text>\n";
    if (last)
      out_ += "<text x=\"" + num(kLeft + plot_width_ / 2) + "\" y=\"" + num(bottom + 40) +
              "\" text-anchor=\"middle\" font-size=\"13\">" + svg_escape(fig_.x_label) +
              "</text>\n";
    if (empty)
      out_ += "<text x=\"" + num(kLeft + plot_width_ / 2) + "\" y=\"" + num(top + h / 2) +
              "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#888\">no data</text>\n";

    // The series, clipped to the plot area.
    const std::string clip = "clip" + std::to_string(index);
    // A little wider than the plot area: a dot on the edge is drawn whole.
    out_ += "<clipPath id=\"" + clip + "\"><rect x=\"" + num(kLeft - 4) + "\" y=\"" + num(top - 4) +
            "\" width=\"" + num(plot_width_ + 8) + "\" height=\"" + num(h + 8) +
            "\"/></clipPath>\n<g clip-path=\"url(#" + clip + ")\" fill=\"none\">\n";
    for (const PlotSeries& s : p.series) {
      const Style style = next_style(s);
      series(s, p.log_y, style, py);
      legend_.push_back({s.name, style, s.line, s.markers || !s.line});
    }
    out_ += "</g>\n";
    legend(p, top);
    legend_.clear();
  }

  struct Style {
    std::string color, dash, opacity;  // opacity: "" or an attribute value
  };
  Style next_style(const PlotSeries& s) {
    const int i = s.color >= 0 ? s.color : series_count_++;
    // Past the palette the colours repeat with a dash pattern, so no two lines look alike.
    return {kPalette[i % kPaletteSize], i >= kPaletteSize ? "6,3" : "",
            s.opacity < 1.0 ? num_opacity(s.opacity) : ""};
  }
  static std::string num_opacity(double v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%.2g", std::clamp(v, 0.0, 1.0));
    return buf;
  }
  static std::string attributes(const Style& style, const char* opacity_name) {
    std::string a;
    if (!style.dash.empty()) a += " stroke-dasharray=\"" + style.dash + "\"";
    if (!style.opacity.empty()) a += std::string(" ") + opacity_name + "=\"" + style.opacity + "\"";
    return a;
  }

  template <typename PY>
  void series(const PlotSeries& s, bool log_y, const Style& style, const PY& py) {
    // Runs of usable points become subpaths; a point that is alone in its run gets a dot.
    // Within a run, points falling in the same pixel column are reduced to the first, the
    // lowest, the highest and the last, so 100k steps stay a small file and spikes survive.
    std::string path;
    std::vector<std::pair<double, double>> dots;
    std::vector<std::pair<double, double>> run;
    auto flush_run = [&] {
      if (run.size() == 1 || (!s.line && !run.empty()) || s.markers)
        for (const auto& p : run) dots.push_back(p);
      if (s.line && run.size() > 1) {
        for (size_t i = 0; i < run.size(); ++i)
          path += (i ? "L" : "M") + num(run[i].first) + " " + num(run[i].second);
      }
      run.clear();
    };
    // The current pixel column's points before they are reduced.
    std::vector<std::pair<double, double>> column;
    auto flush_column = [&] {
      if (column.size() <= 4) {
        run.insert(run.end(), column.begin(), column.end());
      } else {
        auto [lo, hi] = std::minmax_element(column.begin(), column.end(),
                                            [](auto& a, auto& b) { return a.second < b.second; });
        run.push_back(column.front());
        // Keep x order among the kept extremes.
        if (lo < hi) {
          run.push_back(*lo), run.push_back(*hi);
        } else {
          run.push_back(*hi), run.push_back(*lo);
        }
        run.push_back(column.back());
      }
      column.clear();
    };
    for (const PlotPoint& p : s.points) {
      if (!usable(p, log_y)) {
        flush_column();
        flush_run();
        continue;
      }
      const std::pair<double, double> q{px(p.x), py(p.y)};
      // Marked points are each drawn, so they are not reduced.
      if (!column.empty() && (s.markers || std::floor(column.front().first) != std::floor(q.first)))
        flush_column();
      column.push_back(q);
    }
    flush_column();
    flush_run();
    if (!path.empty())
      out_ += "<path d=\"" + path + "\" stroke=\"" + style.color +
              "\" stroke-width=\"1.6\" stroke-linejoin=\"round\"" +
              attributes(style, "stroke-opacity") + "/>\n";
    const std::string dot_opacity =
        style.opacity.empty() ? "" : " fill-opacity=\"" + style.opacity + "\"";
    for (const auto& [x, y] : dots)
      out_ += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"3\" fill=\"" + style.color +
              "\"" + dot_opacity + "/>\n";
  }

  struct LegendEntry {
    std::string name;
    Style style;
    bool line, marker;
  };

  void legend(const PlotPanel& p, double top) {
    const double x = kLeft + plot_width_ + 16;
    double y = top + 12;
    out_ += "<g font-size=\"12\" fill=\"#222\">\n";
    for (const LegendEntry& e : legend_) {
      if (e.line)
        out_ += "<line x1=\"" + num(x) + "\" x2=\"" + num(x + 22) + "\" y1=\"" + num(y) +
                "\" y2=\"" + num(y) + "\" stroke=\"" + e.style.color + "\" stroke-width=\"2\"" +
                attributes(e.style, "stroke-opacity") + "/>\n";
      if (e.marker)
        out_ += "<circle cx=\"" + num(x + 11) + "\" cy=\"" + num(y) + "\" r=\"3\" fill=\"" +
                e.style.color + "\"/>\n";
      out_ += "<text x=\"" + num(x + 28) + "\" y=\"" + num(y + 4) + "\">" +
              svg_escape(shorten(e.name, 26)) + "</text>\n";
      y += 18;
    }
    out_ += "</g>\n";
    if (!p.note.empty()) {
      out_ += "<g font-size=\"10.5\" fill=\"#555\">\n";
      for (const std::string& line : wrap(p.note, 36)) {
        out_ +=
            "<text x=\"" + num(x) + "\" y=\"" + num(y + 4) + "\">" + svg_escape(line) + "</text>\n";
        y += 14;
      }
      out_ += "</g>\n";
    }
  }

  const PlotFigure& fig_;
  std::string out_;
  double plot_width_ = 0;
  std::vector<double> x_ticks_;
  double x0_ = 0, x1_ = 1;
  int series_count_ = 0;
  std::vector<LegendEntry> legend_;
};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0.0, hi = 1.0;
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    const double d = lo == 0.0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d, hi += d;
  }
  target = std::max(target, 1);
  // The step nearest range/target (Heckbert first rounds the range up to a nice number,
  // which can halve the tick count: 0..600 would get only 0, 200, 400, 600).
  const double step = nice_number((hi - lo) / target);
  // A bound that is a multiple of the step up to rounding (3e-5 / 1e-5 = 3.0000000000000004)
  // is not widened by a whole step.
  const double first = std::floor(lo / step + 1e-9) * step;
  const double last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  const auto n = static_cast<int64_t>(std::llround((last - first) / step));
  // Multiples of the step computed afresh, so 0.1 + 0.2 does not print as 0.30000000000000004.
  for (int64_t i = 0; i <= n; ++i) {
    double t = first + static_cast<double>(i) * step;
    if (std::abs(t) < step * 1e-9) t = 0.0;
    ticks.push_back(t);
  }
  if (ticks.size() < 2) ticks.push_back(first + step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0.0) || !std::isfinite(lo)) lo = 1.0;
  if (!(hi > 0.0) || !std::isfinite(hi)) hi = lo * 10.0;
  if (lo > hi) std::swap(lo, hi);
  const int a = static_cast<int>(std::floor(std::log10(lo) + 1e-12));
  int b = static_cast<int>(std::ceil(std::log10(hi) - 1e-12));
  if (b <= a) b = a + 1;
  std::vector<double> ticks;
  if (std::log10(hi / lo) >= 2.0) {
    // Whole decades; every k-th one over a wide range, still covering [lo, hi].
    const int every = (b - a + 7) / 8;
    for (int k = a; k < b + every; k += every) {
      ticks.push_back(std::pow(10.0, k));
      if (k >= b) break;
    }
    return ticks;
  }
  // Within about a decade: 1-2-5 multiples, or every digit if that gives too few ticks.
  for (const std::vector<int>& mults :
       {std::vector<int>{1, 2, 5}, std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    std::vector<double> all;
    for (int k = a - 1; k <= b; ++k)
      for (int m : mults) all.push_back(m * std::pow(10.0, k));
    const double eps = 1e-9;
    size_t first = 0, last = all.size() - 1;
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i] <= lo * (1 + eps)) first = i;
    for (size_t i = all.size(); i-- > 0;)
      if (all[i] >= hi * (1 - eps)) last = i;
    ticks.assign(all.begin() + first, all.begin() + last + 1);
    if (ticks.size() >= 4) break;
  }
  if (ticks.size() < 2) ticks = {std::pow(10.0, a), std::pow(10.0, b)};
  return ticks;
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return "";
  step = std::abs(step);
  if (!(step > 0.0) || !std::isfinite(step)) step = std::abs(value) > 0 ? std::abs(value) : 1.0;
  if (std::abs(value) < step * 1e-9) return "0";
  char buf[48];
  const double mag = std::abs(value);
  if (mag >= 1e6 || step < 1e-4) {
    // Scientific: as many mantissa digits as the step resolves, exponent without padding.
    const int digits = std::clamp(
        static_cast<int>(std::floor(std::log10(mag) + 1e-9) - std::floor(std::log10(step) + 1e-9)),
        0, 6);
    std::snprintf(buf, sizeof(buf), "%.*e", digits, value);
    std::string s = buf;
    const size_t e = s.find('e');
    std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
    const bool negative = exponent[0] == '-';
    exponent = exponent.substr(1);
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    return mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 10);
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string svg_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // A byte that does not start a well-formed UTF-8 sequence would make the whole document
    // unreadable to an XML parser: it becomes U+FFFD.
    if (static_cast<unsigned char>(c) >= 0x80) {
      const size_t n = utf8_length(text.substr(i));
      if (n == 0) {
        out += "\uFFFD";
      } else {
        out.append(text.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even escaped; tabs and newlines are spaces.
        if (static_cast<unsigned char>(c) < 0x20)
          out += (c == '\t' || c == '\n' || c == '\r') ? " " : "";
        else
          out += c;
    }
  }
  return out;
}

std::string render_svg(const PlotFigure& figure) {
  return Writer(figure).render();
}

}  // namespace toy::cli

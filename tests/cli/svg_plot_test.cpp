// The SVG writer's pieces on their own: nice tick steps, log ticks, tick labels, escaping,
// and what a figure does with NaN, a single point and no data.
#include "cli/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace toy::cli {
namespace {

std::vector<std::string> labels(const std::vector<double>& ticks, bool log) {
  std::vector<std::string> out;
  for (double t : ticks) out.push_back(format_tick(t, log ? t : ticks[1] - ticks[0]));
  return out;
}

using Labels = std::vector<std::string>;

TEST(SvgPlot, NiceTicksCoverTheRangeWithRoundSteps) {
  EXPECT_EQ(
      labels(nice_ticks(0, 2000, 8), false),
      (Labels{"0", "200", "400", "600", "800", "1000", "1200", "1400", "1600", "1800", "2000"}));
  EXPECT_EQ(labels(nice_ticks(1.43, 4.27, 5), false),
            (Labels{"1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5"}));
  EXPECT_EQ(labels(nice_ticks(0.1, 0.3, 2), false), (Labels{"0.1", "0.2", "0.3"}));
  EXPECT_EQ(labels(nice_ticks(3e-4, 3e-3, 3), false), (Labels{"0", "0.001", "0.002", "0.003"}));
  EXPECT_EQ(labels(nice_ticks(3e-6, 3e-5, 3), false), (Labels{"0", "1e-5", "2e-5", "3e-5"}));
  EXPECT_EQ(labels(nice_ticks(-2.5, 7.5, 4), false), (Labels{"-4", "-2", "0", "2", "4", "6", "8"}));
  // A single value gets a range around it.
  const auto one = nice_ticks(2.5, 2.5, 5);
  EXPECT_LT(one.front(), 2.5);
  EXPECT_GT(one.back(), 2.5);
  EXPECT_GE(nice_ticks(0, 0, 5).size(), 2u);
}

TEST(SvgPlot, LogTicksArePowersOfTenOrOneTwoFive) {
  EXPECT_EQ(labels(log_ticks(2e-3, 3.0), true), (Labels{"0.001", "0.01", "0.1", "1", "10"}));
  EXPECT_EQ(labels(log_ticks(0.21, 0.48), true), (Labels{"0.2", "0.3", "0.4", "0.5"}));
  EXPECT_EQ(labels(log_ticks(1.5, 40), true), (Labels{"1", "2", "5", "10", "20", "50"}));
  // Eighteen decades: every third, still covering both ends.
  EXPECT_EQ(labels(log_ticks(1e-12, 1e6), true),
            (Labels{"1e-12", "1e-9", "1e-6", "0.001", "1", "1000", "1e6"}));
  EXPECT_EQ(log_ticks(5.0, 5.0).size() >= 2, true);
}

TEST(SvgPlot, EscapesTextAndReplacesBrokenUtf8) {
  EXPECT_EQ(svg_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(svg_escape("x\x01y\tz"), "xy z");
  EXPECT_EQ(svg_escape("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(svg_escape("bad\xff\xc3"), "bad\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(SvgPlot, NanBreaksTheLineAndALonePointIsADot) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  PlotFigure fig{
      "t",
      "step",
      {{"y",
        false,
        1.0,
        {{"s", {{1, 1}, {2, 2}, {3, nan}, {4, 3}, {5, 4}, {6, nan}, {7, 5}}, true, false}},
        ""}}};
  const std::string svg = render_svg(fig);
  const size_t at = svg.find("<path d=\"");
  ASSERT_NE(at, std::string::npos);
  const std::string d = svg.substr(at, svg.find('"', at + 9) - at);
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 2) << d;
  EXPECT_EQ(std::count(d.begin(), d.end(), 'L'), 2) << d;
  EXPECT_NE(svg.find("<circle"), std::string::npos);  // step 7, alone after the gap
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);

  // A log axis leaves out values <= 0; an empty figure is still a document.
  fig.panels[0].log_y = true;
  fig.panels[0].series[0].points = {{1, 0.0}, {2, -1.0}};
  EXPECT_NE(render_svg(fig).find(">no data<"), std::string::npos);
  const std::string empty = render_svg(PlotFigure{});
  EXPECT_TRUE(empty.starts_with("<?xml"));
  EXPECT_TRUE(empty.ends_with("</svg>\n"));
}

TEST(SvgPlot, ManyPointsAreReducedPerPixelColumnKeepingSpikes) {
  PlotSeries s{"loss", {}, true, false};
  for (int i = 0; i < 100000; ++i) s.points.push_back({double(i), i == 50000 ? 100.0 : 1.0});
  const std::string svg = render_svg(PlotFigure{"t", "step", {{"loss", false, 1.0, {s}, ""}}});
  EXPECT_LT(svg.size(), 60000u);
  EXPECT_NE(svg.find(">100<"), std::string::npos);  // the spike still sets the axis
  // ... and is drawn: some point of the path is at the top of the plot area.
  const size_t at = svg.find("<path d=\"");
  const std::string d = svg.substr(at, svg.find('"', at + 9) - at);
  EXPECT_NE(d.find(" 46L"), std::string::npos) << d.substr(0, 400);
}

}  // namespace
}  // namespace toy::cli

// toy plot: training curves from a --metrics file as an SVG a browser shows.
//
//   toy plot METRICS.jsonl -o loss.svg [--title T] [--smooth W]
//   toy plot METRICS.jsonl --grads -o grads.svg [--max-lines N]
//
// The loss plot has train and validation loss above and the learning rate below; --grads
// plots the global and per-tensor gradient norms on a log axis (from the "tensors" objects
// that --metrics-every adds). The file is read and checked completely before the output is
// written, atomically, so a bad input leaves no file behind.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "cli/svg_plot.h"
#include "cli/training_plots.h"

namespace toy::cli {

int run_plot(int argc, char** argv) {
  CommandLine cl("plot",
                 "Draw the loss and learning rate (or with --grads the gradient norms) of a "
                 "toy train --metrics file as an SVG.");
  CLI::App& app = cl.app();
  std::string input, out_path, title;
  bool grads = false;
  int max_lines = 10;
  double smoothing = -1.0;
  app.add_option("metrics", input, "the JSON-lines file toy train --metrics wrote ('-': stdin)")
      ->required();
  app.add_option("-o,--output", out_path, "the SVG file to write")->required();
  app.add_flag("--grads", grads, "plot per-tensor gradient norms (log scale) instead of the loss");
  app.add_option("--title", title, "the plot's title (default: the metrics file's name)");
  app.add_option("--max-lines", max_lines,
                 "--grads: at most this many tensor lines; more tensors are combined per layer, "
                 "then the largest kept")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--smooth", smoothing,
                 "weight of the exponential moving average drawn over the train loss, in [0, 1) "
                 "(0: none; default: from the number of steps, none below 100)")
      ->check(in_range(0, 1, false, /*hi_open=*/true));
  if (!cl.parse(argc, argv)) return 0;

  const NamedPath in{"input", input};
  check_output({"-o", out_path}, {in});
  if (input != "-") check_input_file(in);
  const std::string text = read_input_text(in);
  const std::string name = input == "-" ? "stdin" : input;
  if (text.empty()) fail(name, ": the file is empty");
  const MetricsLog log = parse_metrics(text, name);
  if (title.empty()) title = (grads ? "gradient norms: " : "training loss: ") + name;
  const std::string svg =
      render_svg(grads ? grads_figure(log, title, max_lines) : loss_figure(log, title, smoothing));
  write_output_file(out_path, svg.data(), svg.size());
  std::fprintf(stderr, "plot: %zu steps from %s; wrote %s\n", log.steps.size(), name.c_str(),
               out_path.c_str());
  return 0;
}

}  // namespace toy::cli

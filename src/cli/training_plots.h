// Training curves as SVG: the loss plot (train and validation loss, learning rate) and the
// per-tensor gradient-norm plot, built from the records `toy train --metrics` writes —
// either read back from the JSON-lines file (`toy plot`) or collected from a run's own step
// reports (`toy train --plot`, which works without --metrics).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/svg_plot.h"
#include "train/trainer.h"

namespace toy::cli {

// One step of a run: the fields the plots use (NaN where absent or null).
struct MetricsStep {
  int64_t step = 0;
  double loss, val_loss, lr, grad_norm;
  std::vector<std::pair<std::string, double>> tensor_grad_norms;  // GGUF name, ‖g‖
  MetricsStep();
};

struct MetricsLog {
  std::vector<MetricsStep> steps;  // increasing step
  // The {"final": true} line: whole-split validation loss after the last step.
  int64_t final_step = -1;
  double final_train_loss, final_val_loss;
  MetricsLog();

  // Appends a step. A step at or before the last one means the run was resumed from an
  // earlier checkpoint and logged those steps again: the later records are dropped, as
  // TensorBoard purges orphaned events.
  void add(MetricsStep step);
  void set_final(int64_t step, double train_loss, double val_loss);
};

// Parses a --metrics file. Errors name `path` and the line: a line that is not JSON or not an
// object, a field of the wrong type, a file without any step record. Objects without
// "step" (other record kinds sharing the file) are skipped.
MetricsLog parse_metrics(std::string_view text, const std::string& path);

MetricsStep metrics_step(const train::StepReport& report);

// Loss (train, validation, final validation) above, learning rate below. `smoothing` in
// [0, 1) adds an EMA of the train loss over the raw curve (drawn faintly), as TensorBoard
// does; < 0 picks one from the number of steps (none below 100 steps).
PlotFigure loss_figure(const MetricsLog& log, const std::string& title, double smoothing);
// Gradient norms on a log axis: the global norm and one line per tensor; more than
// `max_lines` tensors are combined per layer (the norm over blk.N.*), and if that is still
// too many the `max_lines` largest by their last value are drawn. The legend says which.
PlotFigure grads_figure(const MetricsLog& log, const std::string& title, int max_lines = 10);

// --plot / --plot-grads during `toy train` and `toy finetune`: keeps the run's step reports
// and writes the SVGs atomically when asked (at each --save-every and at the end).
class TrainingPlots {
 public:
  TrainingPlots(std::string loss_path, std::string grads_path, std::string title);
  bool active() const { return !loss_path_.empty() || !grads_path_.empty(); }
  // A resumed run starts its curves with the steps its --metrics file already holds up to
  // `step` (a missing or unreadable file is skipped: the plot then starts at the resume).
  void resume_from(const std::string& metrics_path, int64_t step);
  void add(const train::StepReport& report);
  void set_final(int64_t step, double train_loss, double val_loss);
  void write() const;

  // While alive, an error that stops the run (a loss that is not finite, an interrupted
  // read) still writes the plots on the way out: the curve up to the failure is what one
  // wants to see then. Nothing is thrown from it; a failed write is only reported.
  class WriteOnError {
   public:
    explicit WriteOnError(const TrainingPlots& plots);
    ~WriteOnError();
    WriteOnError(const WriteOnError&) = delete;
    WriteOnError& operator=(const WriteOnError&) = delete;

   private:
    const TrainingPlots& plots_;
    int exceptions_;
  };

 private:
  std::string loss_path_, grads_path_, title_;
  MetricsLog log_;
};

}  // namespace toy::cli

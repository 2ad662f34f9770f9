// The LoRA flags every command that runs a model shares (generate, chat, logits,
// perplexity, merge): --lora FILE (repeatable), --lora-scale S (the k-th applies to the
// k-th --lora, default 1), and llama.cpp's --lora-scaled FILE S.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/files.h"
#include "model/lora.h"
#include "model/model.h"

namespace toy::cli {

class LoraOptions {
 public:
  explicit LoraOptions(CommandLine& cl);

  // After parsing: refuses more --lora-scale values than --lora files, and adapter files that
  // are missing or unreadable — before the model is loaded.
  void check() const;
  bool given() const { return !files_.empty() || !scaled_.empty(); }
  // The adapter files, for check_output (an output must not overwrite one).
  std::vector<NamedPath> inputs() const;
  // Loads and validates every adapter against `model`; the set refers to the model's weights.
  LoraSet load(const Model& model) const;

 private:
  struct Entry {
    std::string path;
    double scale;
  };
  std::vector<Entry> entries() const;

  std::vector<std::string> files_;
  std::vector<double> scales_;
  std::vector<std::string> scaled_;  // FILE SCALE pairs, flattened
};

}  // namespace toy::cli

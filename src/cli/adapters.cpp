#include "cli/adapters.h"

#include <cmath>
#include <cstdlib>

namespace toy::cli {

LoraOptions::LoraOptions(CommandLine& cl) {
  CLI::App& app = cl.app();
  app.add_option("--lora", files_,
                 "LoRA adapter GGUF (llama.cpp's format) added to the model; repeat for several")
      ->type_name("FILE")
      ->allow_extra_args(false);
  app.add_option("--lora-scale", scales_,
                 "scale of the adapter of the same position among the --lora flags (default 1)")
      ->type_name("S")
      ->allow_extra_args(false)
      ->check(finite());
  app.add_option("--lora-scaled", scaled_, "a LoRA adapter with its scale (llama.cpp's flag)")
      ->type_name("FILE S")
      ->type_size(2)
      ->allow_extra_args(false);
}

std::vector<LoraOptions::Entry> LoraOptions::entries() const {
  std::vector<Entry> out;
  for (size_t i = 0; i < files_.size(); ++i)
    out.push_back({files_[i], i < scales_.size() ? scales_[i] : 1.0});
  for (size_t i = 0; i + 1 < scaled_.size(); i += 2) {
    const std::string& text = scaled_[i + 1];
    char* end = nullptr;
    const double scale = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(scale))
      usage_error("--lora-scaled ", scaled_[i], ": expected a finite scale, got '", text, "'");
    out.push_back({scaled_[i], scale});
  }
  return out;
}

void LoraOptions::check() const {
  if (scales_.size() > files_.size())
    usage_error("--lora-scale is given ", scales_.size(), " times but --lora only ", files_.size(),
                " (each scale applies to the --lora of the same position)");
  for (const Entry& e : entries()) check_input_file({"--lora", e.path});
}

std::vector<NamedPath> LoraOptions::inputs() const {
  std::vector<NamedPath> out;
  for (const Entry& e : entries()) out.push_back({"--lora", e.path});
  return out;
}

LoraSet LoraOptions::load(const Model& model) const {
  LoraSet set;
  for (const Entry& e : entries())
    set.add(std::make_shared<const LoraAdapter>(LoraAdapter::load(e.path, model)),
            static_cast<float>(e.scale), model);
  return set;
}

}  // namespace toy::cli

// Model: a config and its weights, loaded from a GGUF file whose mapping the
// weights point into (nothing is copied or dequantized at load).
#pragma once

#include <memory>
#include <string>

#include "model/config.h"
#include "model/weights.h"

namespace toy {
namespace gguf {
class File;
}

struct Model {
  std::shared_ptr<const gguf::File> file;  // keeps the mapping alive; null for in-memory models
  ModelConfig config;
  Weights weights;

  // Opens, validates and maps `path`. Throws toy::Error naming the file and the
  // key or tensor at fault (a missing or mis-shaped tensor names its expected shape).
  static Model load(const std::string& path);
  // Binds the weights of an already-open file.
  static Model from_file(std::shared_ptr<const gguf::File> file);
};

}  // namespace toy

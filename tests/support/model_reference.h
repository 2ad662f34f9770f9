// The llama.cpp reference outputs of a model fixture (../shared/fixtures/models)
// and the fixture tolerance check (fixtures/README.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace toy::testing {

struct Reference {
  std::string file;  // the .ref.json it came from
  int64_t n_vocab = 0;
  std::vector<int32_t> tokens;  // prompt
  std::vector<int32_t> greedy;  // greedy continuation
  std::vector<float> logits;    // (tokens.size(), n_vocab)
};

// One reference by its fixture-relative .ref.json path ("lora/llama-lora.ref.json").
Reference load_reference(const std::string& relative_json);
// The plain reference of `name` and, when present, the `.exact` one (in that order).
std::vector<Reference> load_references(const std::string& name);

struct Closeness {
  double max_abs = 0, rms = 0;          // of ours - ref
  double max_limit = 0, rms_limit = 0;  // 1e-3·max(1, max|ref|), 1e-4·max(1, rms(ref))
  bool ok() const { return max_abs <= max_limit && rms <= rms_limit; }
};
Closeness compare_logits(const std::vector<float>& ours, const std::vector<float>& ref);

}  // namespace toy::testing

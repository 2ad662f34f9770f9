#include "support/model_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "support/fixtures.h"

namespace toy::testing {
namespace {

Reference load_one(const std::string& json_path) {
  const auto json = nlohmann::json::parse(read_text(json_path));
  Reference r;
  r.file = json_path;
  r.n_vocab = json.at("n_vocab").get<int64_t>();
  r.tokens = json.at("tokens").get<std::vector<int32_t>>();
  r.greedy = json.at("greedy").get<std::vector<int32_t>>();
  // The logits file sits beside its .ref.json (models/, lora/).
  const std::string dir = std::filesystem::path(json_path).parent_path().string();
  const auto bytes = read_bytes(dir + "/" + json.at("logits_file").get<std::string>());
  if (bytes.size() != r.tokens.size() * static_cast<size_t>(r.n_vocab) * sizeof(float))
    throw std::runtime_error("logits file of " + json_path + " has the wrong size");
  r.logits.resize(bytes.size() / sizeof(float));
  std::memcpy(r.logits.data(), bytes.data(), bytes.size());
  return r;
}

}  // namespace

Reference load_reference(const std::string& relative_json) {
  return load_one(fixture_path(relative_json));
}

std::vector<Reference> load_references(const std::string& name) {
  std::vector<Reference> refs;
  refs.push_back(load_one(fixture_path("models/" + name + ".ref.json")));
  const std::string exact = fixture_path("models/" + name + ".exact.ref.json");
  if (std::filesystem::exists(exact)) refs.push_back(load_one(exact));
  return refs;
}

Closeness compare_logits(const std::vector<float>& ours, const std::vector<float>& ref) {
  Closeness c;
  if (ours.size() != ref.size() || ref.empty()) {
    c.max_abs = c.rms = INFINITY;
    return c;
  }
  double ref_max = 0, ref_sq = 0, diff_sq = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(ours[i]) - double(ref[i]);
    c.max_abs = std::max(c.max_abs, std::isnan(d) ? INFINITY : std::abs(d));
    diff_sq += d * d;
    ref_max = std::max(ref_max, std::abs(double(ref[i])));
    ref_sq += double(ref[i]) * double(ref[i]);
  }
  const double n = double(ref.size());
  c.rms = std::sqrt(diff_sq / n);
  c.max_limit = 1e-3 * std::max(1.0, ref_max);
  c.rms_limit = 1e-4 * std::max(1.0, std::sqrt(ref_sq / n));
  return c;
}

}  // namespace toy::testing

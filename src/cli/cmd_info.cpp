// toy info FILE [--json] [--full]: what is inside a GGUF file — its version,
// every metadata key, a table of tensors and the totals.
//
// Long arrays are abbreviated like gguf-dump: the text output shows the first 5
// elements then "... (N elements)"; the JSON output gives every array as
// {"type": "array", "element_type", "length", "value": [first 16 elements],
// "truncated": true when cut} (an array nested in an array appears as
// {"element_type", "length", "value"}). --full prints every element (and whole
// strings, which the text output otherwise cuts at 200 bytes). --check decodes
// every tensor instead and reports NaN / infinity (exit 1 when found).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "quant/quant.h"

namespace toy::cli {
namespace {

using gguf::ValueRef;
using gguf::ValueType;
using Json = nlohmann::ordered_json;  // keeps metadata in file order

constexpr uint64_t kTextArrayPreview = 5;
constexpr uint64_t kJsonArrayPreview = 16;
constexpr size_t kTextStringPreview = 200;

// Shortest decimal that reads back as the same float ("1e-05", not "9.99999974737875e-06").
std::string float_text(float v) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, result.ptr);
}

std::string double_text(double v) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, result.ptr);
}

// A string as a quoted literal with control bytes escaped, cut at `limit` bytes.
std::string quoted(std::string_view s, size_t limit) {
  std::string out = "\"";
  for (size_t i = 0; i < std::min(s.size(), limit); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (s.size() > limit) out += str("... (", s.size(), " bytes)");
  return out;
}

std::string type_text(const ValueRef& v) {
  if (v.type() != ValueType::ARRAY) return std::string(gguf::value_type_name(v.type()));
  return str("array[", gguf::value_type_name(v.array_type()), "]");
}

std::string value_text(const ValueRef& v, bool full) {
  switch (v.type()) {
    case ValueType::F32:
      return float_text(v.f32());
    case ValueType::F64:
      return double_text(v.f64());
    case ValueType::BOOL:
      return v.boolean() ? "true" : "false";
    case ValueType::STRING:
      return quoted(v.string(), full ? SIZE_MAX : kTextStringPreview);
    case ValueType::U64:
      return std::to_string(v.u64());
    case ValueType::ARRAY:
      break;
    default:
      return std::to_string(v.integer());
  }
  uint64_t n = v.array_size();
  uint64_t shown = full ? n : std::min(n, kTextArrayPreview);
  std::string out = "[";
  for (uint64_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    out += value_text(v.at(i), full);  // nesting depth is capped by the reader
  }
  if (shown < n) out += str(shown ? ", " : "", "... (", n, " elements)");
  return out + "]";
}

Json value_json(const ValueRef& v, bool full) {
  switch (v.type()) {
    case ValueType::F32:
      return std::stod(float_text(v.f32()));
    case ValueType::F64:
      return v.f64();
    case ValueType::BOOL:
      return v.boolean();
    case ValueType::STRING:
      return std::string(v.string());
    case ValueType::U64:
      return v.u64();
    case ValueType::ARRAY:
      break;
    default:
      return v.integer();
  }
  uint64_t n = v.array_size();
  uint64_t shown = full ? n : std::min(n, kJsonArrayPreview);
  Json items = Json::array();
  for (uint64_t i = 0; i < shown; ++i) {
    ValueRef item = v.at(i);
    items.push_back(item.type() == ValueType::ARRAY
                        ? Json{{"element_type", gguf::value_type_name(item.array_type())},
                               {"length", item.array_size()},
                               {"value", value_json(item, full)}}
                        : value_json(item, full));
  }
  return items;
}

struct Totals {
  uint64_t parameters = 0;
  uint64_t bytes = 0;
  double bits_per_weight() const {
    return parameters ? 8.0 * static_cast<double>(bytes) / static_cast<double>(parameters) : 0.0;
  }
};

Totals totals_of(const gguf::File& file) {
  Totals totals;
  for (const gguf::TensorInfo& t : file.tensors()) {
    totals.parameters += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    totals.bytes += t.bytes;
  }
  return totals;
}

std::string shape_text(const gguf::TensorInfo& t) {
  std::string out = "[";
  for (int d = 0; d < t.n_dims; ++d) out += str(d ? ", " : "", t.ne[d]);
  return out + "]";
}

void print_text(const gguf::File& file, bool full) {
  std::printf("%s: GGUF version %u, %zu bytes, alignment %llu, data section at byte %llu\n",
              file.path().c_str(), file.version(), file.file_size(),
              static_cast<unsigned long long>(file.alignment()),
              static_cast<unsigned long long>(file.data_offset()));
  std::printf("\nmetadata: %zu keys\n", file.metadata_count());
  size_t key_width = 0;
  for (size_t i = 0; i < file.metadata_count(); ++i)
    key_width = std::max(key_width, file.metadata(i).key().size());
  for (size_t i = 0; i < file.metadata_count(); ++i) {
    ValueRef v = file.metadata(i);
    std::printf("  %-*s  %-14s %s\n", static_cast<int>(key_width), std::string(v.key()).c_str(),
                type_text(v).c_str(), value_text(v, full).c_str());
  }
  const auto& tensors = file.tensors();
  std::printf("\ntensors: %zu\n", tensors.size());
  if (!tensors.empty()) {
    size_t name_width = 4;
    for (const auto& t : tensors) name_width = std::max(name_width, t.name.size());
    std::printf("  %5s  %-*s  %-7s  %-24s  %12s  %12s\n", "#", static_cast<int>(name_width), "name",
                "type", "shape", "offset", "bytes");
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      std::printf("  %5zu  %-*s  %-7s  %-24s  %12llu  %12llu\n", i, static_cast<int>(name_width),
                  std::string(t.name).c_str(), std::string(dtype_name(t.type)).c_str(),
                  shape_text(t).c_str(), static_cast<unsigned long long>(t.offset),
                  static_cast<unsigned long long>(t.bytes));
    }
  }
  Totals totals = totals_of(file);
  std::printf("\ntotals: %llu parameters, %llu bytes of tensor data, %.4f bits per weight\n",
              static_cast<unsigned long long>(totals.parameters),
              static_cast<unsigned long long>(totals.bytes), totals.bits_per_weight());
}

void print_json(const gguf::File& file, bool full) {
  Json out;
  out["file"] = file.path();
  out["version"] = file.version();
  out["alignment"] = file.alignment();
  out["data_offset"] = file.data_offset();
  out["file_size"] = file.file_size();
  Json metadata = Json::object();
  for (size_t i = 0; i < file.metadata_count(); ++i) {
    ValueRef v = file.metadata(i);
    Json entry{{"type", gguf::value_type_name(v.type())}};
    if (v.type() == ValueType::ARRAY) {
      entry["element_type"] = gguf::value_type_name(v.array_type());
      entry["length"] = v.array_size();
    }
    entry["value"] = value_json(v, full);
    if (v.type() == ValueType::ARRAY) entry["truncated"] = entry["value"].size() < v.array_size();
    metadata[std::string(v.key())] = std::move(entry);
  }
  out["metadata"] = std::move(metadata);
  Json tensors = Json::array();
  for (const auto& t : file.tensors())
    tensors.push_back({{"name", t.name},
                       {"type", dtype_name(t.type)},
                       {"shape", std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)},
                       {"offset", t.offset},
                       {"bytes", t.bytes}});
  out["tensors"] = std::move(tensors);
  Totals totals = totals_of(file);
  out["totals"] = {{"tensors", file.tensors().size()},
                   {"parameters", totals.parameters},
                   {"bytes", totals.bytes},
                   {"bits_per_weight", totals.bits_per_weight()}};
  // Metadata strings are not guaranteed UTF-8; invalid bytes become U+FFFD rather than failing.
  std::string text = out.dump(2, ' ', false, Json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
}

// --check: every tensor's values, dequantized row by row, must be finite. Reports each tensor
// holding NaN or infinity with its first bad element; returns how many do.
int check_values(const gguf::File& file) {
  int bad = 0, skipped = 0;
  std::vector<float> row;
  for (const gguf::TensorInfo& info : file.tensors()) {
    if (!quant::can_dequantize(info.type)) {
      ++skipped;
      continue;
    }
    const Tensor t = file.tensor(info);
    const int64_t n = info.ne[0];
    row.resize(static_cast<size_t>(n));
    bool found = false;
    for (int64_t r = 0; r < t.rows() && !found; ++r) {
      quant::dequantize_row(info.type, t.row(r), row.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        if (std::isfinite(row[static_cast<size_t>(i)])) continue;
        std::printf("check: %s (%s): %s at element %lld (row %lld, column %lld)\n",
                    printable(info.name).c_str(), std::string(dtype_name(info.type)).c_str(),
                    std::isnan(row[static_cast<size_t>(i)]) ? "NaN" : "infinity",
                    static_cast<long long>(r * n + i), static_cast<long long>(r),
                    static_cast<long long>(i));
        found = true;
        break;
      }
    }
    bad += found ? 1 : 0;
  }
  const size_t checked = file.tensors().size() - static_cast<size_t>(skipped);
  if (bad == 0) {
    std::printf("check: all %zu tensors hold finite values", checked);
  } else {
    std::printf("check: %d of %zu tensors hold NaN or infinity", bad, checked);
  }
  if (skipped) std::printf(" (%d of a type toy cannot decode were not checked)", skipped);
  std::printf("\n");
  return bad;
}

}  // namespace

int run_info(int argc, char** argv) {
  CommandLine cl("info", "Print a GGUF file's version, metadata, tensors and totals.");
  CLI::App& app = cl.app();
  std::string path;
  bool json = false, full = false, check = false;
  app.add_option("FILE", path, "the GGUF file")->required();
  app.add_flag("--json", json, "print one JSON object instead of text");
  app.add_flag("--full", full, "print arrays and strings in full instead of abbreviated");
  app.add_flag("--check", check,
               "instead: decode every tensor and report those holding NaN or infinity (with the "
               "first bad element); exit 1 if any does");
  if (!cl.parse(argc, argv)) return 0;
  std::shared_ptr<gguf::File> file = gguf::File::open(path);
  if (check) return check_values(*file) == 0 ? 0 : 1;
  if (json) {
    print_json(*file, full);
  } else {
    print_text(*file, full);
  }
  return 0;
}

}  // namespace toy::cli

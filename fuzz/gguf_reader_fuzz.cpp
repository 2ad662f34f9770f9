// libFuzzer target for the GGUF reader. Any input must either be rejected with a
// toy::Error or be fully readable: every getter, array accessor and tensor view
// on an accepted file may throw only ordinary type/range errors, never crash,
// never fail an internal check, and never read outside the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "gguf/reader.h"

namespace {

using toy::gguf::File;
using toy::gguf::TensorInfo;
using toy::gguf::ValueRef;
using toy::gguf::ValueType;

volatile uint64_t g_sink;  // keeps the reads from being optimized away
constexpr uint64_t kWholeArrayLimit = 4096;

// TOY_CHECK failures start with "internal error"; input errors start with the file name (and may
// quote keys from the input, which can contain any text).
bool is_internal(const toy::Error& e) {
  return std::string_view(e.what()).starts_with("internal error");
}

// Runs `fn`, accepting a toy::Error that reports bad usage (a type or range mismatch) but
// aborting on an internal-invariant failure, which would be a bug in the reader.
template <typename Fn>
void tolerate_errors(Fn fn) {
  try {
    fn();
  } catch (const toy::Error& e) {
    if (is_internal(e)) {
      std::fprintf(stderr, "internal check failed: %s\n", e.what());
      std::abort();
    }
  }
}

void touch(std::string_view s) {
  if (!s.empty())
    g_sink = g_sink + static_cast<uint8_t>(s.front()) + static_cast<uint8_t>(s.back());
}

// Every scalar getter (exactly one matches a scalar type), integer/number conversions.
void read_scalar(const ValueRef& v) {
  tolerate_errors([&] { g_sink = g_sink + v.u8(); });
  tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(v.i8()); });
  tolerate_errors([&] { g_sink = g_sink + v.u16(); });
  tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(v.i16()); });
  tolerate_errors([&] { g_sink = g_sink + v.u32(); });
  tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(v.i32()); });
  tolerate_errors([&] { g_sink = g_sink + v.u64(); });
  tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(v.i64()); });
  tolerate_errors([&] { g_sink = g_sink + (v.f32() > 0); });
  tolerate_errors([&] { g_sink = g_sink + (v.f64() > 0); });
  tolerate_errors([&] { g_sink = g_sink + v.boolean(); });
  tolerate_errors([&] { touch(v.string()); });
  tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(v.integer()); });
  tolerate_errors([&] { g_sink = g_sink + (v.number() > 0); });
}

// Array accessors, the first/last elements, and (bounded) descent into nested arrays.
void read_value(const ValueRef& v, int depth) {
  read_scalar(v);
  if (v.type() != ValueType::ARRAY || depth > 16) return;
  uint64_t n = v.array_size();
  g_sink = g_sink + static_cast<uint64_t>(v.array_type());
  // Whole-array copies of a real vocabulary (50k+ strings) would dominate every run on a fixture
  // seed; the parser has validated those bytes already, so they are copied only when small.
  if (n <= kWholeArrayLimit) {
    tolerate_errors([&] { g_sink = g_sink + v.strings().size(); });
    tolerate_errors([&] { g_sink = g_sink + v.f32s().size(); });
    tolerate_errors([&] { g_sink = g_sink + v.i32s().size(); });
    tolerate_errors([&] { g_sink = g_sink + v.u32s().size(); });
    (void)v.to_value();  // must succeed on any accepted file
  }
  tolerate_errors([&] { v.at(n); });  // out of range: must throw, not read
  if (n == 0) return;
  read_value(v.at(0), depth + 1);
  read_value(v.at(n - 1), depth + 1);
}

void exercise(const File& file) {
  for (size_t i = 0; i < file.metadata_count(); ++i) {
    ValueRef v = file.metadata(i);
    read_value(v, 0);
    if (v.type() != ValueType::ARRAY) (void)v.to_value();  // must succeed on any accepted file
    std::string key(v.key());
    if (!file.has(key)) std::abort();  // every key in the file can be found
    tolerate_errors([&] { g_sink = g_sink + file.get_u32(key); });
    tolerate_errors([&] { g_sink = g_sink + (file.get_f32(key) > 0); });
    tolerate_errors([&] { g_sink = g_sink + file.get_bool(key); });
    tolerate_errors([&] { touch(file.get_string(key)); });
    tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(file.get_integer(key)); });
    tolerate_errors([&] { g_sink = g_sink + static_cast<uint64_t>(file.get_integer_or(key, 0)); });
    tolerate_errors([&] { g_sink = g_sink + (file.get_number_or(key, 0) > 0); });
    tolerate_errors([&] { g_sink = g_sink + file.get_bool_or(key, false); });
    tolerate_errors([&] { g_sink = g_sink + file.get_string_or(key, "").size(); });
  }
  tolerate_errors([&] { file.get("fuzz.absent.key"); });
  for (const TensorInfo& info : file.tensors()) {
    if (file.find_tensor(info.name) == nullptr) std::abort();
    toy::Tensor t = file.tensor(info);
    if (t.bytes() != info.bytes || !t.contiguous()) std::abort();
    const auto* bytes = static_cast<const uint8_t*>(t.data);
    g_sink = g_sink + bytes[0] + bytes[info.bytes - 1];
  }
  tolerate_errors([&] { file.tensor("fuzz.absent.tensor"); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<File> file;
  try {
    file = File::from_memory(data, size, "fuzz-input.gguf");
  } catch (const toy::Error& e) {
    if (is_internal(e)) std::abort();
    return 0;
  }
  exercise(*file);
  return 0;
}

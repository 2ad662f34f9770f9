// The validating GGUF parser: nothing in a file is trusted until it is checked
// here, with overflow-safe arithmetic (every "a + b <= size" is written as
// "b <= size - a" after checking a <= size).
#include "gguf/parser.h"

#include <algorithm>
#include <array>
#include <limits>
#include <numeric>

#include "core/dtype.h"
#include "core/error.h"
#include "gguf/reader.h"

namespace toy::gguf {
namespace detail {
namespace {

[[noreturn]] void fail_value(const std::string& path, uint64_t offset, std::string_view key,
                             const std::string& problem) {
  fail(path, ": byte offset ", offset, ": metadata key '", key, "': ", problem);
}

void check_bools(const std::string& path, const uint8_t* base, uint64_t offset, uint64_t count,
                 std::string_view key) {
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t b = base[offset + i];
    if (b > 1)
      fail_value(path, offset + i, key,
                 str("expected a bool (0 or 1), found ", static_cast<unsigned>(b)));
  }
}

}  // namespace

uint64_t value_end(const std::string& path, const uint8_t* base, uint64_t size, uint64_t offset,
                   ValueType type, std::string_view key) {
  struct Frame {
    ValueType element_type;
    uint64_t remaining;  // elements of this array not walked yet
  };
  std::array<Frame, kMaxArrayDepth> stack;
  int depth = 0;
  uint64_t pos = offset;
  ValueType current = type;
  auto need = [&](uint64_t bytes, std::string_view what) {
    if (pos > size || bytes > size - pos)
      fail_value(path, pos, key,
                 str("expected ", bytes, " bytes of ", what, ", but only ",
                     pos > size ? 0 : size - pos, " bytes are left in the file (truncated?)"));
  };
  for (;;) {
    // Walk one value of type `current` at `pos`.
    if (current == ValueType::STRING) {
      need(8, "string length");
      uint64_t length = load<uint64_t>(base + pos);
      if (length > size - pos - 8)
        fail_value(path, pos, key,
                   str("string length ", length, " exceeds the ", size - pos - 8,
                       " bytes left in the file"));
      pos += 8 + length;
    } else if (current == ValueType::ARRAY) {
      if (depth == kMaxArrayDepth)
        fail_value(path, pos, key,
                   str("arrays nested deeper than ", kMaxArrayDepth, " levels are not supported"));
      need(kArrayHeaderBytes, "array header (element type and count)");
      uint32_t raw_element = load<uint32_t>(base + pos);
      uint64_t count = load<uint64_t>(base + pos + 4);
      if (!is_known_value_type(raw_element))
        fail_value(path, pos, key,
                   str("unknown array element type ", raw_element, ", expected 0..12"));
      auto element = static_cast<ValueType>(raw_element);
      pos += kArrayHeaderBytes;
      uint64_t left = size - pos;
      size_t element_size = value_type_size(element);
      // Even an empty string or array element takes 8 or 12 bytes, so a count is checked against
      // the bytes left before anything is walked.
      uint64_t min_element = element_size                   ? element_size
                             : element == ValueType::STRING ? 8
                                                            : kArrayHeaderBytes;
      if (count > left / min_element)
        fail_value(
            path, pos - 8, key,
            str("array of ", count, " ", value_type_name(element), " elements needs at least ",
                min_element, " bytes each, but only ", left, " bytes are left in the file"));
      if (element_size) {
        if (element == ValueType::BOOL) check_bools(path, base, pos, count, key);
        pos += count * element_size;
      } else {
        stack[depth++] = {element, count};
      }
    } else {
      size_t bytes = value_type_size(current);
      need(bytes, value_type_name(current));
      if (current == ValueType::BOOL) check_bools(path, base, pos, 1, key);
      pos += bytes;
    }
    // Pick the next element of the innermost unfinished array, or finish.
    for (;;) {
      if (depth == 0) return pos;
      Frame& frame = stack[depth - 1];
      if (frame.remaining == 0) {
        --depth;
        continue;
      }
      --frame.remaining;
      current = frame.element_type;
      break;
    }
  }
}

}  // namespace detail

using detail::load;

void Parser::need(uint64_t bytes, std::string_view what) const {
  if (bytes > left())
    fail(file_.path_, ": byte offset ", pos_, ": expected ", bytes, " bytes of ", what,
         ", but only ", left(), " bytes are left in the file (truncated?)");
}

uint32_t Parser::read_u32(std::string_view what) {
  need(4, what);
  uint32_t value = load<uint32_t>(base_ + pos_);
  pos_ += 4;
  return value;
}

uint64_t Parser::read_u64(std::string_view what) {
  need(8, what);
  uint64_t value = load<uint64_t>(base_ + pos_);
  pos_ += 8;
  return value;
}

std::string_view Parser::read_string(std::string_view what) {
  uint64_t start = pos_;
  uint64_t length = read_u64(what);
  if (length > left())
    fail(file_.path_, ": byte offset ", start, ": ", what, " length ", length, " exceeds the ",
         left(), " bytes left in the file");
  std::string_view s(reinterpret_cast<const char*>(base_ + pos_), length);
  pos_ += length;
  return s;
}

void Parser::run() {
  base_ = file_.base_;
  size_ = file_.size_;
  read_header();
  read_metadata();
  read_alignment();
  read_tensor_infos();
  check_tensor_data();
}

void Parser::read_header() {
  const std::string& path = file_.path_;
  if (size_ == 0)
    fail(path, ": the file is empty (0 bytes); expected a GGUF file starting with magic \"GGUF\"");
  static constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
  if (size_ < 4 || std::memcmp(base_, kMagic, 4) != 0) {
    std::string found;
    for (uint64_t i = 0; i < std::min<uint64_t>(size_, 4); ++i) {
      static constexpr char kHex[] = "0123456789abcdef";
      if (i) found += ' ';
      found += kHex[base_[i] >> 4];
      found += kHex[base_[i] & 15];
    }
    fail(path, ": byte offset 0: not a GGUF file: expected magic \"GGUF\" (47 47 55 46), found ",
         found, size_ < 4 ? str(" (the file has only ", size_, " bytes)") : "");
  }
  pos_ = 4;
  uint32_t version = read_u32("GGUF version");
  if (version == 1)
    fail(path,
         ": byte offset 4: GGUF version 1 is not supported (it used 32-bit counts and "
         "lengths); expected version 2 or 3 - re-convert the model with a current llama.cpp");
  if (version == 0x02000000u || version == 0x03000000u)
    fail(path, ": byte offset 4: this is a big-endian GGUF file (version field ", version,
         "); only little-endian GGUF version 2 or 3 is supported");
  if (version != 2 && version != 3)
    fail(path, ": byte offset 4: unsupported GGUF version ", version, ", expected 2 or 3");
  file_.version_ = version;
  tensor_count_ = read_u64("tensor count");
  kv_count_ = read_u64("metadata key/value count");
  // Counts are checked against what could possibly fit, so nothing is sized from a wild count.
  uint64_t max_tensors = std::min<uint64_t>(left() / detail::kMinTensorInfoBytes,
                                            std::numeric_limits<uint32_t>::max());
  if (tensor_count_ > max_tensors)
    fail(path, ": byte offset 8: tensor count ", tensor_count_, " is impossible: the ", left(),
         " bytes after the header hold at most ", max_tensors, " tensor infos");
  uint64_t max_pairs =
      std::min<uint64_t>(left() / detail::kMinKeyValueBytes, std::numeric_limits<uint32_t>::max());
  if (kv_count_ > max_pairs)
    fail(path, ": byte offset 16: metadata key/value count ", kv_count_, " is impossible: the ",
         left(), " bytes after the header hold at most ", max_pairs, " key/value pairs");
}

void Parser::read_metadata() {
  const std::string& path = file_.path_;
  file_.entries_.reserve(kv_count_);  // <= left() / 14 pairs of 8 bytes each
  for (uint64_t i = 0; i < kv_count_; ++i) {
    uint64_t start = pos_;
    std::string what = str("key of metadata pair #", i);
    std::string_view key = read_string(what);
    if (key.empty()) fail(path, ": byte offset ", start, ": ", what, " is empty");
    uint64_t type_offset = pos_;
    uint32_t raw_type = read_u32(str("value type of metadata key '", key, "'"));
    if (!is_known_value_type(raw_type))
      fail(path, ": byte offset ", type_offset, ": metadata key '", key, "': unknown value type ",
           raw_type, ", expected 0..12");
    pos_ = detail::value_end(path, base_, size_, pos_, static_cast<ValueType>(raw_type), key);
    file_.entries_.push_back(start);
  }
  auto& sorted = file_.sorted_keys_;
  sorted.resize(file_.entries_.size());
  std::iota(sorted.begin(), sorted.end(), 0u);
  std::sort(sorted.begin(), sorted.end(),
            [&](uint32_t a, uint32_t b) { return file_.key_at(a) < file_.key_at(b); });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (file_.key_at(sorted[i - 1]) == file_.key_at(sorted[i])) {
      uint64_t first = file_.entries_[std::min(sorted[i - 1], sorted[i])];
      uint64_t second = file_.entries_[std::max(sorted[i - 1], sorted[i])];
      fail(path, ": byte offset ", second, ": duplicate metadata key '", file_.key_at(sorted[i]),
           "' (first defined at byte offset ", first, "); expected every key once");
    }
  }
}

void Parser::read_alignment() {
  std::optional<ValueRef> value = file_.find("general.alignment");
  if (!value) return;
  uint64_t offset = static_cast<uint64_t>(value->data_ - base_);
  if (value->type() != ValueType::U32)
    fail(file_.path_, ": byte offset ", offset,
         ": metadata key 'general.alignment': expected type u32, found ",
         value_type_name(value->type()));
  uint32_t alignment = value->u32();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail(file_.path_, ": byte offset ", offset,
         ": metadata key 'general.alignment': expected a non-zero power of two, found ", alignment);
  file_.alignment_ = alignment;
}

void Parser::read_tensor_infos() {
  const std::string& path = file_.path_;
  const uint64_t alignment = file_.alignment_;
  auto& tensors = file_.tensors_;
  tensors.reserve(tensor_count_);  // <= left() / 33 infos
  info_offsets_.reserve(tensor_count_);
  for (uint64_t i = 0; i < tensor_count_; ++i) {
    uint64_t start = pos_;
    std::string_view name = read_string(str("name of tensor #", i));
    if (name.empty()) fail(path, ": byte offset ", start, ": the name of tensor #", i, " is empty");
    auto bad = [&](auto&&... what) {
      fail(path, ": byte offset ", start, ": tensor '", name, "': ", what...);
    };
    uint32_t n_dims = read_u32(str("n_dims of tensor '", name, "'"));
    if (n_dims < 1 || n_dims > 4) bad("expected 1 to 4 dimensions, found n_dims = ", n_dims);
    TensorInfo info{};
    info.name = name;
    info.n_dims = static_cast<int>(n_dims);
    info.ne = {1, 1, 1, 1};
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = read_u64(str("dimension ", d, " of tensor '", name, "'"));
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad("dimension ", d, " must be between 1 and 2^63-1, found ", ne);
      if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne)
        bad("the element count overflows 64 bits at dimension ", d, " (ne[", d, "] = ", ne, ")");
      elements *= ne;
      info.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t raw_type = read_u32(str("type of tensor '", name, "'"));
    std::optional<DTypeInfo> dtype = dtype_info(raw_type);
    if (!dtype) bad("unknown ggml tensor type id ", raw_type);
    info.type = dtype->type;
    if (info.ne[0] % dtype->block_size != 0)
      bad("row length ne[0] = ", info.ne[0], " is not a multiple of the ", dtype->name,
          " block size ", dtype->block_size);
    uint64_t row_bytes = static_cast<uint64_t>(info.ne[0] / dtype->block_size) *
                         static_cast<uint64_t>(dtype->type_size);  // < 2^63 * 292 / 256
    uint64_t rows = elements / static_cast<uint64_t>(info.ne[0]);
    if (rows != 0 && row_bytes > std::numeric_limits<uint64_t>::max() / rows)
      bad("the byte size (", rows, " rows of ", row_bytes, " bytes) overflows 64 bits");
    info.bytes = row_bytes * rows;
    info.offset = read_u64(str("data offset of tensor '", name, "'"));
    if (info.offset % alignment != 0)
      bad("data offset ", info.offset, " is not a multiple of the alignment ", alignment);
    tensors.push_back(info);
    info_offsets_.push_back(start);
  }
  // The data section starts at the end of the infos, padded to the alignment (pos_ <= size_).
  uint64_t padding = (alignment - pos_ % alignment) % alignment;
  file_.data_offset_ = pos_ + padding;
  // A file without tensors may end before that padding (vocabulary-only files do); its empty
  // data section then starts at the end of the file.
  if (tensors.empty()) file_.data_offset_ = std::min<uint64_t>(file_.data_offset_, size_);
}

void Parser::check_tensor_data() {
  const std::string& path = file_.path_;
  const auto& tensors = file_.tensors_;
  if (tensors.empty()) return;  // a vocabulary-only file may end right after its metadata
  const uint64_t data_offset = file_.data_offset_;
  if (data_offset > size_)
    fail(path, ": byte offset ", size_, ": the data section should start at byte offset ",
         data_offset, " but the file ends at ", size_, " bytes (truncated?)");
  const uint64_t data_bytes = size_ - data_offset;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      fail(path, ": byte offset ", info_offsets_[i], ": tensor '", t.name, "': its ", t.bytes,
           " bytes of data at data offset ", t.offset, " (file offset ",
           t.offset <= std::numeric_limits<uint64_t>::max() - data_offset
               ? str(data_offset + t.offset)
               : std::string("beyond 2^64"),
           ") extend past the end of the file (", size_, " bytes)");
  }
  // Every name once, then no two tensors share data bytes. Sorting indices keeps the extra
  // bookkeeping to 4 bytes per tensor.
  std::vector<uint32_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return tensors[a].name < tensors[b].name; });
  for (size_t i = 1; i < order.size(); ++i)
    if (tensors[order[i - 1]].name == tensors[order[i]].name)
      fail(path, ": byte offset ", info_offsets_[std::max(order[i - 1], order[i])],
           ": duplicate tensor name '", tensors[order[i]].name, "' (tensors #",
           std::min(order[i - 1], order[i]), " and #", std::max(order[i - 1], order[i]),
           "); expected every tensor name once");
  file_.sorted_tensors_ = order;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return tensors[a].offset != tensors[b].offset ? tensors[a].offset < tensors[b].offset : a < b;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& a = tensors[order[i - 1]];
    const TensorInfo& b = tensors[order[i]];
    if (b.offset - a.offset < a.bytes)  // both ranges are inside the file, so no overflow
      fail(path, ": byte offset ", info_offsets_[order[i]], ": tensors '", a.name, "' and '",
           b.name, "' overlap: '", a.name, "' occupies data offsets [", a.offset, ", ",
           a.offset + a.bytes, ") and '", b.name, "' starts at ", b.offset);
  }
}

}  // namespace toy::gguf

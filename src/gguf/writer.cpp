// GGUF v3 writer. The file is assembled through AtomicFile (core/atomic_file.h), so
// readers only ever see a complete file and an interrupted run leaves nothing.
#include "gguf/writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/error.h"

namespace toy::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;  // what readers assume without general.alignment
constexpr int kMaxArrayDepth = 8;           // the reader rejects deeper nesting

bool is_power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

class Bytes {
 public:
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    data_.insert(data_.end(), p, p + sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    data_.insert(data_.end(), s.begin(), s.end());
  }
  const std::vector<uint8_t>& data() const { return data_; }
  size_t size() const { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
};

// Appends the encoding of `value` (without its type tag). The Value's variant alternative must
// match its declared type: their orders are the same (ValueType id == variant index).
void encode(Bytes& out, const Value& value, const std::string& key, int depth) {
  if (value.data.index() != static_cast<size_t>(value.type))
    fail("metadata key '", key, "': declared type ", value_type_name(value.type),
         " does not match the stored value");
  switch (value.type) {
    case ValueType::U8:
      return out.put(std::get<uint8_t>(value.data));
    case ValueType::I8:
      return out.put(std::get<int8_t>(value.data));
    case ValueType::U16:
      return out.put(std::get<uint16_t>(value.data));
    case ValueType::I16:
      return out.put(std::get<int16_t>(value.data));
    case ValueType::U32:
      return out.put(std::get<uint32_t>(value.data));
    case ValueType::I32:
      return out.put(std::get<int32_t>(value.data));
    case ValueType::F32:
      return out.put(std::get<float>(value.data));
    case ValueType::BOOL:
      return out.put<uint8_t>(std::get<bool>(value.data) ? 1 : 0);
    case ValueType::STRING:
      return out.put_string(std::get<std::string>(value.data));
    case ValueType::U64:
      return out.put(std::get<uint64_t>(value.data));
    case ValueType::I64:
      return out.put(std::get<int64_t>(value.data));
    case ValueType::F64:
      return out.put(std::get<double>(value.data));
    case ValueType::ARRAY:
      break;
  }
  const auto& array = std::get<std::shared_ptr<Array>>(value.data);
  if (!array) fail("metadata key '", key, "': array value has no contents");
  if (depth + 1 > kMaxArrayDepth)
    fail("metadata key '", key, "': arrays nested deeper than ", kMaxArrayDepth,
         " levels cannot be read back");
  if (!is_known_value_type(static_cast<uint32_t>(array->element_type)))
    fail("metadata key '", key, "': unknown array element type ",
         static_cast<uint32_t>(array->element_type));
  out.put(static_cast<uint32_t>(array->element_type));
  out.put<uint64_t>(array->items.size());
  for (size_t i = 0; i < array->items.size(); ++i) {
    const Value& item = array->items[i];
    if (item.type != array->element_type)
      fail("metadata key '", key, "' element ", i, ": expected type ",
           value_type_name(array->element_type), " like the array, found ",
           value_type_name(item.type));
    encode(out, item, key, depth + 1);
  }
}

uint64_t padding_for(uint64_t offset, uint64_t alignment) {
  return (alignment - offset % alignment) % alignment;
}

}  // namespace

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
  if (!is_power_of_two(alignment) || alignment > std::numeric_limits<uint32_t>::max())
    fail("GGUF writer: alignment must be a power of two that fits u32, found ", alignment);
}

void Writer::set(const std::string& key, Value value) {
  if (key.empty()) fail("GGUF writer: metadata key must not be empty");
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void Writer::remove(const std::string& key) {
  std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; });
}

bool Writer::has(const std::string& key) const {
  return std::any_of(metadata_.begin(), metadata_.end(),
                     [&](const auto& kv) { return kv.first == key; });
}

void Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                        const void* data) {
  if (!data) fail("GGUF writer: tensor '", name, "' has no data");
  add_tensor(name, type, std::move(ne), std::function<void(uint8_t*)>());
  tensors_.back().data = data;
}

void Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                        std::function<void(uint8_t* dst)> fill) {
  if (name.empty()) fail("GGUF writer: tensor name must not be empty");
  for (const PendingTensor& t : tensors_)
    if (t.name == name) fail("GGUF writer: tensor '", name, "' was added twice");
  if (ne.empty() || ne.size() > 4)
    fail("GGUF writer: tensor '", name, "': expected 1 to 4 dimensions, found ", ne.size());
  const DTypeInfo& info = dtype_info(type);
  uint64_t elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] <= 0)
      fail("GGUF writer: tensor '", name, "': dimension ", d, " must be positive, found ", ne[d]);
    if (elements >
        static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(ne[d]))
      fail("GGUF writer: tensor '", name, "': element count overflows");
    elements *= static_cast<uint64_t>(ne[d]);
  }
  if (ne[0] % info.block_size != 0)
    fail("GGUF writer: tensor '", name, "': row length ", ne[0], " is not a multiple of the ",
         info.name, " block size ", info.block_size);
  uint64_t row = static_cast<uint64_t>(ne[0] / info.block_size * info.type_size);
  uint64_t rows = elements / static_cast<uint64_t>(ne[0]);
  if (row > std::numeric_limits<uint64_t>::max() / rows)
    fail("GGUF writer: tensor '", name, "': byte size overflows");
  tensors_.push_back({name, type, std::move(ne), row * rows, nullptr, std::move(fill)});
}

std::vector<uint8_t> Writer::encode_header(const std::string& name, uint64_t& alignment) const {
  alignment = alignment_;
  bool emit_alignment = alignment_ != kDefaultAlignment;
  for (const auto& [key, value] : metadata_) {
    if (key != "general.alignment") continue;
    if (value.type != ValueType::U32 || !std::holds_alternative<uint32_t>(value.data) ||
        !is_power_of_two(std::get<uint32_t>(value.data)))
      fail(name, ": metadata key 'general.alignment' must be a u32 power of two");
    alignment = std::get<uint32_t>(value.data);
    emit_alignment = false;  // the metadata already says it
  }
  Bytes header;
  header.put<uint32_t>(0x46554747);  // "GGUF" read as a little-endian u32
  header.put<uint32_t>(kVersion);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata_.size() + (emit_alignment ? 1 : 0));
  try {
    for (const auto& [key, value] : metadata_) {
      header.put_string(key);
      header.put(static_cast<uint32_t>(value.type));
      encode(header, value, key, 0);
    }
  } catch (const Error& e) {
    fail(name, ": cannot write GGUF file: ", e.message());
  }
  if (emit_alignment) {
    header.put_string("general.alignment");
    header.put(static_cast<uint32_t>(ValueType::U32));
    header.put(static_cast<uint32_t>(alignment));
  }
  uint64_t offset = 0;  // relative to the data section
  for (const PendingTensor& t : tensors_) {
    offset += padding_for(offset, alignment);
    header.put_string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) header.put<uint64_t>(static_cast<uint64_t>(n));
    header.put(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(offset);
    offset += t.bytes;
  }
  return header.data();
}

std::vector<uint8_t> Writer::metadata_image(const std::string& name) const {
  if (!tensors_.empty())
    fail(name, ": an in-memory GGUF image holds metadata only, found ", tensors_.size(),
         " tensors");
  uint64_t alignment = 0;
  return encode_header(name, alignment);
}

void Writer::write(const std::string& path,
                   const std::function<void(size_t, size_t)>& progress) const {
  // Validate and encode everything that can fail before a file is created.
  uint64_t alignment = 0;
  const std::vector<uint8_t> header = encode_header(path, alignment);

  // Creating the file first fails fast (no directory, no permission) before any tensor is
  // converted; AtomicFile leaves nothing under `path` unless commit() is reached.
  AtomicFile out(path);
  try {
    out.write(header.data(), header.size());
    uint64_t written = header.size();
    // Without tensors there is no data section to align (llama.cpp's vocabulary files end here).
    if (!tensors_.empty()) {
      out.write_zeros(padding_for(written, alignment));
      written += padding_for(written, alignment);
    }
    const uint64_t data_start = written;
    std::vector<uint8_t> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const PendingTensor& t = tensors_[i];
      uint64_t pad = padding_for(written - data_start, alignment);
      out.write_zeros(pad);
      written += pad;
      if (t.data) {
        out.write(t.data, t.bytes);
      } else if (!t.fill) {
        fail("tensor '", t.name, "' has neither data nor a function producing it");
      } else {
        try {
          buffer.assign(t.bytes, 0);
        } catch (const std::bad_alloc&) {
          fail("out of memory allocating ", t.bytes, " bytes (", format_bytes(t.bytes),
               ") for tensor '", t.name, "'");
        }
        t.fill(buffer.data());
        out.write(buffer.data(), t.bytes);
      }
      written += t.bytes;
      if (progress) progress(i + 1, tensors_.size());
    }
    out.commit();
  } catch (const Error& e) {
    // AtomicFile's own messages already start with the path.
    const std::string_view what = e.message();
    if (what.starts_with(path + ": ")) throw;
    fail(path, ": cannot write GGUF file (nothing was written under this name): ", what);
  }
}

}  // namespace toy::gguf

// GGUF reader: mapping files, metadata lookup and typed access, tensor views.
// Validation lives in parser.cpp; everything here reads bytes the parser checked.
#include "gguf/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "gguf/parser.h"

namespace toy::gguf {

using detail::load;

// ---------------------------------------------------------------------------------------------
// File

std::shared_ptr<File> File::open(const std::string& path) {
  // O_NONBLOCK so that opening a FIFO cannot hang; it is rejected below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, ": is a directory; expected a GGUF file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": is not a regular file; expected a GGUF file");
  }
  std::shared_ptr<File> file(new File());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(path, ": cannot memory-map ", file->size_, " bytes: ", std::strerror(err));
    }
    file->base_ = static_cast<const uint8_t*>(p);
    file->mapped_ = true;
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  file->self_ = file;
  file->parse();
  return file;
}

std::shared_ptr<File> File::from_memory(const uint8_t* data, size_t size, std::string name) {
  std::shared_ptr<File> file(new File());
  file->path_ = std::move(name);
  file->base_ = data;
  file->size_ = data ? size : 0;
  file->self_ = file;
  file->parse();
  return file;
}

File::~File() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void File::parse() {
  Parser(*this).run();
}

std::string_view File::key_at(size_t index) const {
  const uint8_t* p = base_ + entries_[index];
  return {reinterpret_cast<const char*>(p + 8), static_cast<size_t>(load<uint64_t>(p))};
}

size_t File::metadata_count() const {
  return entries_.size();
}

ValueRef File::metadata(size_t index) const {
  TOY_CHECK(index < entries_.size(), "metadata index ", index, " of ", entries_.size());
  std::string_view key = key_at(index);
  const uint8_t* type_tag = reinterpret_cast<const uint8_t*>(key.data() + key.size());
  auto type = static_cast<ValueType>(load<uint32_t>(type_tag));
  return ValueRef(this, key, type, type_tag + 4);
}

std::optional<ValueRef> File::find(std::string_view key) const {
  auto it = std::lower_bound(sorted_keys_.begin(), sorted_keys_.end(), key,
                             [&](uint32_t index, std::string_view k) { return key_at(index) < k; });
  if (it == sorted_keys_.end() || key_at(*it) != key) return std::nullopt;
  return metadata(*it);
}

bool File::has(std::string_view key) const {
  return find(key).has_value();
}

void File::missing_key(std::string_view key, std::string_view expected_type) const {
  fail(path_, ": missing metadata key '", key, "'",
       expected_type.empty() ? "" : str(" (expected a value of type ", expected_type, ")"));
}

ValueRef File::get(std::string_view key) const {
  std::optional<ValueRef> value = find(key);
  if (!value) missing_key(key, "");
  return *value;
}

ValueRef File::get(std::string_view key, std::string_view expected_type) const {
  std::optional<ValueRef> value = find(key);
  if (!value) missing_key(key, expected_type);
  return *value;
}

int64_t File::get_integer_or(std::string_view key, int64_t fallback) const {
  std::optional<ValueRef> value = find(key);
  return value ? value->integer() : fallback;
}

double File::get_number_or(std::string_view key, double fallback) const {
  std::optional<ValueRef> value = find(key);
  return value ? value->number() : fallback;
}

bool File::get_bool_or(std::string_view key, bool fallback) const {
  std::optional<ValueRef> value = find(key);
  return value ? value->boolean() : fallback;
}

std::string File::get_string_or(std::string_view key, std::string_view fallback) const {
  std::optional<ValueRef> value = find(key);
  return std::string(value ? value->string() : fallback);
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = std::lower_bound(
      sorted_tensors_.begin(), sorted_tensors_.end(), name,
      [&](uint32_t index, std::string_view n) { return tensors_[index].name < n; });
  if (it == sorted_tensors_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

Tensor File::tensor(std::string_view name) const {
  const TensorInfo* info = find_tensor(name);
  if (!info) fail(path_, ": missing tensor '", name, "'");
  return tensor(*info);
}

Tensor File::tensor(const TensorInfo& info) const {
  TOY_CHECK(data_offset_ <= size_ && info.offset <= size_ - data_offset_ &&
                info.bytes <= size_ - data_offset_ - info.offset,
            "tensor '", info.name, "' is not inside ", path_);
  Tensor t;
  t.type = info.type;
  t.n_dims = info.n_dims;
  t.ne = info.ne;
  const DTypeInfo& dtype = dtype_info(info.type);
  t.nb[0] = static_cast<size_t>(dtype.type_size);
  t.nb[1] = static_cast<size_t>(info.ne[0] / dtype.block_size * dtype.type_size);
  t.nb[2] = t.nb[1] * static_cast<size_t>(info.ne[1]);
  t.nb[3] = t.nb[2] * static_cast<size_t>(info.ne[2]);
  // A read-only view: the mapping is PROT_READ, so writing through it would fault.
  t.data = const_cast<uint8_t*>(base_ + data_offset_ + info.offset);
  t.owner = std::shared_ptr<void>(self_.lock());
  return t;
}

// ---------------------------------------------------------------------------------------------
// ValueRef

ValueRef::ValueRef(const File* file, std::string_view key, ValueType type, const uint8_t* data,
                   int64_t element_index)
    : file_(file),
      key_(key),
      type_(type),
      data_(data),
      element_type_(ValueType::U8),
      count_(0),
      element_index_(element_index) {
  if (type == ValueType::ARRAY) {
    element_type_ = static_cast<ValueType>(load<uint32_t>(data));
    count_ = load<uint64_t>(data + 4);
  }
}

std::string ValueRef::describe() const {
  return element_index_ < 0 ? str("metadata key '", key_, "'")
                            : str("metadata key '", key_, "' element ", element_index_);
}

void ValueRef::type_error(std::string_view expected) const {
  std::string found(value_type_name(type_));
  if (type_ == ValueType::ARRAY) found = str("array of ", value_type_name(element_type_));
  fail(file_->path(), ": byte offset ", data_ - file_->base_, ": ", describe(), ": expected type ",
       expected, ", found ", found);
}

// Each fixed-size scalar getter: check the stored type, then read the little-endian value.
#define TOY_GGUF_SCALAR(method, T, TYPE, name)      \
  T ValueRef::method() const {                      \
    if (type_ != ValueType::TYPE) type_error(name); \
    return load<T>(data_);                          \
  }
TOY_GGUF_SCALAR(u8, uint8_t, U8, "u8")
TOY_GGUF_SCALAR(i8, int8_t, I8, "i8")
TOY_GGUF_SCALAR(u16, uint16_t, U16, "u16")
TOY_GGUF_SCALAR(i16, int16_t, I16, "i16")
TOY_GGUF_SCALAR(u32, uint32_t, U32, "u32")
TOY_GGUF_SCALAR(i32, int32_t, I32, "i32")
TOY_GGUF_SCALAR(u64, uint64_t, U64, "u64")
TOY_GGUF_SCALAR(i64, int64_t, I64, "i64")
TOY_GGUF_SCALAR(f32, float, F32, "f32")
TOY_GGUF_SCALAR(f64, double, F64, "f64")
#undef TOY_GGUF_SCALAR

bool ValueRef::boolean() const {
  if (type_ != ValueType::BOOL) type_error("bool");
  return data_[0] != 0;
}

std::string_view ValueRef::string() const {
  if (type_ != ValueType::STRING) type_error("string");
  return {reinterpret_cast<const char*>(data_ + 8), static_cast<size_t>(load<uint64_t>(data_))};
}

int64_t ValueRef::integer() const {
  switch (type_) {
    case ValueType::U8:
      return load<uint8_t>(data_);
    case ValueType::I8:
      return load<int8_t>(data_);
    case ValueType::U16:
      return load<uint16_t>(data_);
    case ValueType::I16:
      return load<int16_t>(data_);
    case ValueType::U32:
      return load<uint32_t>(data_);
    case ValueType::I32:
      return load<int32_t>(data_);
    case ValueType::I64:
      return load<int64_t>(data_);
    case ValueType::U64: {
      uint64_t v = load<uint64_t>(data_);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(file_->path(), ": byte offset ", data_ - file_->base_, ": ", describe(),
             ": expected an integer up to 2^63-1, found u64 ", v);
      return static_cast<int64_t>(v);
    }
    default:
      type_error("integer (u8..i64)");
  }
}

double ValueRef::number() const {
  switch (type_) {
    case ValueType::F32:
      return load<float>(data_);
    case ValueType::F64:
      return load<double>(data_);
    case ValueType::U64:
      return static_cast<double>(load<uint64_t>(data_));
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::I64:
      return static_cast<double>(integer());
    default:
      type_error("number (integer or float)");
  }
}

ValueType ValueRef::array_type() const {
  if (type_ != ValueType::ARRAY) type_error("array");
  return element_type_;
}

uint64_t ValueRef::array_size() const {
  if (type_ != ValueType::ARRAY) type_error("array");
  return count_;
}

const uint8_t* ValueRef::elements() const {
  return data_ + detail::kArrayHeaderBytes;
}

ValueRef ValueRef::at(uint64_t index) const {
  if (type_ != ValueType::ARRAY) type_error("array");
  if (index >= count_)
    fail(file_->path(), ": ", describe(), ": index ", index, " is out of range for an array of ",
         count_, " elements");
  const uint8_t* p = elements();
  if (size_t size = value_type_size(element_type_)) {
    p += index * size;
  } else {
    // Variable-size elements: skip the ones before `index` (already validated by the parser).
    uint64_t offset = static_cast<uint64_t>(p - file_->base_);
    for (uint64_t i = 0; i < index; ++i)
      offset =
          detail::value_end(file_->path(), file_->base_, file_->size_, offset, element_type_, key_);
    p = file_->base_ + offset;
  }
  return ValueRef(file_, key_, element_type_, p, static_cast<int64_t>(index));
}

void ValueRef::require_array_of(ValueType element_type, std::string_view expected) const {
  if (type_ != ValueType::ARRAY || element_type_ != element_type) type_error(expected);
}

std::vector<std::string_view> ValueRef::strings() const {
  require_array_of(ValueType::STRING, "array of string");
  std::vector<std::string_view> out;
  out.reserve(count_);
  const uint8_t* p = elements();
  for (uint64_t i = 0; i < count_; ++i) {
    auto length = static_cast<size_t>(load<uint64_t>(p));
    out.emplace_back(reinterpret_cast<const char*>(p + 8), length);
    p += 8 + length;
  }
  return out;
}

std::vector<float> ValueRef::f32s() const {
  require_array_of(ValueType::F32, "array of f32");
  std::vector<float> out(count_);
  if (count_) std::memcpy(out.data(), elements(), count_ * sizeof(float));
  return out;
}

namespace {

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
      return true;
    default:
      return false;
  }
}

// Shared by i32s/u32s: every element of an integer array, range-checked into T.
template <typename T>
std::vector<T> integers_as(const ValueRef& array, std::string_view expected,
                           const std::string& path) {
  std::vector<T> out;
  out.reserve(array.array_size());
  for (uint64_t i = 0; i < array.array_size(); ++i) {
    ValueRef item = array.at(i);
    bool fits;
    T value{};
    if (item.type() == ValueType::U64) {
      uint64_t v = item.u64();
      fits = v <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      value = static_cast<T>(v);
    } else {
      int64_t v = item.integer();
      fits = v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
             v <= static_cast<int64_t>(std::numeric_limits<T>::max());
      value = static_cast<T>(v);
    }
    if (!fits)
      fail(path, ": metadata key '", array.key(), "' element ", i, ": expected a value that fits ",
           expected, ", found a ", value_type_name(item.type()), " out of that range");
    out.push_back(value);
  }
  return out;
}

}  // namespace

std::vector<int32_t> ValueRef::i32s() const {
  if (type_ != ValueType::ARRAY || !is_integer_type(element_type_))
    type_error("array of integers (fitting i32)");
  return integers_as<int32_t>(*this, "i32", file_->path());
}

std::vector<uint32_t> ValueRef::u32s() const {
  if (type_ != ValueType::ARRAY || !is_integer_type(element_type_))
    type_error("array of integers (fitting u32)");
  return integers_as<uint32_t>(*this, "u32", file_->path());
}

Value ValueRef::to_value() const {
  return to_value_at_depth(0);
}

// Recursion depth is bounded: the parser rejects arrays nested deeper than kMaxArrayDepth.
Value ValueRef::to_value_at_depth(int depth) const {
  TOY_CHECK(depth <= detail::kMaxArrayDepth, "array nesting in ", describe());
  switch (type_) {
    case ValueType::U8:
      return Value::u8(u8());
    case ValueType::I8:
      return Value::i8(i8());
    case ValueType::U16:
      return Value::u16(u16());
    case ValueType::I16:
      return Value::i16(i16());
    case ValueType::U32:
      return Value::u32(u32());
    case ValueType::I32:
      return Value::i32(i32());
    case ValueType::F32:
      return Value::f32(f32());
    case ValueType::BOOL:
      return Value::boolean(boolean());
    case ValueType::STRING:
      return Value::string(std::string(string()));
    case ValueType::U64:
      return Value::u64(u64());
    case ValueType::I64:
      return Value::i64(i64());
    case ValueType::F64:
      return Value::f64(f64());
    case ValueType::ARRAY:
      break;
  }
  Array array;
  array.element_type = element_type_;
  array.items.reserve(count_);
  const uint8_t* p = elements();
  for (uint64_t i = 0; i < count_; ++i) {
    ValueRef item(file_, key_, element_type_, p, static_cast<int64_t>(i));
    array.items.push_back(item.to_value_at_depth(depth + 1));
    p = file_->base_ + detail::value_end(file_->path(), file_->base_, file_->size_,
                                         static_cast<uint64_t>(p - file_->base_), element_type_,
                                         key_);
  }
  return Value::array(std::move(array));
}

}  // namespace toy::gguf

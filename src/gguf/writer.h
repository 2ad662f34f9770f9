// GGUF writer: collects metadata and tensors, then writes a GGUF v3 file
// atomically (core/atomic_file.h), so a crash, a signal or a full disk never
// leaves a half-written model under the final name, nor a stray temporary.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "gguf/value.h"

namespace toy::gguf {

class Writer {
 public:
  // Tensor data is aligned to a u32 `general.alignment` set as metadata if there is one, to
  // `alignment` otherwise (then written as general.alignment when it is not the default 32).
  // Padding is zero bytes.
  explicit Writer(uint64_t alignment = 32);

  // Sets (or replaces, keeping its position) a metadata key.
  void set(const std::string& key, Value value);
  void remove(const std::string& key);
  bool has(const std::string& key) const;

  // Adds a tensor whose bytes are `data` (row_bytes(type, ne[0]) * rows bytes),
  // copied only when the file is written; `data` must stay valid until then.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data);
  // Adds a tensor whose bytes are produced at write time by `fill(dst)`, writing
  // exactly the tensor's byte size (used to convert one tensor at a time).
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                  std::function<void(uint8_t* dst)> fill);

  // Writes the file. Reports progress through `progress(done_tensors, total)` if given.
  void write(const std::string& path,
             const std::function<void(size_t, size_t)>& progress = nullptr) const;

  // The bytes of a tensor-less file (only metadata), for File::from_memory: a
  // vocabulary can be read back through the same reader without touching the disk.
  // `name` is used in messages. Throws when tensors were added.
  std::vector<uint8_t> metadata_image(const std::string& name) const;

 private:
  // Header, metadata and tensor table; sets the data alignment in effect.
  std::vector<uint8_t> encode_header(const std::string& name, uint64_t& alignment) const;

  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t bytes;
    const void* data;
    std::function<void(uint8_t*)> fill;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace toy::gguf

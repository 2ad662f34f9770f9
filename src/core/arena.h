// Arena: one contiguous, 64-byte-aligned, zero-initialised float or byte
// buffer that hands out aligned slices (parameters, gradients, optimizer
// moments, activations each live in one arena per role).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace toy {

class Arena {
 public:
  Arena() = default;
  explicit Arena(size_t bytes) { reserve(bytes); }

  // Allocates the backing buffer (drops anything handed out before).
  void reserve(size_t bytes);
  // A slice of `bytes` bytes aligned to 64; throws toy::Error when the arena is full.
  void* take(size_t bytes);
  template <typename T>
  T* take_array(size_t count) {
    return static_cast<T*>(take(count * sizeof(T)));
  }
  void reset() { used_ = 0; }  // reuse from the start (contents are kept)
  void zero();                 // memset the whole buffer to 0

  uint8_t* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

}  // namespace toy

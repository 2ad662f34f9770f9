#include "core/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace toy {

void Arena::Free::operator()(uint8_t* p) const {
  std::free(p);
}

void Arena::reserve(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  data_.reset(p);
  capacity_ = rounded;
  used_ = 0;
}

void* Arena::take(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded > capacity_ - used_)
    fail("arena of ", capacity_, " bytes is full: ", used_, " used, ", bytes, " more requested");
  void* p = data_.get() + used_;
  used_ += rounded;
  return p;
}

void Arena::zero() {
  if (data_) std::memset(data_.get(), 0, capacity_);
}

}  // namespace toy

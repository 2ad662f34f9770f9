#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace toy {
namespace {

void set_shape(Tensor& t, std::initializer_list<int64_t> shape) {
  TOY_CHECK(shape.size() >= 1 && shape.size() <= 4, "tensor rank ", shape.size());
  t.n_dims = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t n : shape) {
    TOY_CHECK(n > 0, "dimension ", i, " is ", n);
    t.ne[i++] = n;
  }
  const DTypeInfo& info = dtype_info(t.type);
  t.nb[0] = static_cast<size_t>(info.type_size);
  t.nb[1] = static_cast<size_t>(toy::row_bytes(t.type, t.ne[0]));
  t.nb[2] = t.nb[1] * static_cast<size_t>(t.ne[1]);
  t.nb[3] = t.nb[2] * static_cast<size_t>(t.ne[2]);
}

}  // namespace

bool Tensor::contiguous() const {
  return nb[0] == static_cast<size_t>(dtype_info(type).type_size) && nb[1] == row_bytes() &&
         nb[2] == nb[1] * static_cast<size_t>(ne[1]) && nb[3] == nb[2] * static_cast<size_t>(ne[2]);
}

Tensor Tensor::view(DType type, void* data, std::initializer_list<int64_t> shape) {
  Tensor t;
  t.type = type;
  set_shape(t, shape);
  t.data = data;
  return t;
}

Tensor Tensor::zeros(DType type, std::initializer_list<int64_t> shape) {
  Tensor t;
  t.type = type;
  set_shape(t, shape);
  size_t bytes = (t.bytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  t.data = p;
  t.owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return t;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  return s + "]";
}

}  // namespace toy

// Tensor: a typed view of up to 4 dimensions over memory someone else owns
// (a GGUF mapping, an arena) or that the view keeps alive through `owner`.
//
// ggml order: ne[0] is the contiguous dimension. A weight with ne = [n_in, n_out]
// is n_out rows of n_in elements; nb[i] is the byte stride of dimension i
// (nb[0] is the size of one element, or of one block for quantized types).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"

namespace toy {

struct Tensor {
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // elements per dimension, unused dims are 1
  std::array<size_t, 4> nb{0, 0, 0, 0};   // byte strides
  void* data = nullptr;
  std::shared_ptr<void> owner;  // keeps the memory alive when the view owns it

  int64_t numel() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return static_cast<size_t>(toy::row_bytes(type, ne[0])); }
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows()); }
  bool contiguous() const;

  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  // Start of row r (counting over dims 1..3 as one flat row index) of a contiguous tensor.
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * nb[1]; }

  // A contiguous view over `data` with the given shape (ne[0] first).
  static Tensor view(DType type, void* data, std::initializer_list<int64_t> shape);
  // A contiguous tensor that owns fresh 64-byte-aligned, zeroed memory.
  static Tensor zeros(DType type, std::initializer_list<int64_t> shape);

  std::string shape_string() const;  // "[576, 1536]"
};

}  // namespace toy

#include "kernels/matmul.h"

#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace toy {

void matmul(float* y, const float* x, const Tensor& w, int64_t T, ThreadPool& pool,
            MatmulMode mode) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  TOY_CHECK(w.contiguous(), "matmul weight must be contiguous");
  // Exact path: each thread dequantizes one weight row at a time and dots it with
  // every activation row, so a weight row is read once per call.
  pool.parallel_for(n_out, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t o = begin; o < end; ++o) {
      const float* wr;
      if (w.type == DType::F32) {
        wr = reinterpret_cast<const float*>(w.row(o));
      } else {
        quant::dequantize_row(w.type, w.row(o), row.data(), n_in);
        wr = row.data();
      }
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = x + t * n_in;
        float sum = 0.0f;
        for (int64_t i = 0; i < n_in; ++i) sum += wr[i] * xr[i];
        y[t * n_out + o] = sum;
      }
    }
  });
  (void)mode;
}

void matmul_reference(float* y, const float* x, const Tensor& w, int64_t T) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    quant::dequantize_row(w.type, w.row(o), row.data(), n_in);
    for (int64_t t = 0; t < T; ++t) {
      double sum = 0.0;
      for (int64_t i = 0; i < n_in; ++i) sum += double(row[i]) * double(x[t * n_in + i]);
      y[t * n_out + o] = static_cast<float>(sum);
    }
  }
}

}  // namespace toy

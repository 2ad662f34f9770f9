// Dispatch on a small activation-row count, shared by the direct-block decode kernels of
// the SIMD backends. ISA-free: the instantiations carry the calling backend's lambda, and
// so its namespace, in their names.
#pragma once

#include <cstdint>
#include <type_traits>

namespace toy::cpu {

// Calls rows(std::integral_constant<int, T>) for T activation rows (1..4; more are the
// caller's to split), so each kernel keeps its accumulators in registers for its row count.
template <typename Rows>
[[gnu::always_inline]] inline void with_row_count(int64_t T, Rows&& rows) {
  switch (T) {
    case 1:
      return rows(std::integral_constant<int, 1>{});
    case 2:
      return rows(std::integral_constant<int, 2>{});
    case 3:
      return rows(std::integral_constant<int, 3>{});
    default:
      return rows(std::integral_constant<int, 4>{});
  }
}

}  // namespace toy::cpu

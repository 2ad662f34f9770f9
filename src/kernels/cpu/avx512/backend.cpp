// The AVX-512 backend's table (F/BW/DQ/VL). Its int8 GEMM needs VNNI; a CPU with
// AVX-512 but no VNNI (Skylake-X) gets the AVX2 int8 GEMM in its table.
#include "kernels/cpu/backend.h"

namespace toy::cpu {
namespace avx512 {
#include "kernels/cpu/backend_functions.inc"
}  // namespace avx512

namespace {

Backend make(bool vnni) {
  return Backend{
      .name = "avx512",
      .gemm_float = avx512::gemm_float,
      .widen_rows = avx512::widen_rows,
      .round_to_16bit = avx512::round_to_16bit,
      .pack_weight_row = avx512::pack_weight_row,
      .pack_activation_row = avx512::pack_activation_row,
      .gemm_int8 = vnni ? avx512::gemm_int8 : avx2_backend()->gemm_int8,
      .gemm_blocks = avx2_backend()->gemm_blocks,  // decode on stored blocks: AVX2's (no zmm yet)
      .exp_shifted = avx512::exp_shifted,
      .f16_to_f32_row = avx512::f16_to_f32_row,
      .gemm_micro = avx512::gemm_micro,
      .swiglu = avx512::swiglu,
      .swiglu_backward = avx512::swiglu_backward,
  };
}

}  // namespace

const Backend* avx512_backend(bool vnni) {
  static const Backend with_vnni = make(true), without_vnni = make(false);
  return vnni ? &with_vnni : &without_vnni;
}

}  // namespace toy::cpu

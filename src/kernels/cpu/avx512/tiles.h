// The AMX tile configuration shared by the avx512 backend's tile kernels (gemm_tile.cpp for
// the BF16 training GEMM, gemm_tile_int8.cpp for the integer inference GEMM). A thread's
// configuration stays loaded (it is part of the thread's saved state) until a kernel asks
// for the other one, so switching costs one ldtilecfg per switch, not per call.
#pragma once

namespace toy::cpu::avx512 {

enum class TileShapes {
  // 8 tiles of 16 rows × 64 bytes.
  Bf16Gemm,
  // Tiles 0, 1: C, 16 rows × 16 int32; 2, 3: A, 16 rows × 32 int8; 4, 5: B, 8 rows × 64 int8.
  Int8Gemm,
};

void use_tile_shapes(TileShapes shapes);

}  // namespace toy::cpu::avx512

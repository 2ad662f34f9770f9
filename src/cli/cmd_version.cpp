// toy version: the version, the compiler, the CPU features found at run time
// and the kernel backend chosen from them (TOY_BACKEND forces one).
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "kernels/cpu/features.h"

namespace toy::cli {

int run_version(int argc, char** argv) {
  const cpu::Features& features = cpu::host_features();
  const cpu::Backend& backend = cpu::host_backend();  // a bad TOY_BACKEND fails before output
  std::printf("toy 0.1.0\n");
  std::printf("compiler: %s\n", __VERSION__);
  std::printf("cpu features: %s\n", features.describe().c_str());
  std::printf("backends available:");
  for (const cpu::Backend* b : cpu::runnable_backends(features)) std::printf(" %s", b->name);
  std::printf("\n");
  std::printf("backend: %s", backend.name);
  if (std::strcmp(backend.name, "avx512") == 0 &&
      backend.gemm_int8 == cpu::avx2_backend()->gemm_int8)
    std::printf(" (no VNNI: int8 kernels from avx2)");
  if (backend.gemm_micro_bf16) std::printf(" (BF16 dot products)");
  if (backend.gemm_tile_bf16) std::printf(" (AMX tiles for the BF16 training GEMM)");
  if (backend.gemm_tile_int8) std::printf(" (AMX tiles for the integer prefill products)");
  std::printf("\n");
  return 0;
}

}  // namespace toy::cli

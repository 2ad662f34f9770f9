// toy version: the version and the build configuration (compiler, CPU features).
#include <cstdio>

#include "cli/commands.h"

namespace toy::cli {

int run_version(int argc, char** argv) {
  std::printf("toy 0.1.0\n");
  std::printf("compiler: %s\n", __VERSION__);
  std::printf("cpu features:");
#ifdef __AVX2__
  std::printf(" avx2");
#endif
#ifdef __FMA__
  std::printf(" fma");
#endif
#ifdef __AVX512F__
  std::printf(" avx512f");
#endif
#ifdef __AVX512VNNI__
  std::printf(" avx512vnni");
#endif
#ifdef __AVX512BF16__
  std::printf(" avx512bf16");
#endif
  std::printf("\n");
  return 0;
}

}  // namespace toy::cli

#include "kernels/cpu/features.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace toy::cpu {
namespace {

#if defined(__x86_64__)
// AMX: the CPU has the tiles (CPUID.(7,0):EDX bit 24 AMX-TILE; bit 22 AMX-BF16, bit 25
// AMX-INT8), the OS saves the tile state (XCR0 bits 17 and 18), and Linux grants this
// process the tile data (without that permission the first tile instruction raises SIGILL).
struct Amx {
  bool bf16 = false, int8 = false;
};
Amx detect_amx() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 24))) return {};
  const Amx present{(edx & (1u << 22)) != 0, (edx & (1u << 25)) != 0};
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return {};  // OSXSAVE
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & (3u << 17)) != (3u << 17)) return {};
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (::syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return {};
  return present;
}
#endif

Features detect() {
  Features f;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's cpu model also checks XCR0, so AVX / AVX-512 state the OS does not
  // save counts as absent.
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#if defined(__x86_64__)
  const char* amx = std::getenv("TOY_AMX");
  if (f.avx512bf16 && f.avx512vnni && !(amx && std::strcmp(amx, "0") == 0)) {
    const Amx tiles = detect_amx();
    f.amx_bf16 = tiles.bf16;
    f.amx_int8 = tiles.int8;
  }
#endif
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory in ARMv8-A
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
  f.fp16 = (hw & HWCAP_ASIMDHP) != 0;
#ifdef HWCAP2_I8MM
  f.i8mm = (hw2 & HWCAP2_I8MM) != 0;
#else
  (void)hw2;
#endif
#endif
#endif
  return f;
}

}  // namespace

std::string Features::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512dq, "avx512dq");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512vnni");
  add(avx512bf16, "avx512bf16");
  add(amx_bf16, "amx-bf16");
  add(amx_int8, "amx-int8");
  add(neon, "neon");
  add(dotprod, "dotprod");
  add(fp16, "fp16");
  add(i8mm, "i8mm");
  return s.empty() ? "(baseline only)" : s;
}

const Features& host_features() {
  static const Features features = detect();
  return features;
}

std::vector<const Backend*> runnable_backends(const Features& f) {
  std::vector<const Backend*> out{&generic_backend()};
  if (f.has_avx2() && avx2_backend()) out.push_back(avx2_backend());
  if (f.has_avx512() && avx512_backend(f.avx512vnni, f.avx512bf16, f.amx_bf16, f.amx_int8))
    out.push_back(avx512_backend(f.avx512vnni, f.avx512bf16, f.amx_bf16, f.amx_int8));
  if (f.has_neon() && neon_backend()) out.push_back(neon_backend());
  return out;
}

const Backend& choose_backend(const Features& f, const char* forced) {
  const std::vector<const Backend*> runnable = runnable_backends(f);
  if (!forced || !*forced) return *runnable.back();
  for (const Backend* b : runnable)
    if (std::strcmp(b->name, forced) == 0) return *b;
  const bool known = !std::strcmp(forced, "generic") || !std::strcmp(forced, "avx2") ||
                     !std::strcmp(forced, "avx512") || !std::strcmp(forced, "neon");
  std::string choices;
  for (const Backend* b : runnable) choices += std::string(choices.empty() ? "" : ", ") + b->name;
  if (!known)
    throw Error("TOY_BACKEND='" + std::string(forced) +
                "' is not a backend (generic, avx2, avx512, neon); this CPU can run: " + choices);
  throw Error("TOY_BACKEND=" + std::string(forced) +
              ": this CPU or binary cannot run it (CPU features: " + f.describe() +
              "); it can run: " + choices);
}

const Backend& host_backend() {
  static const Backend& chosen = choose_backend(host_features(), std::getenv("TOY_BACKEND"));
  return chosen;
}

// Backends of the other architecture are not compiled in.
#if !(defined(__x86_64__) || defined(__i386__))
const Backend* avx2_backend() {
  return nullptr;
}
const Backend* avx512_backend(bool, bool, bool, bool) {
  return nullptr;
}
#endif
#if !defined(__aarch64__)
const Backend* neon_backend() {
  return nullptr;
}
#endif

}  // namespace toy::cpu

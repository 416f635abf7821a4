#include "cpu/pair_sums.h"

#include <atomic>
#include <cstring>

#if defined(GAMDSS_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace gamdss::kernels {
namespace {

// GAMDSS_HAVE_X86_KERNELS: the AVX2 and AVX-512 files are compiled in (x86-64 with GCC or
// Clang, see CMakeLists.txt).
bool cpu_has_avx512_vnni() {
#if defined(GAMDSS_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(GAMDSS_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// AVX-VNNI (the VEX vpdpbusd): CPUID leaf 7, subleaf 1, EAX bit 4; the OS's support of the
// ymm state comes with the AVX2 check.
bool cpu_has_avxvnni() {
#if defined(GAMDSS_HAVE_AVXVNNI_KERNEL) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax & (1u << 4)) != 0 && cpu_has_avx2();
#else
  return false;
#endif
}

const KernelSet& baseline_set() {
  static const KernelSet set = baseline::kernels();
  return set;
}

// The kernel set called `name` if it is compiled in and this CPU runs it, else nullptr.
const KernelSet* available(const char* name) {
  if (std::strcmp(name, "baseline") == 0) return &baseline_set();
#ifdef GAMDSS_HAVE_X86_KERNELS
  if (std::strcmp(name, "avx2") == 0 && cpu_has_avx2()) {
    static const KernelSet set = avx2::kernels();
    return &set;
  }
  if (std::strcmp(name, "avx512") == 0 && cpu_has_avx512_vnni()) {
    static const KernelSet set = avx512::kernels();
    return &set;
  }
  if (std::strcmp(name, "avx512_ymm") == 0 && cpu_has_avx512_vnni()) {
    static const KernelSet set = avx512_ymm::kernels();
    return &set;
  }
#endif
#ifdef GAMDSS_HAVE_AVXVNNI_KERNEL
  if (std::strcmp(name, "avxvnni") == 0 && cpu_has_avxvnni()) {
    static const KernelSet set = avxvnni::kernels();
    return &set;
  }
#endif
  return nullptr;
}

const KernelSet* best_set() {
  for (const char* name : {"avx512", "avxvnni", "avx2"}) {
    if (const KernelSet* s = available(name)) return s;
  }
  return &baseline_set();
}

std::atomic<const KernelSet*>& current() {
  static std::atomic<const KernelSet*> set{best_set()};
  return set;
}

}  // namespace

const KernelSet& active_kernels() { return *current().load(std::memory_order_relaxed); }

bool select_kernels(const char* name) {
  const KernelSet* s = std::strcmp(name, "auto") == 0 ? best_set() : available(name);
  if (s == nullptr) return false;
  current().store(s);
  return true;
}

}  // namespace gamdss::kernels

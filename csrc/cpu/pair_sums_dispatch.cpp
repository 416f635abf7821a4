#include "cpu/pair_sums.h"

#include <atomic>
#include <cstring>

namespace gamdss::kernels {
namespace {

bool cpu_has_avx512_vnni() {
#if defined(GAMDSS_HAVE_AVX512_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

const KernelSet& baseline_set() {
  static const KernelSet set = baseline::kernels();
  return set;
}

const KernelSet* best_set() {
#ifdef GAMDSS_HAVE_AVX512_KERNELS
  static const KernelSet set = avx512::kernels();
  if (cpu_has_avx512_vnni()) return &set;
#endif
  return &baseline_set();
}

std::atomic<const KernelSet*>& current() {
  static std::atomic<const KernelSet*> set{best_set()};
  return set;
}

}  // namespace

const KernelSet& active_kernels() { return *current().load(std::memory_order_relaxed); }

bool select_kernels(const char* name) {
  if (std::strcmp(name, "auto") == 0) {
    current().store(best_set());
    return true;
  }
  if (std::strcmp(name, "baseline") == 0) {
    current().store(&baseline_set());
    return true;
  }
  if (std::strcmp(name, "avx512") == 0) {
    const KernelSet* best = best_set();
    if (std::strcmp(best->name, "avx512") != 0) return false;
    current().store(best);
    return true;
  }
  return false;
}

}  // namespace gamdss::kernels

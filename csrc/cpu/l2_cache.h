// One core's L2 cache size, as the op reads it: the uint8 streamed reads size their pieces
// to it (block_sums.h), and gamdss_ext.cpu_l2_bytes() reports the same number. No torch
// headers.
#pragma once

#include <cstdint>

#if __has_include(<unistd.h>)
#include <unistd.h>  // sysconf
#endif

namespace gamdss::cpu {

// Bytes of one core's L2 from the C library (glibc reads CPUID), or -1 where it does not say.
inline int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return l2 > 0 ? static_cast<int64_t>(l2) : int64_t{-1};
  }();
  return bytes;
}

}  // namespace gamdss::cpu

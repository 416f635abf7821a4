// How fast this core runs now: a timed chain of dependent integer additions. Each addition
// needs the previous one's result, so a core retires one per clock cycle whatever its
// width, and additions per nanosecond read as the clock in GHz as this process sees it
// (frequency scaling, and on a shared virtual machine time lost to other guests, lower it).
// The benchmark report times it beside the op: on the 2-vCPU machines this project is
// measured on, the same chain ran at 1.7 to 3.6 GHz from one minute to the next, which
// stretches every bit of arithmetic in a call. No torch headers.
#pragma once

#include <chrono>
#include <cstdint>

namespace gamdss::cpu {

// Runs `n` dependent additions (n >= 1, rounded up to a multiple of 8) on the calling
// thread and returns additions per nanosecond (~ GHz).
inline double add_chain_per_ns(int64_t n) {
  const int64_t rounds = (n + 7) / 8;
  uint64_t x = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < rounds; ++i) {
    for (int u = 0; u < 8; ++u) {
      x += 1;
      // Makes x opaque to the compiler after each addition, so that it can neither fold
      // the additions into one nor vectorise the chain; it emits no instruction.
      asm volatile("" : "+r"(x));
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  // x == 8 * rounds; using it keeps the loop.
  return ns > 0 ? static_cast<double>(x) / ns : 0.0;
}

}  // namespace gamdss::cpu

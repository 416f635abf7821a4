// How fast this core runs now: a timed chain of dependent integer additions. Each addition
// needs the previous one's result, so a core retires one per clock cycle whatever its
// width, and additions per nanosecond read as the clock in GHz as this process sees it
// (frequency scaling, and on a shared virtual machine time lost to other guests, lower it).
// The benchmark report times it before every cold call of the op, beside the read
// bandwidth: on the 2-vCPU machines this project is measured on, the bandwidth changes by
// half from one second to the next, and this says whether the cores changed too. No torch
// headers.
#pragma once

#include <chrono>
#include <cstdint>

namespace gamdss::cpu {

// The longest chain add_chain_per_ns accepts: about 30 s at 3 GHz.
constexpr int64_t kMaxAddChain = int64_t{100} * 1000 * 1000 * 1000;

// Runs `n` dependent additions (1 <= n <= kMaxAddChain, rounded up to a multiple of 8) on
// the calling thread and returns additions per nanosecond (~ GHz). Chains under a million
// additions are mostly the clock's own overhead.
inline double add_chain_per_ns(int64_t n) {
  const int64_t rounds = n / 8 + (n % 8 != 0);
  uint64_t x = 0;
  // The increment lives in a register the compiler cannot see into, so each step is an
  // add of two registers: recent Intel cores (Golden Cove) fold additions of a small
  // constant at register renaming, which would run the chain several per cycle.
  uint64_t one = 1;
  asm volatile("" : "+r"(one) : : "memory");
  const auto t0 = std::chrono::steady_clock::now();
  asm volatile("" : : : "memory");
  for (int64_t i = 0; i < rounds; ++i) {
    for (int u = 0; u < 8; ++u) {
      x += one;
      // Makes x opaque to the compiler after each addition, so that it can neither fold
      // the additions into one nor vectorise the chain; it emits no instruction. The
      // memory clobber keeps the chain between the two clock reads.
      asm volatile("" : "+r"(x) : : "memory");
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  // x == 8 * rounds; using it keeps the loop.
  return ns > 0 ? static_cast<double>(x) / ns : 0.0;
}

}  // namespace gamdss::cpu

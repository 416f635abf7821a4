// Sums over one block of frame elements, the inner loops of both CPU ops. No torch
// headers: this interface is compiled once per instruction set (baseline, AVX-512) and
// chosen at run time.
#pragma once

#include <cstdint>

#include "distance.h"

namespace gamdss::kernels {

// Column frames handled per call; callers tile longer ranges.
constexpr int kMaxTile = 8;

// uint8 frame statistics: *sum += sum_k x[k], *sumsq += sum_k x[k]^2. Exact.
using StatsU8 = void (*)(const uint8_t* x, int64_t n, int64_t* sum, int64_t* sumsq);

// uint8 dot products: dot[j] += sum_k x[k] * y_j[k] for j < ny. Exact. y_sums[j] must be
// sum_k y_j[k] over the same n elements (from StatsU8); the AVX-512 variant, which
// multiplies unsigned by signed bytes, uses it to undo its bias. With the statistics this
// gives the exact squared distance |x|^2 + |y|^2 - 2 x.y and the difference of sums.
using DotsU8 = void (*)(const uint8_t* x, const uint8_t* const* ys, const int64_t* y_sums,
                        int ny, int64_t n, int64_t* dot);

// uint8 wrap-around ("released_uint8"): sq[j] += sum_k ((y_j[k] - x[k]) mod 256)^2, or
// ((x[k] - y_j[k]) mod 256)^2 with x_minus_y. Exact.
using WrappedU8 = void (*)(bool x_minus_y, const uint8_t* x, const uint8_t* const* ys, int ny,
                           int64_t n, int64_t* sq);

// Floating frames (elem is kF16, kBF16, kF32 or kF64), delta = y_j - x added to double
// outputs: sq[j] += sum delta^2, and for kCentered lin[j] += sum delta. kL2 accumulates
// float32 lanes over 512-element chunks (float64 lanes for kF64); kCentered accumulates in
// float64. The summation order is fixed (lane = element index mod lane count within each
// chunk, lanes then chunks added in order), identical in every variant, so equal inputs
// give bit-identical sums whatever j, ny or instruction set.
using PairSumsFloat = void (*)(Elem elem, Distance mode, const void* x, const void* const* ys,
                               int ny, int64_t n, double* sq, double* lin);

struct KernelSet {
  const char* name;
  StatsU8 u8_stats;
  DotsU8 u8_dots;
  WrappedU8 u8_wrapped;
  PairSumsFloat floating;
};

namespace baseline {
KernelSet kernels();
}
namespace avx512 {
KernelSet kernels();
}

// The kernels used now: AVX-512 (with VNNI) where the CPU has it, else baseline.
const KernelSet& active_kernels();
// "auto", "baseline" or "avx512"; returns false when the choice is unavailable here.
bool select_kernels(const char* name);

}  // namespace gamdss::kernels

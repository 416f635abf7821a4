// Sums over one block of frame elements for a row frame x against up to kMaxTile column
// frames y_j, the inner loop of both CPU ops. No torch headers: this interface is
// compiled once per instruction set (baseline, AVX-512) and chosen at run time.
#pragma once

#include <cstdint>

namespace gamdss::kernels {

enum class Mode : int {
  kL2 = 0,        // sq += (y - x)^2
  kCentered = 1,  // sq += (y - x)^2, lin += (y - x)
  kWrapped = 2,   // uint8 only: sq += ((y - x) mod 256)^2, or ((x - y) mod 256)^2
};

enum class Elem : int { kU8 = 0, kF16 = 1, kBF16 = 2, kF32 = 3, kF64 = 4 };

constexpr int kMaxTile = 8;

// uint8: for j < ny, sq[j] += sum_k delta_jk^2 and (kCentered) lin[j] += sum_k delta_jk, with
// delta_jk = y_j[k] - x[k] (kWrapped with x_minus_y: x[k] - y_j[k], mod 256). Exact.
using PairSumsU8 = void (*)(Mode mode, bool x_minus_y, const uint8_t* x,
                            const uint8_t* const* ys, int ny, int64_t n, int64_t* sq,
                            int64_t* lin);

// Floating frames (elem is kF16, kBF16, kF32 or kF64), same sums added to double outputs.
// kL2 accumulates float32 lanes over 1024-element chunks (float64 lanes for kF64),
// kCentered accumulates in float64. The summation order is fixed by the source, so equal
// inputs give bit-identical sums whatever j or ny.
using PairSumsFloat = void (*)(Elem elem, Mode mode, const void* x, const void* const* ys,
                               int ny, int64_t n, double* sq, double* lin);

struct KernelSet {
  const char* name;
  PairSumsU8 u8;
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

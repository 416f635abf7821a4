// The distance and element-type enums shared by the op entry points (plan.h), the CPU
// inner kernels (cpu/pair_sums.h) and the CUDA kernels; free of torch headers so that the
// per-instruction-set kernel files can include it.
#pragma once

namespace gamdss {

// The distance of docs/reselection.md.
enum class Distance : int {
  kL2 = 0,        // sqrt(sum (x_i - x_j)^2)
  kCentered = 1,  // the same after removing the pair's mean difference
  kWrapped = 2,   // "released_uint8": ((x_later - x_earlier) mod 256)^2, uint8 only
};

// The element type of the frames.
enum class Elem : int { kU8 = 0, kF16 = 1, kBF16 = 2, kF32 = 3, kF64 = 4 };

}  // namespace gamdss

// Sums over one block of frame elements, the inner loops of both CPU ops. No torch
// headers: this interface is compiled once per instruction set (baseline, AVX2, AVX2 with
// AVX-VNNI, AVX-512 VNNI on ymm, AVX-512) and chosen at run time.
#pragma once

#include <cstdint>

#include "distance.h"

namespace gamdss::kernels {

// Frames handled side by side in registers: the most column frames per call of u8_wrapped
// and floating (callers tile longer ranges); u8_stream tiles its frames itself.
constexpr int kMaxTile = 8;

// Sum and sum of squares of uint8 elements, exact.
struct U8Moments {
  int64_t sum = 0;
  int64_t sumsq = 0;
};

// uint8 Gram terms of one frame y against nx frames xs read before it, over elements
// [0, n) (pointers already offset to the first element): y_m gets y's moments added (the sum
// only with need_sum, or always by the VNNI and baseline variants) and, for i < nx,
// dot[i] += sum_k xs[i][k] y[k], all exact; x_sums[i] = sum_k xs[i][k] over the same
// elements (the VNNI and baseline variants need it). With these the squared distance of
// a pair is the exact |x|^2 + |y|^2 - 2 x.y and its sum of differences the difference of
// sums. z (or null) is a companion frame whose moments go to z_m: a frame needed next, read
// in the same call so that its memory reads overlap y's. The AVX2 variant reads y and z in
// one pass, as two sequential streams; the AVX-512 one reads each in a light pass of its
// own (see u8_stream_vnni for why).
using StreamU8 = void (*)(const uint8_t* y, const uint8_t* const* xs, const int64_t* x_sums, int nx,
                          const uint8_t* z, int64_t n, bool need_sum, U8Moments* y_m, U8Moments* z_m,
                          int64_t* dot);

// uint8 dots of ny columns with the same nx rows over elements [0, n), exact:
// dot[j * nx + i] += sum_k xs[i][k] ys[j][k]; x_sums[i] = sum_k xs[i][k] over the same
// elements (the VNNI variants need it). The vector variants have it (null in
// the baseline): block_pairs_u8_streamed then reads a piece's frames for their moments
// alone (u8_stream with no partners) and takes the dots of all its columns in one call,
// which keeps the rows in L1 across the columns (see u8_dots_columns_vnni).
using DotsColumnsU8 = void (*)(const uint8_t* const* ys, int ny, const uint8_t* const* xs, const int64_t* x_sums,
                               int nx, int64_t n, int64_t* dot);

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
  StreamU8 u8_stream;
  DotsColumnsU8 u8_dots_columns;  // or null
  WrappedU8 u8_wrapped;
  PairSumsFloat floating;
};

namespace baseline {
KernelSet kernels();
}
namespace avx2 {
KernelSet kernels();
}
namespace avxvnni {
KernelSet kernels();
}
namespace avx512_ymm {
KernelSet kernels();
}
namespace avx512 {
KernelSet kernels();
}

// The kernels used now: AVX-512 (with VNNI) where the CPU has it, else AVX2 with AVX-VNNI
// where it has that, else AVX2 (with F16C), else baseline. "avx512_ymm" (the AVX-VNNI
// scheme on AVX-512 VNNI's 256-bit form) is chosen by name only.
const KernelSet& active_kernels();
// "auto", "baseline", "avx2", "avxvnni", "avx512_ymm" or "avx512"; returns false when the
// choice is unavailable here.
bool select_kernels(const char* name);

}  // namespace gamdss::kernels

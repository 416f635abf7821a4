// Implementation of pair_sums.h, included once per instruction set inside a namespace
// (pair_sums_baseline.cpp, pair_sums_avx2.cpp, pair_sums_avxvnni.cpp,
// pair_sums_avx512_ymm.cpp, pair_sums_avx512.cpp). The portable loops write the summation
// order out as independent lanes, which the compiler vectorises without reassociation;
// the vector intrinsics follow exactly the same order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(GAMDSS_VNNI256_KERNEL)
// The AVX2 kernels with the uint8 dots and moments of 256-bit vpdpbusd: AVX-VNNI (VEX,
// pair_sums_avxvnni.cpp) or AVX-512 VNNI on ymm registers (EVEX, pair_sums_avx512_ymm.cpp).
#include <immintrin.h>
#define GAMDSS_AVX2 1
#define GAMDSS_VNNI256 1
#elif defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define GAMDSS_AVX512 1
#elif defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#define GAMDSS_AVX2 1
#endif

namespace gamdss::kernels::GAMDSS_KERNEL_NS {

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1fu) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);  // normal: rebias 15 -> 127
  } else {
    // zero or subnormal: man * 2^-24, exact in float
    float f = static_cast<float>(man) * 5.9604644775390625e-08f;
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Calls f(std::integral_constant<int, ny>{}) so that a kernel can keep ny accumulators in
// registers; ny in [1, kMaxTile].
template <typename F>
void with_tile(int ny, F&& f) {
  switch (ny) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

// with_tile, and the direction of the wrap-around difference as a compile-time bool:
// f(std::integral_constant<int, ny>{}, std::bool_constant<x_minus_y>{}).
template <typename F>
void with_tile_and_direction(int ny, bool x_minus_y, F&& f) {
  with_tile(ny, [&](auto tile) {
    if (x_minus_y) {
      f(tile, std::true_type{});
    } else {
      f(tile, std::false_type{});
    }
  });
}

// sum over elements [k0, n) of ((x - y) mod 256)^2 (XMinusY) or ((y - x) mod 256)^2: the
// scalar tail of the vector wrap-around kernels.
template <bool XMinusY>
int64_t u8_wrapped_tail(const uint8_t* x, const uint8_t* y, int64_t k0, int64_t n) {
  int64_t total = 0;
  for (int64_t t = k0; t < n; ++t) {
    const int64_t d = static_cast<uint8_t>(XMinusY ? x[t] - y[t] : y[t] - x[t]);
    total += d * d;
  }
  return total;
}

// ================================================================ uint8
constexpr int kU8Lanes = 32;
constexpr int64_t kU8Chunk = 8192;  // int32 lanes: 256 products of <= 65025 each
// Bytes of each frame per step of the column dots (u8_dots_columns_vnni, _avx2): the rows'
// steps (up to 8 x 2 KiB) stay in L1 while every column passes over them.
constexpr int64_t kColumnStepBytes = 2048;

// The loop order of the column dots (u8_dots_columns_vnni, _avx2) over elements
// [0, n_vec), a multiple of the vector width: rows in groups of up to MaxRows and columns in
// groups of up to kMaxTile, taken in pairs over steps of kColumnStepBytes, so that within a
// step each row is loaded from L2 (or further) once per group and then from L1 for every
// pair of columns. tile(nc, nx, ys, xs, k0, k1, lanes) adds the products of nc columns and
// nx rows (std::integral_constant) over [k0, k1) to int32 lanes (Lane vectors, at
// lanes[j * nx + i]); every lane_bytes the lanes are added to dot[j * nx_total + i] with
// sum(lane) -> int64.
template <typename Lane, int MaxRows, typename Tile, typename Sum>
void for_each_column_tile(const uint8_t* const* ys, int ny, const uint8_t* const* xs, int nx, int64_t n_vec,
                          int64_t lane_bytes, int64_t* dot, const Tile& tile, const Sum& sum) {
  alignas(64) Lane lanes[kMaxTile * MaxRows];
  for (int i0 = 0; i0 < nx; i0 += MaxRows) {
    const int rows = std::min(MaxRows, nx - i0);
    for (int j0 = 0; j0 < ny; j0 += kMaxTile) {
      const int cols = std::min(kMaxTile, ny - j0);
      for (int64_t f0 = 0; f0 < n_vec; f0 += lane_bytes) {
        const int64_t f1 = std::min(n_vec, f0 + lane_bytes);
        std::fill(lanes, lanes + cols * rows, Lane{});
        for (int64_t k0 = f0; k0 < f1; k0 += kColumnStepBytes) {
          const int64_t k1 = std::min(f1, k0 + kColumnStepBytes);
          for (int j = 0; j < cols; j += 2) {
            // rows <= MaxRows, so NX == rows; the min only keeps larger tiles from compiling.
            with_tile(rows, [&](auto tile_rows) {
              constexpr int NX = std::min(decltype(tile_rows)::value, MaxRows);
              if (cols - j >= 2) {
                tile(std::integral_constant<int, 2>{}, std::integral_constant<int, NX>{}, ys + j0 + j, xs + i0, k0, k1,
                     lanes + j * NX);
              } else {
                tile(std::integral_constant<int, 1>{}, std::integral_constant<int, NX>{}, ys + j0 + j, xs + i0, k0, k1,
                     lanes + j * NX);
              }
            });
          }
        }
        for (int j = 0; j < cols; ++j) {
          for (int i = 0; i < rows; ++i) dot[(j0 + j) * nx + i0 + i] += sum(lanes[j * rows + i]);
        }
      }
    }
  }
}

inline void u8_stats_portable(const uint8_t* x, int64_t n, int64_t* sum, int64_t* sumsq) {
  int64_t s1 = 0, s2 = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kU8Chunk) {
    const int64_t c1 = std::min(n, c0 + kU8Chunk);
    int32_t a1[kU8Lanes] = {}, a2[kU8Lanes] = {};
    int64_t k = c0;
    for (; k + kU8Lanes <= c1; k += kU8Lanes) {
      for (int l = 0; l < kU8Lanes; ++l) {
        const int32_t v = x[k + l];
        a1[l] += v;
        a2[l] += v * v;
      }
    }
    for (; k < c1; ++k) {
      a1[0] += x[k];
      a2[0] += static_cast<int32_t>(x[k]) * x[k];
    }
    for (int l = 0; l < kU8Lanes; ++l) {
      s1 += a1[l];
      s2 += a2[l];
    }
  }
  *sum += s1;
  *sumsq += s2;
}

// The dots use the same identity as the AVX-512 variant, sum x (y - 128) + 128 sum x, so
// that the sums of the xs it needs are checked wherever the portable variant runs.
inline void u8_stream_portable(const uint8_t* y, const uint8_t* const* xs, const int64_t* x_sums, int nx,
                               const uint8_t* z, int64_t n, bool, U8Moments* y_m, U8Moments* z_m, int64_t* dot) {
  u8_stats_portable(y, n, &y_m->sum, &y_m->sumsq);
  for (int i = 0; i < nx; ++i) {
    const uint8_t* x = xs[i];
    int64_t total = 0;
    for (int64_t c0 = 0; c0 < n; c0 += kU8Chunk) {
      const int64_t c1 = std::min(n, c0 + kU8Chunk);
      int32_t acc[kU8Lanes] = {};
      int64_t k = c0;
      for (; k + kU8Lanes <= c1; k += kU8Lanes) {
        for (int l = 0; l < kU8Lanes; ++l) acc[l] += static_cast<int32_t>(x[k + l]) * (y[k + l] - 128);
      }
      for (; k < c1; ++k) acc[0] += static_cast<int32_t>(x[k]) * (y[k] - 128);
      for (int l = 0; l < kU8Lanes; ++l) total += acc[l];
    }
    dot[i] += total + 128 * x_sums[i];
  }
  if (z != nullptr) u8_stats_portable(z, n, &z_m->sum, &z_m->sumsq);
}

inline void u8_wrapped_portable(bool x_minus_y, const uint8_t* x, const uint8_t* const* ys, int ny,
                                int64_t n, int64_t* sq) {
  for (int j = 0; j < ny; ++j) {
    const uint8_t* y = ys[j];
    const uint8_t* p = x_minus_y ? x : y;  // delta = p - q mod 256
    const uint8_t* q = x_minus_y ? y : x;
    int64_t total = 0;
    for (int64_t c0 = 0; c0 < n; c0 += kU8Chunk) {
      const int64_t c1 = std::min(n, c0 + kU8Chunk);
      int32_t acc[kU8Lanes] = {};
      int64_t k = c0;
      for (; k + kU8Lanes <= c1; k += kU8Lanes) {
        for (int l = 0; l < kU8Lanes; ++l) {
          const int32_t d = static_cast<uint8_t>(p[k + l] - q[k + l]);
          acc[l] += d * d;
        }
      }
      for (; k < c1; ++k) {
        const int32_t d = static_cast<uint8_t>(p[k] - q[k]);
        acc[0] += d * d;
      }
      for (int l = 0; l < kU8Lanes; ++l) total += acc[l];
    }
    sq[j] += total;
  }
}

#ifdef GAMDSS_AVX512
// 32-byte steps of the wrap-around's vpdpwssd between flushes of the int32 lanes to int64:
// each step adds at most 2 squares <= 65025 per lane, under the 4 * 65025 of the bound
// below, so a lane stays below 2^31; the 16 lanes are added in int64 (their sum may not fit
// in int32).
constexpr int64_t kAvxSteps = 2048;
static_assert(kAvxSteps * 4 * 65025 < (int64_t{1} << 31));

inline int64_t avx512_sum_epi32_as_i64(__m512i v) {
  return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)),
                                                  _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1))));
}


template <int NY, bool XMinusY>
void u8_wrapped_avx512_tile(const uint8_t* x, const uint8_t* const* ys, int64_t n, int64_t* sq) {
  const int64_t n_vec = n - n % 32;
  int64_t total[NY] = {};
  int64_t k = 0;
  while (k < n_vec) {
    const int64_t k_end = std::min(n_vec, k + 32 * kAvxSteps);
    __m512i acc[NY];
    for (int j = 0; j < NY; ++j) acc[j] = _mm512_setzero_si512();
    for (; k < k_end; k += 32) {
      const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      for (int j = 0; j < NY; ++j) {
        const __m256i yb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys[j] + k));
        const __m512i d = _mm512_cvtepu8_epi16(XMinusY ? _mm256_sub_epi8(xb, yb) : _mm256_sub_epi8(yb, xb));
        acc[j] = _mm512_dpwssd_epi32(acc[j], d, d);
      }
    }
    for (int j = 0; j < NY; ++j) total[j] += avx512_sum_epi32_as_i64(acc[j]);
  }
  for (int j = 0; j < NY; ++j) sq[j] += total[j] + u8_wrapped_tail<XMinusY>(x, ys[j], n_vec, n);
}

inline void u8_wrapped_avx512(bool x_minus_y, const uint8_t* x, const uint8_t* const* ys, int ny,
                              int64_t n, int64_t* sq) {
  with_tile_and_direction(ny, x_minus_y, [&](auto tile, auto minus) {
    u8_wrapped_avx512_tile<decltype(tile)::value, decltype(minus)::value>(x, ys, n, sq);
  });
}
#endif  // GAMDSS_AVX512

#ifdef GAMDSS_AVX2
// 32-byte steps between flushes of the int32 lanes to int64: each step adds at most two
// vpmaddwd results (each <= 2 * 255 * 255) per lane. Bytes are widened to 16 bits by
// unpacking with zero, which permutes elements within a step identically for every frame,
// so every product pairs the same element of both frames.
constexpr int64_t kAvx2Steps = 4096;

inline int64_t avx2_sum_epi32_as_i64(__m256i v) {
  alignas(32) int32_t l[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), v);
  int64_t t = 0;
  for (int i = 0; i < 8; ++i) t += l[i];
  return t;
}

template <int NY, bool XMinusY>
void u8_wrapped_avx2_tile(const uint8_t* x, const uint8_t* const* ys, int64_t n, int64_t* sq) {
  const __m256i zero = _mm256_setzero_si256();
  const int64_t n_vec = n - n % 32;
  int64_t total[NY] = {};
  int64_t k = 0;
  while (k < n_vec) {
    const int64_t k_end = std::min(n_vec, k + 32 * kAvx2Steps);
    __m256i acc[NY];
    for (int j = 0; j < NY; ++j) acc[j] = zero;
    for (; k < k_end; k += 32) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      for (int j = 0; j < NY; ++j) {
        const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys[j] + k));
        const __m256i d = XMinusY ? _mm256_sub_epi8(xv, yv) : _mm256_sub_epi8(yv, xv);
        const __m256i dl = _mm256_unpacklo_epi8(d, zero);
        const __m256i dh = _mm256_unpackhi_epi8(d, zero);
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(dl, dl));
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(dh, dh));
      }
    }
    for (int j = 0; j < NY; ++j) total[j] += avx2_sum_epi32_as_i64(acc[j]);
  }
  for (int j = 0; j < NY; ++j) sq[j] += total[j] + u8_wrapped_tail<XMinusY>(x, ys[j], n_vec, n);
}

inline void u8_wrapped_avx2(bool x_minus_y, const uint8_t* x, const uint8_t* const* ys, int ny,
                            int64_t n, int64_t* sq) {
  with_tile_and_direction(ny, x_minus_y, [&](auto tile, auto minus) {
    u8_wrapped_avx2_tile<decltype(tile)::value, decltype(minus)::value>(x, ys, n, sq);
  });
}
#endif  // GAMDSS_AVX2

#ifdef GAMDSS_AVX2
// uint8 Gram terms with AVX2 and no VNNI: bytes widened to int16 by unpacking with zero
// (in-lane, and on Zen 3 half the cost of vpmovzxbw), then vpmaddwd. The unpacking permutes
// the elements of 32 bytes identically for every frame, so every product pairs the same
// element of both frames.

// Elements per flush of the moments' int32 lanes to int64: a lane takes two vpmaddwd
// results (<= 2 * 255^2 each) per 32 elements.
constexpr int64_t kAvx2Chunk = 2048;
static_assert(kAvx2Chunk / 32 * 2 * (2 * 255 * 255) < (int64_t{1} << 31));

struct Avx2Moments {
  __m256i sumsq = _mm256_setzero_si256();
  __m256i sum = _mm256_setzero_si256();  // int64 lanes (vpsadbw)

  template <bool NeedSum>
  void add(__m256i bytes) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i lo = _mm256_unpacklo_epi8(bytes, zero), hi = _mm256_unpackhi_epi8(bytes, zero);
    sumsq = _mm256_add_epi32(sumsq, _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi)));
    if constexpr (NeedSum) sum = _mm256_add_epi64(sum, _mm256_sad_epu8(bytes, zero));
  }
  template <bool NeedSum>
  void flush(U8Moments* m) const {
    m->sumsq += avx2_sum_epi32_as_i64(sumsq);
    if constexpr (NeedSum) {
      const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      m->sum += _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
    }
  }
};

// Moments of y (and of z when HasZ, in the same loop) over [k0, k0 + n), n <= kAvx2Chunk.
template <bool NeedSum, bool HasZ>
void u8_moments_avx2_chunk(const uint8_t* y, const uint8_t* z, int64_t k0, int64_t n, U8Moments* y_m,
                           U8Moments* z_m) {
  Avx2Moments ym, zm;
  for (int64_t k = k0; k < k0 + n; k += 32) {
    ym.add<NeedSum>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + k)));
    if constexpr (HasZ) zm.add<NeedSum>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(z + k)));
  }
  ym.flush<NeedSum>(y_m);
  if constexpr (HasZ) zm.flush<NeedSum>(z_m);
}

// Dots of NC columns (1 or 2) with NX <= kAvx2TileRows rows over [k0, k1) (a multiple of 32
// bytes), added to int32 lanes that stay in memory between calls: lanes[j * NX + i] += the
// lanes of xs[i] . ys[j]. Each row's 32 bytes are loaded and widened once for both
// columns, each column's once for all rows. A lane takes two vpmaddwd results
// (<= 2 * 255^2 each) per 32 bytes; the caller flushes the lanes at least every
// kAvx2LaneBytes bytes.
template <int NC, int NX>
void u8_dots_columns_avx2_tile(const uint8_t* const* ys, const uint8_t* const* xs, int64_t k0, int64_t k1,
                               __m256i* lanes) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc[NC][NX];
  for (int j = 0; j < NC; ++j) {
    for (int i = 0; i < NX; ++i) acc[j][i] = _mm256_load_si256(lanes + j * NX + i);
  }
  for (int64_t k = k0; k < k1; k += 32) {
    __m256i ylo[NC], yhi[NC];
    for (int j = 0; j < NC; ++j) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys[j] + k));
      ylo[j] = _mm256_unpacklo_epi8(b, zero);
      yhi[j] = _mm256_unpackhi_epi8(b, zero);
    }
    for (int i = 0; i < NX; ++i) {
      const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[i] + k));
      const __m256i xlo = _mm256_unpacklo_epi8(xb, zero), xhi = _mm256_unpackhi_epi8(xb, zero);
      for (int j = 0; j < NC; ++j) {
        acc[j][i] = _mm256_add_epi32(acc[j][i], _mm256_add_epi32(_mm256_madd_epi16(xlo, ylo[j]),
                                                                 _mm256_madd_epi16(xhi, yhi[j])));
      }
    }
  }
  for (int j = 0; j < NC; ++j) {
    for (int i = 0; i < NX; ++i) _mm256_store_si256(lanes + j * NX + i, acc[j][i]);
  }
}

// Bytes between flushes of u8_dots_columns_avx2's int32 lanes to int64.
constexpr int64_t kAvx2LaneBytes = 65536;
static_assert(kAvx2LaneBytes / 32 * 2 * (2 * 255 * 255) < (int64_t{1} << 31));
// Rows per tile: 2 x 4 accumulators, 4 widened column registers, a row and its two widened
// halves fit the 16 ymm registers.
constexpr int kAvx2TileRows = 4;

// DotsColumnsU8 with AVX2, in the loop order of for_each_column_tile with rows in groups of
// up to kAvx2TileRows, int32 lanes added to int64 once per kAvx2LaneBytes. On Zen 4 running
// this kernel (2026-12-01, one process, old and new alternating), cold calls of (a) took
// 8.11 and 8.32 ms against 9.52 and 8.89 ms with the dots taken in each frame's read, as
// the AVX2 variant did before.
inline void u8_dots_columns_avx2(const uint8_t* const* ys, int ny, const uint8_t* const* xs, const int64_t*, int nx,
                                 int64_t n, int64_t* dot) {
  const int64_t n32 = n - n % 32;
  for_each_column_tile<__m256i, kAvx2TileRows>(
      ys, ny, xs, nx, n32, kAvx2LaneBytes, dot,
      [](auto nc, auto nx_tile, const uint8_t* const* y, const uint8_t* const* x, int64_t k0, int64_t k1,
         __m256i* lanes) {
        u8_dots_columns_avx2_tile<decltype(nc)::value, decltype(nx_tile)::value>(y, x, k0, k1, lanes);
      },
      avx2_sum_epi32_as_i64);
  for (int j = 0; j < ny; ++j) {
    for (int i = 0; i < nx; ++i) {
      int64_t tail = 0;
      for (int64_t t = n32; t < n; ++t) tail += static_cast<int64_t>(xs[i][t]) * ys[j][t];
      dot[j * nx + i] += tail;
    }
  }
}

// u8_stream with AVX2: the moments of y and of its companion z in one pass, then (with
// partners) y's dots by u8_dots_columns_avx2. The op calls it with no partners and takes
// the dots of a piece's columns together. One pass reads y and z as two sequential
// streams (on Zen 3, with y's dots then in the same pass, 2-9% faster cold than z in a pass
// of its own; on Zen 4 running this kernel, two passes were no faster: 7.94 vs 8.04 ms).
inline void u8_stream_avx2(const uint8_t* y, const uint8_t* const* xs, const int64_t*, int nx, const uint8_t* z,
                           int64_t n, bool need_sum, U8Moments* y_m, U8Moments* z_m, int64_t* dot) {
  const int64_t n32 = n - n % 32;
  for (int64_t k0 = 0; k0 < n32; k0 += kAvx2Chunk) {
    const int64_t len = std::min(kAvx2Chunk, n32 - k0);
    if (need_sum) {
      if (z != nullptr) {
        u8_moments_avx2_chunk<true, true>(y, z, k0, len, y_m, z_m);
      } else {
        u8_moments_avx2_chunk<true, false>(y, z, k0, len, y_m, z_m);
      }
    } else if (z != nullptr) {
      u8_moments_avx2_chunk<false, true>(y, z, k0, len, y_m, z_m);
    } else {
      u8_moments_avx2_chunk<false, false>(y, z, k0, len, y_m, z_m);
    }
  }
  for (int64_t k = n32; k < n; ++k) {
    if (need_sum) y_m->sum += y[k];
    y_m->sumsq += static_cast<int64_t>(y[k]) * y[k];
    if (z != nullptr) {
      if (need_sum) z_m->sum += z[k];
      z_m->sumsq += static_cast<int64_t>(z[k]) * z[k];
    }
  }
  if (nx > 0) u8_dots_columns_avx2(&y, 1, xs, nullptr, nx, n, dot);
}
#endif  // GAMDSS_AVX2

#if defined(GAMDSS_AVX512) || defined(GAMDSS_VNNI256)
// uint8 moments and dots with VNNI's vpdpbusd, on 64-byte (AVX-512) or 32-byte (AVX-VNNI, or
// AVX-512 VNNI on ymm) vectors. Per vector, y made signed once (y - 128) serves every dot,
// with the x on the unsigned side of vpdpbusd: sum x (y - 128) + 128 sum x = x.y; and y
// against itself gives its square, |y|^2 = sum y (y - 128) + 128 sum y, with vpsadbw's sum
// y. An int32 lane takes 4 products of magnitude <= 255 * 128 per step, at most kVnniSteps
// steps between flushes to int64, so the lanes are exact.
#ifdef GAMDSS_AVX512
struct Vnni {
  using Vec = __m512i;
  static constexpr int64_t kBytes = 64;
  static constexpr int kTileRows = kMaxTile;  // 2 x 8 accumulators of the 32 zmm registers
  static Vec zero() { return _mm512_setzero_si512(); }
  static Vec bias() { return _mm512_set1_epi8(static_cast<char>(0x80)); }
  static Vec load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static Vec load_lanes(const Vec* p) { return _mm512_load_si512(p); }
  static void store_lanes(Vec* p, Vec v) { _mm512_store_si512(p, v); }
  static Vec flip(Vec b, Vec bias) { return _mm512_xor_si512(b, bias); }
  static Vec dot(Vec acc, Vec u, Vec s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static Vec add_sums(Vec sum, Vec bytes) { return _mm512_add_epi64(sum, _mm512_sad_epu8(bytes, zero())); }
  static int64_t total_i64(Vec v) { return _mm512_reduce_add_epi64(v); }
  static int64_t total_i32(Vec v) { return avx512_sum_epi32_as_i64(v); }
};
#else
struct Vnni {
  using Vec = __m256i;
  static constexpr int64_t kBytes = 32;
  // 2 x 6 accumulators, the two signed columns, a row and the bias fill the 16 ymm
  // registers that AVX-VNNI (VEX) has.
  static constexpr int kTileRows = 6;
  static Vec zero() { return _mm256_setzero_si256(); }
  static Vec bias() { return _mm256_set1_epi8(static_cast<char>(0x80)); }
  static Vec load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Vec load_lanes(const Vec* p) { return _mm256_load_si256(p); }
  static void store_lanes(Vec* p, Vec v) { _mm256_store_si256(p, v); }
  static Vec flip(Vec b, Vec bias) { return _mm256_xor_si256(b, bias); }
#if defined(__AVXVNNI__) && !defined(__AVX512VNNI__)
  static Vec dot(Vec acc, Vec u, Vec s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
#else
  static Vec dot(Vec acc, Vec u, Vec s) { return _mm256_dpbusd_epi32(acc, u, s); }
#endif
  static Vec add_sums(Vec sum, Vec bytes) { return _mm256_add_epi64(sum, _mm256_sad_epu8(bytes, zero())); }
  static int64_t total_i64(Vec v) {
    const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
  }
  static int64_t total_i32(Vec v) { return avx2_sum_epi32_as_i64(v); }
};
#endif

constexpr int64_t kVnniSteps = 2048;
static_assert(kVnniSteps * 4 * 255 * 128 < (int64_t{1} << 31));

struct VnniMoments {
  Vnni::Vec sum = Vnni::zero();     // int64 lanes (vpsadbw)
  Vnni::Vec biased = Vnni::zero();  // int32 lanes: sum y (y - 128)

  void add(Vnni::Vec bytes, Vnni::Vec signed_bytes) {
    sum = Vnni::add_sums(sum, bytes);
    biased = Vnni::dot(biased, bytes, signed_bytes);
  }
  void flush(U8Moments* m) const {
    const int64_t s = Vnni::total_i64(sum);
    m->sum += s;
    m->sumsq += Vnni::total_i32(biased) + 128 * s;
  }
};

// Moments of x over [0, n): a light loop (one load, four vector operations per vector), so
// that with x in memory many lines are in flight; then the scalar tail.
inline void u8_moments_vnni(const uint8_t* x, int64_t n, U8Moments* m) {
  const Vnni::Vec bias = Vnni::bias();
  const int64_t n_vec = n - n % Vnni::kBytes;
  for (int64_t k0 = 0; k0 < n_vec; k0 += Vnni::kBytes * kVnniSteps) {
    VnniMoments acc;
    const int64_t k1 = std::min(n_vec, k0 + Vnni::kBytes * kVnniSteps);
    for (int64_t k = k0; k < k1; k += Vnni::kBytes) {
      const Vnni::Vec b = Vnni::load(x + k);
      acc.add(b, Vnni::flip(b, bias));
    }
    acc.flush(m);
  }
  for (int64_t t = n_vec; t < n; ++t) {
    m->sum += x[t];
    m->sumsq += static_cast<int64_t>(x[t]) * x[t];
  }
}

// Dots of two columns (NC = 2) or one with NX rows over [k0, k1) (a multiple of the vector
// size), added to int32 lanes that stay in memory between calls: lanes[j * NX + i] += the
// lanes of xs[i] (ys[j] - 128). Each row's vector is loaded once for both columns. The
// caller flushes the lanes to int64 at least every kVnniSteps vectors.
template <int NC, int NX>
void u8_dots_columns_vnni_tile(const uint8_t* const* ys, const uint8_t* const* xs, int64_t k0, int64_t k1,
                               Vnni::Vec* lanes) {
  const Vnni::Vec bias = Vnni::bias();
  Vnni::Vec acc[NC][NX];
  for (int j = 0; j < NC; ++j) {
    for (int i = 0; i < NX; ++i) acc[j][i] = Vnni::load_lanes(lanes + j * NX + i);
  }
  for (int64_t k = k0; k < k1; k += Vnni::kBytes) {
    Vnni::Vec bs[NC];
    for (int j = 0; j < NC; ++j) bs[j] = Vnni::flip(Vnni::load(ys[j] + k), bias);
    for (int i = 0; i < NX; ++i) {
      const Vnni::Vec x = Vnni::load(xs[i] + k);
      for (int j = 0; j < NC; ++j) acc[j][i] = Vnni::dot(acc[j][i], x, bs[j]);
    }
  }
  for (int j = 0; j < NC; ++j) {
    for (int i = 0; i < NX; ++i) Vnni::store_lanes(lanes + j * NX + i, acc[j][i]);
  }
}

// DotsColumnsU8 with VNNI, in the loop order of for_each_column_tile with rows in groups of
// up to Vnni::kTileRows: each load of a row serves two columns. The int32 lanes of a group
// are added to int64 once per kVnniSteps vectors (128 KiB with AVX-512: once per piece of
// the benchmark's workloads), not after every step: on Zen 4 that made the dots of a 32
// KiB piece 8-16% faster, and cold calls 3-7% (AVX-512).
inline void u8_dots_columns_vnni(const uint8_t* const* ys, int ny, const uint8_t* const* xs, const int64_t* x_sums,
                                 int nx, int64_t n, int64_t* dot) {
  const int64_t n_vec = n - n % Vnni::kBytes;
  for_each_column_tile<Vnni::Vec, Vnni::kTileRows>(
      ys, ny, xs, nx, n_vec, Vnni::kBytes * kVnniSteps, dot,
      [](auto nc, auto nx_tile, const uint8_t* const* y, const uint8_t* const* x, int64_t k0, int64_t k1,
         Vnni::Vec* lanes) {
        u8_dots_columns_vnni_tile<decltype(nc)::value, decltype(nx_tile)::value>(y, x, k0, k1, lanes);
      },
      Vnni::total_i32);
  for (int j = 0; j < ny; ++j) {
    for (int i = 0; i < nx; ++i) {
      int64_t tail = 0;
      for (int64_t t = n_vec; t < n; ++t) tail += static_cast<int64_t>(xs[i][t]) * (static_cast<int64_t>(ys[j][t]) - 128);
      dot[j * nx + i] += tail + 128 * x_sums[i];
    }
  }
}

// u8_stream with VNNI. Memory reads and arithmetic are kept in separate passes: y's moments
// (y from memory; with its sum, which the dots' correction needs), then its dots with the
// xs (y now in L1/L2, the xs read just before), then z's moments (z from memory). The op
// calls it with no xs and takes the dots of a piece's columns together with
// u8_dots_columns_vnni. On Zen 4 (2026-12-01, AVX-512) separate light passes were faster
// with cold frames than one pass reading y and z together (as the AVX2 variant does) and
// than prefetching z or the next frame into L2 during the dots: a loop with many
// instructions per cache line keeps few lines in flight, and a core then reads far below
// its bandwidth. The moments by vpdpbusd (above) instead of widening to 16 bits and
// vpdpwssd made whole cold calls 1-10% faster there.
inline void u8_stream_vnni(const uint8_t* y, const uint8_t* const* xs, const int64_t* x_sums, int nx,
                           const uint8_t* z, int64_t n, bool, U8Moments* y_m, U8Moments* z_m, int64_t* dot) {
  u8_moments_vnni(y, n, y_m);
  if (nx > 0) u8_dots_columns_vnni(&y, 1, xs, x_sums, nx, n, dot);
  if (z != nullptr) u8_moments_vnni(z, n, z_m);
}
#endif  // GAMDSS_AVX512 || GAMDSS_VNNI256

// ================================================================ floating
constexpr int64_t kFloatChunk = 512;  // a multiple of both lane counts
constexpr int kF32Lanes = 16;
constexpr int kF64Lanes = 8;

struct LoadF16 {
  using T = uint16_t;
  static float get(T v) { return half_to_float(v); }
};
struct LoadBF16 {
  using T = uint16_t;
  static float get(T v) { return bf16_to_float(v); }
};
struct LoadF32 {
  using T = float;
  static float get(T v) { return v; }
};
struct LoadF64 {
  using T = double;
  static double get(T v) { return v; }
};

// kL2 for 16/32-bit floats: float32 lanes; each chunk's lanes summed in order into double.
template <typename Load>
void float_l2_portable(const typename Load::T* x, const typename Load::T* y, int64_t n, double* sq) {
  double total = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    float acc[kF32Lanes] = {};
    int64_t k = c0;
    for (; k + kF32Lanes <= c1; k += kF32Lanes) {
      for (int l = 0; l < kF32Lanes; ++l) {
        const float d = Load::get(y[k + l]) - Load::get(x[k + l]);
        acc[l] += d * d;
      }
    }
    for (int l = 0; k < c1; ++k, ++l) {
      const float d = Load::get(y[k]) - Load::get(x[k]);
      acc[l] += d * d;
    }
    double chunk = 0.0;
    for (int l = 0; l < kF32Lanes; ++l) chunk += static_cast<double>(acc[l]);
    total += chunk;
  }
  *sq += total;
}

// kCentered (any floating dtype) and kL2 for float64: float64 lanes.
template <typename Load>
void float_f64acc_portable(const typename Load::T* x, const typename Load::T* y, int64_t n,
                           bool centered, double* sq, double* lin) {
  double t2 = 0.0, t1 = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    double a2[kF64Lanes] = {}, a1[kF64Lanes] = {};
    int64_t k = c0;
    for (; k + kF64Lanes <= c1; k += kF64Lanes) {
      for (int l = 0; l < kF64Lanes; ++l) {
        const double d = static_cast<double>(Load::get(y[k + l])) - static_cast<double>(Load::get(x[k + l]));
        a2[l] += d * d;
        a1[l] += d;
      }
    }
    for (int l = 0; k < c1; ++k, ++l) {
      const double d = static_cast<double>(Load::get(y[k])) - static_cast<double>(Load::get(x[k]));
      a2[l] += d * d;
      a1[l] += d;
    }
    double c2 = 0.0, cs1 = 0.0;
    for (int l = 0; l < kF64Lanes; ++l) {
      c2 += a2[l];
      cs1 += a1[l];
    }
    t2 += c2;
    t1 += cs1;
  }
  *sq += t2;
  if (centered) *lin += t1;
}

#ifdef GAMDSS_AVX512
// Vector loads of 16 (float32 lanes) or 8 (float64 lanes) elements, masked at the tail
// (masked-off lanes read 0, so they add 0 * 0 and leave the lane unchanged).
struct VecF32 {
  using T = float;
  static __m512 load16(const T* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static __m512d load8(const T* p, __mmask8 m) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, p)); }
};
struct VecF16 {
  using T = uint16_t;
  static __m512 load16(const T* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static __m512d load8(const T* p, __mmask8 m) { return _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, p))); }
};
struct VecBF16 {
  using T = uint16_t;
  static __m512 load16(const T* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
  static __m512d load8(const T* p, __mmask8 m) {
    return _mm512_cvtps_pd(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, p)), 16)));
  }
};
struct VecF64 {
  using T = double;
  static __m512d load8(const T* p, __mmask8 m) { return _mm512_maskz_loadu_pd(m, p); }
};

template <int NY, typename V>
void float_l2_avx512_tile(const typename V::T* x, const typename V::T* const* ys, int64_t n, double* sq) {
  double total[NY] = {};
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    __m512 acc[NY];
    for (int j = 0; j < NY; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t k = c0; k < c1; k += kF32Lanes) {
      const int64_t left = c1 - k;
      const __mmask16 m = left >= kF32Lanes ? static_cast<__mmask16>(0xffff)
                                            : static_cast<__mmask16>((1u << left) - 1u);
      const __m512 xv = V::load16(x + k, m);
      for (int j = 0; j < NY; ++j) {
        const __m512 d = _mm512_sub_ps(V::load16(ys[j] + k, m), xv);
        acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(d, d));
      }
    }
    for (int j = 0; j < NY; ++j) {
      alignas(64) float lanes[kF32Lanes];
      _mm512_store_ps(lanes, acc[j]);
      double chunk = 0.0;
      for (int l = 0; l < kF32Lanes; ++l) chunk += static_cast<double>(lanes[l]);
      total[j] += chunk;
    }
  }
  for (int j = 0; j < NY; ++j) sq[j] += total[j];
}

template <int NY, typename V>
void float_f64acc_avx512_tile(const typename V::T* x, const typename V::T* const* ys, int64_t n,
                              bool centered, double* sq, double* lin) {
  double t2[NY] = {}, t1[NY] = {};
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    __m512d a2[NY], a1[NY];
    for (int j = 0; j < NY; ++j) {
      a2[j] = _mm512_setzero_pd();
      a1[j] = _mm512_setzero_pd();
    }
    for (int64_t k = c0; k < c1; k += kF64Lanes) {
      const int64_t left = c1 - k;
      const __mmask8 m = left >= kF64Lanes ? static_cast<__mmask8>(0xff)
                                           : static_cast<__mmask8>((1u << left) - 1u);
      const __m512d xv = V::load8(x + k, m);
      for (int j = 0; j < NY; ++j) {
        const __m512d d = _mm512_sub_pd(V::load8(ys[j] + k, m), xv);
        a2[j] = _mm512_add_pd(a2[j], _mm512_mul_pd(d, d));
        a1[j] = _mm512_add_pd(a1[j], d);
      }
    }
    for (int j = 0; j < NY; ++j) {
      alignas(64) double l2[kF64Lanes], l1[kF64Lanes];
      _mm512_store_pd(l2, a2[j]);
      _mm512_store_pd(l1, a1[j]);
      double c2 = 0.0, cs1 = 0.0;
      for (int l = 0; l < kF64Lanes; ++l) {
        c2 += l2[l];
        cs1 += l1[l];
      }
      t2[j] += c2;
      t1[j] += cs1;
    }
  }
  for (int j = 0; j < NY; ++j) {
    sq[j] += t2[j];
    if (centered) lin[j] += t1[j];
  }
}

template <typename V, bool kF32Acc>
void float_avx512(const void* xv, const void* const* ysv, int ny, int64_t n, bool centered,
                  double* sq, double* lin) {
  using T = typename V::T;
  const T* x = static_cast<const T*>(xv);
  const T* const* ys = reinterpret_cast<const T* const*>(ysv);
  with_tile(ny, [&](auto tile) {
    constexpr int NY = decltype(tile)::value;
    if constexpr (kF32Acc) {
      float_l2_avx512_tile<NY, V>(x, ys, n, sq);
    } else {
      float_f64acc_avx512_tile<NY, V>(x, ys, n, centered, sq, lin);
    }
  });
}
#endif  // GAMDSS_AVX512

#ifdef GAMDSS_AVX2
// The same lanes as the portable loops: float32 lanes 0-7 and 8-15 in two registers,
// float64 lanes 0-3 and 4-7 in two. The tail of a chunk is copied into a zeroed buffer,
// so the missing elements give 0 - 0 and leave their lanes unchanged.
struct Avx2F32 {
  using T = float;
  static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
  static __m256d load4(const T* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
};
struct Avx2F16 {
  using T = uint16_t;
  static __m256 load8(const T* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256d load4(const T* p) {
    return _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};
struct Avx2BF16 {
  using T = uint16_t;
  static __m256 load8(const T* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static __m256d load4(const T* p) {
    return _mm256_cvtps_pd(_mm_castsi128_ps(
        _mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), 16)));
  }
};
struct Avx2F64 {
  using T = double;
  static __m256d load4(const T* p) { return _mm256_loadu_pd(p); }
};

// Tiles of at most 4 column frames keep the accumulators in registers; each pair's sums
// do not depend on the tiling.
constexpr int kAvx2FloatTile = 4;

template <int NY, typename V>
void float_l2_avx2_tile(const typename V::T* x, const typename V::T* const* ys, int64_t n, double* sq) {
  using T = typename V::T;
  double total[NY] = {};
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    __m256 lo[NY], hi[NY];
    for (int j = 0; j < NY; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
    int64_t k = c0;
    for (; k + kF32Lanes <= c1; k += kF32Lanes) {
      const __m256 x0 = V::load8(x + k), x1 = V::load8(x + k + 8);
      for (int j = 0; j < NY; ++j) {
        const __m256 d0 = _mm256_sub_ps(V::load8(ys[j] + k), x0);
        const __m256 d1 = _mm256_sub_ps(V::load8(ys[j] + k + 8), x1);
        lo[j] = _mm256_add_ps(lo[j], _mm256_mul_ps(d0, d0));
        hi[j] = _mm256_add_ps(hi[j], _mm256_mul_ps(d1, d1));
      }
    }
    if (k < c1) {
      T xt[kF32Lanes] = {}, yt[kF32Lanes] = {};
      std::memcpy(xt, x + k, (c1 - k) * sizeof(T));
      const __m256 x0 = V::load8(xt), x1 = V::load8(xt + 8);
      for (int j = 0; j < NY; ++j) {
        std::memcpy(yt, ys[j] + k, (c1 - k) * sizeof(T));
        const __m256 d0 = _mm256_sub_ps(V::load8(yt), x0);
        const __m256 d1 = _mm256_sub_ps(V::load8(yt + 8), x1);
        lo[j] = _mm256_add_ps(lo[j], _mm256_mul_ps(d0, d0));
        hi[j] = _mm256_add_ps(hi[j], _mm256_mul_ps(d1, d1));
      }
    }
    for (int j = 0; j < NY; ++j) {
      alignas(32) float lanes[kF32Lanes];
      _mm256_store_ps(lanes, lo[j]);
      _mm256_store_ps(lanes + 8, hi[j]);
      double chunk = 0.0;
      for (int l = 0; l < kF32Lanes; ++l) chunk += static_cast<double>(lanes[l]);
      total[j] += chunk;
    }
  }
  for (int j = 0; j < NY; ++j) sq[j] += total[j];
}

template <int NY, typename V>
void float_f64acc_avx2_tile(const typename V::T* x, const typename V::T* const* ys, int64_t n,
                            bool centered, double* sq, double* lin) {
  using T = typename V::T;
  double t2[NY] = {}, t1[NY] = {};
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    __m256d a2l[NY], a2h[NY], a1l[NY], a1h[NY];
    for (int j = 0; j < NY; ++j) a2l[j] = a2h[j] = a1l[j] = a1h[j] = _mm256_setzero_pd();
    auto step = [&](const T* xp, const T* const* yp, int64_t off) {
      const __m256d x0 = V::load4(xp), x1 = V::load4(xp + 4);
      for (int j = 0; j < NY; ++j) {
        const __m256d d0 = _mm256_sub_pd(V::load4(yp[j] + off), x0);
        const __m256d d1 = _mm256_sub_pd(V::load4(yp[j] + off + 4), x1);
        a2l[j] = _mm256_add_pd(a2l[j], _mm256_mul_pd(d0, d0));
        a2h[j] = _mm256_add_pd(a2h[j], _mm256_mul_pd(d1, d1));
        a1l[j] = _mm256_add_pd(a1l[j], d0);
        a1h[j] = _mm256_add_pd(a1h[j], d1);
      }
    };
    int64_t k = c0;
    for (; k + kF64Lanes <= c1; k += kF64Lanes) step(x + k, ys, k);
    if (k < c1) {
      T xt[kF64Lanes] = {}, yt[NY][kF64Lanes] = {};
      const T* yp[NY];
      std::memcpy(xt, x + k, (c1 - k) * sizeof(T));
      for (int j = 0; j < NY; ++j) {
        std::memcpy(yt[j], ys[j] + k, (c1 - k) * sizeof(T));
        yp[j] = yt[j];
      }
      step(xt, yp, 0);
    }
    for (int j = 0; j < NY; ++j) {
      alignas(32) double l2[kF64Lanes], l1[kF64Lanes];
      _mm256_store_pd(l2, a2l[j]);
      _mm256_store_pd(l2 + 4, a2h[j]);
      _mm256_store_pd(l1, a1l[j]);
      _mm256_store_pd(l1 + 4, a1h[j]);
      double c2 = 0.0, cs1 = 0.0;
      for (int l = 0; l < kF64Lanes; ++l) {
        c2 += l2[l];
        cs1 += l1[l];
      }
      t2[j] += c2;
      t1[j] += cs1;
    }
  }
  for (int j = 0; j < NY; ++j) {
    sq[j] += t2[j];
    if (centered) lin[j] += t1[j];
  }
}

template <typename V, bool kF32Acc>
void float_avx2(const void* xv, const void* const* ysv, int ny, int64_t n, bool centered, double* sq,
                double* lin) {
  using T = typename V::T;
  const T* x = static_cast<const T*>(xv);
  const T* const* ys = reinterpret_cast<const T* const*>(ysv);
  for (int j0 = 0; j0 < ny; j0 += kAvx2FloatTile) {
    const int nt = std::min(kAvx2FloatTile, ny - j0);
    auto run = [&](auto tile) {
      constexpr int NY = decltype(tile)::value;
      if constexpr (kF32Acc) {
        float_l2_avx2_tile<NY, V>(x, ys + j0, n, sq + j0);
      } else {
        float_f64acc_avx2_tile<NY, V>(x, ys + j0, n, centered, sq + j0, lin + j0);
      }
    };
    switch (nt) {
      case 1: run(std::integral_constant<int, 1>{}); break;
      case 2: run(std::integral_constant<int, 2>{}); break;
      case 3: run(std::integral_constant<int, 3>{}); break;
      default: run(std::integral_constant<int, 4>{}); break;
    }
  }
}
#endif  // GAMDSS_AVX2

template <typename Load>
void float_portable(Distance mode, const void* xv, const void* const* ysv, int ny, int64_t n, double* sq,
                    double* lin) {
  using T = typename Load::T;
  const T* x = static_cast<const T*>(xv);
  for (int j = 0; j < ny; ++j) {
    const T* y = static_cast<const T*>(ysv[j]);
    if constexpr (sizeof(T) == 8) {
      float_f64acc_portable<Load>(x, y, n, mode == Distance::kCentered, sq + j, lin + j);
    } else if (mode == Distance::kCentered) {
      float_f64acc_portable<Load>(x, y, n, true, sq + j, lin + j);
    } else {
      float_l2_portable<Load>(x, y, n, sq + j);
    }
  }
}

inline void pair_sums_float(Elem elem, Distance mode, const void* x, const void* const* ys, int ny,
                            int64_t n, double* sq, double* lin) {
  const bool centered = mode == Distance::kCentered;
#ifdef GAMDSS_AVX512
  switch (elem) {
    case Elem::kF16:
      return centered ? float_avx512<VecF16, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx512<VecF16, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kBF16:
      return centered ? float_avx512<VecBF16, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx512<VecBF16, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kF32:
      return centered ? float_avx512<VecF32, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx512<VecF32, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kF64:
      return float_avx512<VecF64, false>(x, ys, ny, n, centered, sq, lin);
    case Elem::kU8:
      return;  // uint8 frames use the integer kernels
  }
#elif defined(GAMDSS_AVX2)
  switch (elem) {
    case Elem::kF16:
      return centered ? float_avx2<Avx2F16, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx2<Avx2F16, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kBF16:
      return centered ? float_avx2<Avx2BF16, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx2<Avx2BF16, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kF32:
      return centered ? float_avx2<Avx2F32, false>(x, ys, ny, n, true, sq, lin)
                      : float_avx2<Avx2F32, true>(x, ys, ny, n, false, sq, lin);
    case Elem::kF64:
      return float_avx2<Avx2F64, false>(x, ys, ny, n, centered, sq, lin);
    case Elem::kU8:
      return;  // uint8 frames use the integer kernels
  }
#else
  (void)centered;
  switch (elem) {
    case Elem::kF16: return float_portable<LoadF16>(mode, x, ys, ny, n, sq, lin);
    case Elem::kBF16: return float_portable<LoadBF16>(mode, x, ys, ny, n, sq, lin);
    case Elem::kF32: return float_portable<LoadF32>(mode, x, ys, ny, n, sq, lin);
    case Elem::kF64: return float_portable<LoadF64>(mode, x, ys, ny, n, sq, lin);
    case Elem::kU8: return;  // uint8 frames use the integer kernels
  }
#endif
}

inline KernelSet make_kernel_set(const char* name) {
#ifdef GAMDSS_AVX512
  return KernelSet{name, &u8_stream_vnni, &u8_dots_columns_vnni, &u8_wrapped_avx512, &pair_sums_float};
#elif defined(GAMDSS_VNNI256)
  return KernelSet{name, &u8_stream_vnni, &u8_dots_columns_vnni, &u8_wrapped_avx2, &pair_sums_float};
#elif defined(GAMDSS_AVX2)
  return KernelSet{name, &u8_stream_avx2, &u8_dots_columns_avx2, &u8_wrapped_avx2, &pair_sums_float};
#else
  return KernelSet{name, &u8_stream_portable, nullptr, &u8_wrapped_portable, &pair_sums_float};
#endif
}

}  // namespace gamdss::kernels::GAMDSS_KERNEL_NS

// Implementation of pair_sums.h, included once per instruction set inside a namespace
// (pair_sums_baseline.cpp, pair_sums_avx512.cpp). Plain loops with the summation order
// written out as independent lanes, which the compiler vectorises without reassociation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define GAMDSS_U8_INTRINSICS 1
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

// ---------------------------------------------------------------- uint8, portable
constexpr int kU8Lanes = 32;
constexpr int64_t kU8Chunk = 8192;  // int32 lanes: 256 squares of <= 65025 each

inline int32_t u8_delta(Mode mode, bool x_minus_y, uint8_t x, uint8_t y) {
  if (mode == Mode::kWrapped) {
    return x_minus_y ? static_cast<uint8_t>(x - y) : static_cast<uint8_t>(y - x);
  }
  return static_cast<int32_t>(y) - static_cast<int32_t>(x);
}

template <Mode M, bool XMinusY>
void u8_portable_one(const uint8_t* x, const uint8_t* y, int64_t n, int64_t* sq, int64_t* lin) {
  int64_t s2 = 0, s1 = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kU8Chunk) {
    const int64_t c1 = std::min(n, c0 + kU8Chunk);
    int32_t a2[kU8Lanes] = {};
    int32_t a1[kU8Lanes] = {};
    int64_t k = c0;
    for (; k + kU8Lanes <= c1; k += kU8Lanes) {
      for (int l = 0; l < kU8Lanes; ++l) {
        int32_t d;
        if constexpr (M == Mode::kWrapped) {
          d = XMinusY ? static_cast<uint8_t>(x[k + l] - y[k + l])
                      : static_cast<uint8_t>(y[k + l] - x[k + l]);
        } else {
          d = static_cast<int32_t>(y[k + l]) - static_cast<int32_t>(x[k + l]);
        }
        a2[l] += d * d;
        if constexpr (M == Mode::kCentered) a1[l] += d;
      }
    }
    for (; k < c1; ++k) {
      const int32_t d = u8_delta(M, XMinusY, x[k], y[k]);
      a2[0] += d * d;
      a1[0] += d;
    }
    for (int l = 0; l < kU8Lanes; ++l) {
      s2 += a2[l];
      s1 += a1[l];
    }
  }
  sq[0] += s2;
  if (M == Mode::kCentered) lin[0] += s1;
}

#ifdef GAMDSS_U8_INTRINSICS
// AVX-512 VNNI: 32 elements widened to int16 per step; vpdpwssd adds two squares per
// int32 lane. Flushed to int64 every kSteps steps (2 * 65025 * 4096 < 2^31).
template <int NY, Mode M, bool XMinusY>
void u8_avx512_tile(const uint8_t* x, const uint8_t* const* ys, int64_t n, int64_t* sq,
                    int64_t* lin) {
  constexpr int64_t kSteps = 4096;
  const __m512i ones = _mm512_set1_epi16(1);
  int64_t k = 0;
  const int64_t n_vec = n - n % 32;
  while (k < n_vec) {
    const int64_t k_end = std::min(n_vec, k + 32 * kSteps);
    __m512i a2[NY], a1[NY];
    for (int j = 0; j < NY; ++j) {
      a2[j] = _mm512_setzero_si512();
      a1[j] = _mm512_setzero_si512();
    }
    for (; k < k_end; k += 32) {
      const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      const __m512i xw = _mm512_cvtepu8_epi16(xb);
      for (int j = 0; j < NY; ++j) {
        const __m256i yb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ys[j] + k));
        __m512i d;
        if constexpr (M == Mode::kWrapped) {
          d = _mm512_cvtepu8_epi16(XMinusY ? _mm256_sub_epi8(xb, yb) : _mm256_sub_epi8(yb, xb));
        } else {
          d = _mm512_sub_epi16(_mm512_cvtepu8_epi16(yb), xw);
        }
        a2[j] = _mm512_dpwssd_epi32(a2[j], d, d);
        if constexpr (M == Mode::kCentered) a1[j] = _mm512_dpwssd_epi32(a1[j], d, ones);
      }
    }
    for (int j = 0; j < NY; ++j) {
      sq[j] += _mm512_reduce_add_epi32(a2[j]);
      if constexpr (M == Mode::kCentered) lin[j] += _mm512_reduce_add_epi32(a1[j]);
    }
  }
  for (int j = 0; j < NY; ++j) {
    for (int64_t t = n_vec; t < n; ++t) {
      const int32_t d = u8_delta(M, XMinusY, x[t], ys[j][t]);
      sq[j] += d * d;
      if constexpr (M == Mode::kCentered) lin[j] += d;
    }
  }
}

template <Mode M, bool XMinusY>
void u8_avx512(const uint8_t* x, const uint8_t* const* ys, int ny, int64_t n, int64_t* sq,
               int64_t* lin) {
  switch (ny) {
    case 1: return u8_avx512_tile<1, M, XMinusY>(x, ys, n, sq, lin);
    case 2: return u8_avx512_tile<2, M, XMinusY>(x, ys, n, sq, lin);
    case 3: return u8_avx512_tile<3, M, XMinusY>(x, ys, n, sq, lin);
    case 4: return u8_avx512_tile<4, M, XMinusY>(x, ys, n, sq, lin);
    case 5: return u8_avx512_tile<5, M, XMinusY>(x, ys, n, sq, lin);
    case 6: return u8_avx512_tile<6, M, XMinusY>(x, ys, n, sq, lin);
    case 7: return u8_avx512_tile<7, M, XMinusY>(x, ys, n, sq, lin);
    default: return u8_avx512_tile<8, M, XMinusY>(x, ys, n, sq, lin);
  }
}
#endif

template <Mode M, bool XMinusY>
void u8_rows(const uint8_t* x, const uint8_t* const* ys, int ny, int64_t n, int64_t* sq,
             int64_t* lin) {
#ifdef GAMDSS_U8_INTRINSICS
  u8_avx512<M, XMinusY>(x, ys, ny, n, sq, lin);
#else
  for (int j = 0; j < ny; ++j) u8_portable_one<M, XMinusY>(x, ys[j], n, sq + j, lin + j);
#endif
}

inline void pair_sums_u8(Mode mode, bool x_minus_y, const uint8_t* x, const uint8_t* const* ys,
                         int ny, int64_t n, int64_t* sq, int64_t* lin) {
  switch (mode) {
    case Mode::kL2: return u8_rows<Mode::kL2, false>(x, ys, ny, n, sq, lin);
    case Mode::kCentered: return u8_rows<Mode::kCentered, false>(x, ys, ny, n, sq, lin);
    case Mode::kWrapped:
      return x_minus_y ? u8_rows<Mode::kWrapped, true>(x, ys, ny, n, sq, lin)
                       : u8_rows<Mode::kWrapped, false>(x, ys, ny, n, sq, lin);
  }
}

// ---------------------------------------------------------------- floating
constexpr int64_t kFloatChunk = 1024;
constexpr int kF32Lanes = 16;
constexpr int kF64Lanes = 8;

// float32 lanes within a chunk, each chunk's lane total added to a double in order.
template <typename Load>
void float_l2_f32acc(const typename Load::T* x, const typename Load::T* y, int64_t n, double* sq) {
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

// float64 lanes; used for kCentered on every floating dtype and for kL2 on float64.
template <typename T, typename Get>
void float_f64acc(const T* x, const T* y, int64_t n, bool centered, double* sq, double* lin,
                  Get get) {
  double t2 = 0.0, t1 = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kFloatChunk) {
    const int64_t c1 = std::min(n, c0 + kFloatChunk);
    double a2[kF64Lanes] = {};
    double a1[kF64Lanes] = {};
    int64_t k = c0;
    for (; k + kF64Lanes <= c1; k += kF64Lanes) {
      for (int l = 0; l < kF64Lanes; ++l) {
        const double d = get(y[k + l]) - get(x[k + l]);
        a2[l] += d * d;
        a1[l] += d;
      }
    }
    for (int l = 0; k < c1; ++k, ++l) {
      const double d = get(y[k]) - get(x[k]);
      a2[l] += d * d;
      a1[l] += d;
    }
    double c2 = 0.0, c1s = 0.0;
    for (int l = 0; l < kF64Lanes; ++l) {
      c2 += a2[l];
      c1s += a1[l];
    }
    t2 += c2;
    t1 += c1s;
  }
  *sq += t2;
  if (centered) *lin += t1;
}

template <typename Load>
void float_rows(Mode mode, const void* xv, const void* const* ysv, int ny, int64_t n, double* sq,
                double* lin) {
  using T = typename Load::T;
  const T* x = static_cast<const T*>(xv);
  for (int j = 0; j < ny; ++j) {
    const T* y = static_cast<const T*>(ysv[j]);
    if (mode == Mode::kCentered) {
      float_f64acc(x, y, n, true, sq + j, lin + j,
                   [](T v) { return static_cast<double>(Load::get(v)); });
    } else {
      float_l2_f32acc<Load>(x, y, n, sq + j);
    }
  }
}

inline void pair_sums_float(Elem elem, Mode mode, const void* x, const void* const* ys, int ny,
                            int64_t n, double* sq, double* lin) {
  switch (elem) {
    case Elem::kF16: return float_rows<LoadF16>(mode, x, ys, ny, n, sq, lin);
    case Elem::kBF16: return float_rows<LoadBF16>(mode, x, ys, ny, n, sq, lin);
    case Elem::kF32: return float_rows<LoadF32>(mode, x, ys, ny, n, sq, lin);
    case Elem::kF64: {
      const double* xd = static_cast<const double*>(x);
      for (int j = 0; j < ny; ++j) {
        float_f64acc(xd, static_cast<const double*>(ys[j]), n, mode == Mode::kCentered, sq + j,
                     lin + j, [](double v) { return v; });
      }
      return;
    }
    case Elem::kU8:
      return;  // uint8 frames go through pair_sums_u8
  }
}

inline KernelSet make_kernel_set(const char* name) {
  return KernelSet{name, &pair_sums_u8, &pair_sums_float};
}

}  // namespace gamdss::kernels::GAMDSS_KERNEL_NS

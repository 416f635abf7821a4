// Shared CUDA machinery of gamdss::reselect and gamdss::frame_distances.
//
// Work decomposition (the GPU counterpart of cpu/block_sums.h)
// ------------------------------------------------------------
// Every frame is a dense vector of D elements (launch.h FrameArgs). It is cut into CHUNKS of 16
// bytes (V = 16 / element_size elements; the last chunk of a frame may be partial) and the
// chunks into SLICES of at most kMaxSliceChunks chunks. The slicing depends only on D and the
// dtype (launch.h make_frame_args), never on the batch, the windows or the op, so that the sums of a
// pair of frames are computed in exactly the same order wherever they occur.
//
// Per pair (i, j) of frames and slice s the partial kernel computes
//     sq  = sum over the slice's elements of delta^2
//     lin = sum over the slice's elements of delta       (distance "centered" only)
// with delta = x_j - x_i (x_i the ROW frame, x_j the COLUMN frame) and stores them in a
// global buffer laid out [clip][slice][slot] like the CPU's BlockPartials. The selection
// kernels then add the slices of each slot in slice order.
//
// Fixed summation order, the same for every pair (so equal frames give bit-identical sums):
//   1. chunk q of slice s (q in [q0, q1), q0 = s * slice_chunks) is processed by thread
//      (q - q0) % kThreads of the block, in increasing q per thread; within a chunk the V
//      elements are added in element order;
//   2. the kThreads per-thread sums are reduced by a warp butterfly (__shfl_xor, 16, 8, 4,
//      2, 1) and then over the kWarps warps in warp order;
//   3. the selection kernels add the n_slices slice partials in slice order.
// uint8 sums are integers (exact, order irrelevant). Floating: l2 adds float32 products in
// float32 per thread (float64 for float64 frames), the block reduction is in float64;
// centered computes delta in float64 and both sums in float64. The arithmetic uses explicit
// round-to-nearest intrinsics, so no contraction can differ between kernel instantiations.
//
// Tiles: one block handles one (clip, slice, tile) item; a tile is up to RT row frames x
// CT column frames of one clip. The block loads each of its RT + CT frame slices once (from
// DRAM; extra tiles of the same clip and slice find them in L1/L2) and computes all RT * CT
// pairs from registers. Three roles use the same kernel:
//   kRise : rows = onset candidates o_lo..o_hi, columns = apex candidates a_lo..a_hi,
//           slot (o - o_lo) * n_apexes + (a - a_lo); tiles whose pairs all have o > a are
//           skipped (pairs with o > a inside a computed tile are computed but never read).
//   kFall : one row = a* (read from device memory: the apex output of the rise selection),
//           columns k = 0..n_offsets-1 are the frames max(f_lo + k, a*), slot k.
//   kCurve: one row = the reference frame (ClipPlan::n_a), columns t = 0..T-1, slot t.
#pragma once

#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/launch.h"

// A kernel launch, <<<grid, block, 0, stream>>>. The host emulation of the kernels
// (tests/cuda_emulation) defines its own before including this file.
#ifndef GAMDSS_LAUNCH
#define GAMDSS_LAUNCH(grid, block, stream, ...) __VA_ARGS__ <<<(grid), (block), 0, (stream)>>>
#endif

namespace gamdss::gpu {

enum class Role : int { kRise = 0, kFall = 1, kCurve = 2 };

// Returns f(std::integral_constant<Elem, E>{}, std::integral_constant<Distance, M>{}) for the
// frames' element type and the distance, instantiating only the combinations that exist (the
// wrap-around is uint8 only; the launcher has already rejected anything else, which gives
// cudaErrorInvalidValue here).
template <typename F>
cudaError_t dispatch_elem_mode(Elem elem, Distance dist, F&& f) {
  auto with_mode = [&](auto e) -> cudaError_t {
    constexpr Elem E = decltype(e)::value;
    switch (dist) {
      case Distance::kL2: return f(e, std::integral_constant<Distance, Distance::kL2>{});
      case Distance::kCentered: return f(e, std::integral_constant<Distance, Distance::kCentered>{});
      case Distance::kWrapped:
        if constexpr (E == Elem::kU8) {
          return f(e, std::integral_constant<Distance, Distance::kWrapped>{});
        } else {
          return cudaErrorInvalidValue;
        }
    }
    return cudaErrorInvalidValue;
  };
  switch (elem) {
    case Elem::kU8: return with_mode(std::integral_constant<Elem, Elem::kU8>{});
    case Elem::kF16: return with_mode(std::integral_constant<Elem, Elem::kF16>{});
    case Elem::kBF16: return with_mode(std::integral_constant<Elem, Elem::kBF16>{});
    case Elem::kF32: return with_mode(std::integral_constant<Elem, Elem::kF32>{});
    case Elem::kF64: return with_mode(std::integral_constant<Elem, Elem::kF64>{});
  }
  return cudaErrorInvalidValue;
}

inline unsigned grid_for(int64_t items, int64_t cap) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(items, cap)));
}

template <Elem E>
struct ElemInfo {
  static constexpr int kSize = elem_size(E);
  static constexpr int kPerChunk = kChunkBytes / kSize;  // V
};

// Chunk q of one frame (elements [q*V, q*V + V)) as 16 raw bytes, element e at bytes
// [e*size, (e+1)*size). Element-wise loads: used when the chunk is the partial last one of
// the frame or the frames are not 16-byte aligned. Elements at or past D read as zero bytes;
// a zero element in both frames of a pair adds exactly nothing to either sum.
template <Elem E>
__device__ __forceinline__ uint4 load_chunk_scalar(const unsigned char* __restrict__ frame,
                                                   int64_t q, int64_t numel) {
  constexpr int V = ElemInfo<E>::kPerChunk;
  constexpr int S = ElemInfo<E>::kSize;
  const int64_t e0 = q * V;
  unsigned w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
  for (int e = 0; e < V; ++e) {
    if (e0 + e < numel) {
      if constexpr (S == 1) {
        w[e / 4] |= static_cast<unsigned>(__ldg(frame + e0 + e)) << (8 * (e % 4));
      } else if constexpr (S == 2) {
        const unsigned short h = __ldg(reinterpret_cast<const unsigned short*>(frame) + e0 + e);
        w[e / 2] |= static_cast<unsigned>(h) << (16 * (e % 2));
      } else if constexpr (S == 4) {
        w[e] = __ldg(reinterpret_cast<const unsigned int*>(frame) + e0 + e);
      } else {
        const unsigned long long b =
            __ldg(reinterpret_cast<const unsigned long long*>(frame) + e0 + e);
        w[2 * e] = static_cast<unsigned>(b);
        w[2 * e + 1] = static_cast<unsigned>(b >> 32);
      }
    }
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Chunk q of one frame: a 16-byte load (kVec: frames 16-byte aligned and chunk q full) or
// element-wise loads (load_chunk_scalar). Both give the same bytes, so the arithmetic that
// follows does not depend on the path.
template <Elem E, bool kVec>
__device__ __forceinline__ uint4 load_chunk(const unsigned char* __restrict__ frame, int64_t q,
                                            int64_t numel) {
  if constexpr (kVec) {
    return __ldg(reinterpret_cast<const uint4*>(frame) + q);
  } else {
    return load_chunk_scalar<E>(frame, q, numel);
  }
}

// Element e of a raw chunk as float (16/32-bit floats; exact) or double.
__device__ __forceinline__ float half_bits_to_float(unsigned bits16) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits16)));
}

template <Elem E, typename T, int V>
__device__ __forceinline__ void unpack(const uint4& raw, T (&out)[V]) {
  const unsigned w[4] = {raw.x, raw.y, raw.z, raw.w};
  if constexpr (E == Elem::kF64) {
#pragma unroll
    for (int e = 0; e < V; ++e) {
      out[e] = __longlong_as_double(static_cast<long long>(
          (static_cast<unsigned long long>(w[2 * e + 1]) << 32) | w[2 * e]));
    }
  } else if constexpr (E == Elem::kF32) {
#pragma unroll
    for (int e = 0; e < V; ++e) out[e] = static_cast<T>(__uint_as_float(w[e]));
  } else if constexpr (E == Elem::kBF16) {
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const unsigned bits = (e % 2 == 0) ? (w[e / 2] << 16) : (w[e / 2] & 0xffff0000u);
      out[e] = static_cast<T>(__uint_as_float(bits));
    }
  } else {  // kF16
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const unsigned bits = (e % 2 == 0) ? (w[e / 2] & 0xffffu) : (w[e / 2] >> 16);
      out[e] = static_cast<T>(half_bits_to_float(bits));
    }
  }
}

// uint8: per-byte (a - b) mod 256, no borrow between bytes (SWAR).
__device__ __forceinline__ unsigned sub_bytes_mod256(unsigned a, unsigned b) {
  return ((a | 0x80808080u) - (b & 0x7f7f7f7fu)) ^ ((a ^ ~b) & 0x80808080u);
}

// uint8: adds sum over the 4 bytes of delta^2 to acc. l2 / centered: |col - row| per byte;
// wrapped: (col - row) mod 256, or (row - col) mod 256 when kRowMinusCol.
template <Distance M, bool kRowMinusCol>
__device__ __forceinline__ unsigned u8_word_sq(unsigned row, unsigned col, unsigned acc) {
  unsigned d;
  if constexpr (M == Distance::kWrapped) {
    d = kRowMinusCol ? sub_bytes_mod256(row, col) : sub_bytes_mod256(col, row);
  } else {
    d = __vabsdiffu4(row, col);
  }
  return __dp4a(d, d, acc);
}

template <Distance M, bool kRowMinusCol>
__device__ __forceinline__ unsigned u8_chunk_sq(const uint4& row, const uint4& col, unsigned acc) {
  acc = u8_word_sq<M, kRowMinusCol>(row.x, col.x, acc);
  acc = u8_word_sq<M, kRowMinusCol>(row.y, col.y, acc);
  acc = u8_word_sq<M, kRowMinusCol>(row.z, col.z, acc);
  acc = u8_word_sq<M, kRowMinusCol>(row.w, col.w, acc);
  return acc;
}

__device__ __forceinline__ unsigned u8_chunk_sum(const uint4& v, unsigned acc) {
  acc = __dp4a(v.x, 0x01010101u, acc);
  acc = __dp4a(v.y, 0x01010101u, acc);
  acc = __dp4a(v.z, 0x01010101u, acc);
  acc = __dp4a(v.w, 0x01010101u, acc);
  return acc;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// ---------------------------------------------------------------------------------------
// The partial-sum kernel.
template <typename Out>
struct PairArgs {
  const DevClip* clips;
  int64_t n_clips;
  Role role;
  const int64_t* a_star;  // kFall: chosen apex per clip (clip-relative), else unused
  int64_t tiles_max;      // tiles per (clip, slice) item range; items with t >= tiles exit
  Out* sq;                // [slots total * n_slices], layout [clip][slice][slot]
  Out* lin;               // same, centered only (else nullptr)
};

// Tile geometry of one clip for a role: counts and clip-relative frame indices.
struct Geometry {
  int64_t n_rows, n_cols, row_lo, col_lo, slot_off, a_star;
  Role role;
  __device__ __forceinline__ int64_t row_frame(int64_t r) const {
    return role == Role::kRise ? row_lo + r : row_lo;  // kFall: a*, kCurve: reference
  }
  __device__ __forceinline__ int64_t col_frame(int64_t k) const {
    const int64_t f = col_lo + k;
    return role == Role::kFall ? (f > a_star ? f : a_star) : f;
  }
};

__device__ __forceinline__ Geometry geometry_of(const DevClip& c, Role role, const int64_t* a_star,
                                                int64_t clip) {
  Geometry g;
  g.role = role;
  g.a_star = 0;
  if (role == Role::kRise) {
    g.n_rows = c.o_hi - c.o_lo + 1;
    g.n_cols = c.a_hi - c.a_lo + 1;
    g.row_lo = c.o_lo;
    g.col_lo = c.a_lo;
    g.slot_off = c.rise_off;
  } else if (role == Role::kFall) {
    int64_t a = a_star[clip];
    a = a < 0 ? 0 : (a > c.length - 1 ? c.length - 1 : a);  // defensive; a* is in [a_lo, a_hi]
    g.a_star = a;
    g.n_rows = 1;
    g.n_cols = c.f_hi - c.f_lo + 1;
    g.row_lo = a;
    g.col_lo = c.f_lo;
    g.slot_off = c.fall_off;
  } else {
    g.n_rows = 1;
    g.n_cols = c.length;
    g.row_lo = c.n_a;
    g.col_lo = 0;
    g.slot_off = c.curve_off;
  }
  return g;
}

// One block per item (clip c, slice s, tile t), item = (c * n_slices + s) * tiles_max + t,
// grid-stride over items. Block: kThreads threads; thread `tid` handles the chunks
// q = q0 + tid, q0 + tid + kThreads, ... < q1 of slice s for every frame of the tile.
// Tile t = tr * tiles_c + tc covers rows [tr*RT, tr*RT + nr) and columns [tc*CT, tc*CT + nc)
// of the clip's role geometry. Writes sq (and lin) for the nr * nc pairs of the tile:
//     buffer[(slot_off * n_slices) + s * (n_rows * n_cols) + (row * n_cols + col)].
// Out is int64_t for uint8 frames and double for floating frames.
template <Elem E, Distance M, bool kRowMinusCol, int RT, int CT>
__global__ void __launch_bounds__(kThreads, E == Elem::kU8 ? 2 : 1)
    pair_partials_kernel(FrameArgs fa, PairArgs<std::conditional_t<E == Elem::kU8, int64_t, double>> pa) {
  constexpr bool kU8 = E == Elem::kU8;
  constexpr bool kCentered = M == Distance::kCentered;
  constexpr int V = ElemInfo<E>::kPerChunk;
  constexpr int kPairs = RT * CT;
  // Values reduced per block: uint8: pair sq sums, then (centered) row and column byte sums
  // (lin of pair (r, k) = colsum[k] - rowsum[r], exact); floating: pair sq, then pair lin.
  constexpr int kVals = kU8 ? kPairs + (kCentered ? RT + CT : 0) : kPairs * (kCentered ? 2 : 1);
  static_assert(kVals <= kThreads, "one thread per reduced value");
  static_assert(!(M == Distance::kWrapped && !kU8), "wrapped distance is uint8 only");
  using WarpT = std::conditional_t<kU8, unsigned, double>;                 // warp reduction
  using BlockT = std::conditional_t<kU8, unsigned long long, double>;      // block reduction
  using Out = std::conditional_t<kU8, int64_t, double>;
  // Element type of the floating arithmetic: float for l2 of 16/32-bit floats, else double.
  using Val = std::conditional_t<(E == Elem::kF64 || kCentered), double, float>;

  __shared__ BlockT red[kWarps][kVals];
  __shared__ BlockT total[kVals];

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int64_t per_clip = fa.n_slices * pa.tiles_max;
  const int64_t n_items = pa.n_clips * per_clip;

  for (int64_t item = blockIdx.x; item < n_items; item += gridDim.x) {
    // Everything up to the reduction is uniform over the block (depends on item only).
    const int64_t c = item / per_clip;
    const int64_t rem = item - c * per_clip;
    const int64_t s = rem / pa.tiles_max;
    const int64_t t = rem - s * pa.tiles_max;
    const DevClip& clip = pa.clips[c];
    const Geometry g = geometry_of(clip, pa.role, pa.a_star, c);
    const int64_t tiles_c = (g.n_cols + CT - 1) / CT;
    const int64_t tiles = ((g.n_rows + RT - 1) / RT) * tiles_c;
    if (t >= tiles) continue;
    const int64_t r0 = (t / tiles_c) * RT;
    const int64_t k0 = (t % tiles_c) * CT;
    const int nr = static_cast<int>(g.n_rows - r0 < RT ? g.n_rows - r0 : RT);
    const int nc = static_cast<int>(g.n_cols - k0 < CT ? g.n_cols - k0 : CT);
    // Rise: every pair of the tile has onset > apex; never read by the selection.
    if (g.role == Role::kRise && g.row_frame(r0) > g.col_frame(k0 + nc - 1)) continue;

    // Frame pointers; rows/columns past nr/nc point at the last valid one (never loaded).
    const unsigned char* rp[RT];
    const unsigned char* cp[CT];
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      const int64_t f = g.row_frame(r0 + (r < nr ? r : nr - 1));
      rp[r] = fa.base + (clip.start + f) * fa.stride_bytes;
    }
#pragma unroll
    for (int k = 0; k < CT; ++k) {
      const int64_t f = g.col_frame(k0 + (k < nc ? k : nc - 1));
      cp[k] = fa.base + (clip.start + f) * fa.stride_bytes;
    }
    const int64_t q0 = s * fa.slice_chunks;
    const int64_t q1 = (q0 + fa.slice_chunks < fa.n_chunks) ? q0 + fa.slice_chunks : fa.n_chunks;

    WarpT vals[kVals];
    if constexpr (kU8) {
      unsigned acc[RT][CT];
      unsigned rsum[RT], csum[CT];
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        rsum[r] = 0u;
#pragma unroll
        for (int k = 0; k < CT; ++k) acc[r][k] = 0u;
      }
#pragma unroll
      for (int k = 0; k < CT; ++k) csum[k] = 0u;
      // One chunk of every frame of the tile: rows r < nr loaded once, then each column
      // k < nc loaded and paired with every row (rows past nr are zero, never stored).
      auto chunk = [&](int64_t q, auto vec_tag) {
        constexpr bool kVec = decltype(vec_tag)::value;
        uint4 rv[RT], cv[CT];
        // All loads first (predicated, independent) so that they are in flight together.
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          rv[r] = r < nr ? load_chunk<E, kVec>(rp[r], q, fa.numel) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          cv[k] = k < nc ? load_chunk<E, kVec>(cp[k], q, fa.numel) : make_uint4(0u, 0u, 0u, 0u);
        }
        if constexpr (kCentered) {
#pragma unroll
          for (int r = 0; r < RT; ++r) rsum[r] = u8_chunk_sum(rv[r], rsum[r]);
#pragma unroll
          for (int k = 0; k < CT; ++k) csum[k] = u8_chunk_sum(cv[k], csum[k]);
        }
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          if (k < nc) {
#pragma unroll
            for (int r = 0; r < RT; ++r) acc[r][k] = u8_chunk_sq<M, kRowMinusCol>(rv[r], cv[k], acc[r][k]);
          }
        }
      };
      for (int64_t q = q0 + tid; q < q1; q += kThreads) {
        if (fa.vec && (q + 1) * V <= fa.numel) {
          chunk(q, std::true_type{});
        } else {
          chunk(q, std::false_type{});
        }
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) {
#pragma unroll
        for (int k = 0; k < CT; ++k) vals[r * CT + k] = acc[r][k];
      }
      if constexpr (kCentered) {
#pragma unroll
        for (int r = 0; r < RT; ++r) vals[kPairs + r] = rsum[r];
#pragma unroll
        for (int k = 0; k < CT; ++k) vals[kPairs + RT + k] = csum[k];
      }
    } else {
      Val acc[RT][CT];
      double lin[RT][CT];
#pragma unroll
      for (int r = 0; r < RT; ++r) {
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          acc[r][k] = Val(0);
          lin[r][k] = 0.0;
        }
      }
      auto chunk = [&](int64_t q, auto vec_tag) {
        constexpr bool kVec = decltype(vec_tag)::value;
        uint4 rraw[RT], craw[CT];
        // All loads first (predicated, independent) so that they are in flight together.
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          rraw[r] = r < nr ? load_chunk<E, kVec>(rp[r], q, fa.numel) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          craw[k] = k < nc ? load_chunk<E, kVec>(cp[k], q, fa.numel) : make_uint4(0u, 0u, 0u, 0u);
        }
        Val rv[RT][V];
#pragma unroll
        for (int r = 0; r < RT; ++r) unpack<E, Val, V>(rraw[r], rv[r]);
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          if (k < nc) {
            Val cv[V];
            unpack<E, Val, V>(craw[k], cv);
#pragma unroll
            for (int r = 0; r < RT; ++r) {
#pragma unroll
              for (int e = 0; e < V; ++e) {
                if constexpr (std::is_same_v<Val, float>) {
                  const float d = __fsub_rn(cv[e], rv[r][e]);
                  acc[r][k] = __fmaf_rn(d, d, acc[r][k]);
                } else {
                  const double d = __dsub_rn(cv[e], rv[r][e]);
                  acc[r][k] = __fma_rn(d, d, acc[r][k]);
                  if constexpr (kCentered) lin[r][k] = __dadd_rn(lin[r][k], d);
                }
              }
            }
          }
        }
      };
      for (int64_t q = q0 + tid; q < q1; q += kThreads) {
        if (fa.vec && (q + 1) * V <= fa.numel) {
          chunk(q, std::true_type{});
        } else {
          chunk(q, std::false_type{});
        }
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) {
#pragma unroll
        for (int k = 0; k < CT; ++k) {
          vals[r * CT + k] = static_cast<double>(acc[r][k]);
          if constexpr (kCentered) vals[kPairs + r * CT + k] = lin[r][k];
        }
      }
    }

    // Block reduction: warp butterfly, then warps in order. Fixed tree for every value.
#pragma unroll
    for (int v = 0; v < kVals; ++v) {
      const WarpT w = warp_sum(vals[v]);
      if (lane == 0) red[warp][v] = static_cast<BlockT>(w);
    }
    __syncthreads();
    if (tid < kVals) {
      BlockT sum = red[0][tid];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) sum += red[w][tid];
      total[tid] = sum;
    }
    __syncthreads();
    if (tid < kPairs) {
      const int r = tid / CT;
      const int k = tid % CT;
      if (r < nr && k < nc) {
        const int64_t n_slots = g.n_rows * g.n_cols;
        const int64_t idx = g.slot_off * fa.n_slices + s * n_slots + (r0 + r) * g.n_cols + (k0 + k);
        pa.sq[idx] = static_cast<Out>(total[tid]);
        if constexpr (kCentered) {
          if constexpr (kU8) {
            pa.lin[idx] = static_cast<int64_t>(total[kPairs + RT + k]) -
                          static_cast<int64_t>(total[kPairs + r]);
          } else {
            pa.lin[idx] = total[kPairs + tid];
          }
        }
      }
    }
    __syncthreads();  // red/total are reused by the next item
  }
}

// Launches pair_partials_kernel for every (clip, slice, tile) of a role on `stream`.
template <Elem E, Distance M, bool kRowMinusCol, int RT, int CT, typename Out>
cudaError_t launch_pair_partials(const FrameArgs& fa, const PairArgs<Out>& pa, cudaStream_t stream) {
  const int64_t items = pa.n_clips * fa.n_slices * pa.tiles_max;
  if (items == 0) return cudaSuccess;
  GAMDSS_LAUNCH(grid_for(items, int64_t{1} << 30), kThreads, stream,
                pair_partials_kernel<E, M, kRowMinusCol, RT, CT>)(fa, pa);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------
// Keys and distances, exactly as cpu/selection.h.
__device__ __forceinline__ int64_t selection_key(int64_t sq, int64_t lin, bool centered, int64_t d) {
  return centered ? d * sq - lin * lin : sq;
}
__device__ __forceinline__ double distance_from_key(int64_t key, bool centered, int64_t d) {
  return centered ? __dsqrt_rn(__ddiv_rn(static_cast<double>(key), static_cast<double>(d)))
                  : __dsqrt_rn(static_cast<double>(key));
}
__device__ __forceinline__ double selection_key(double sq, double lin, bool centered, int64_t d) {
  const double key =
      centered ? __dsub_rn(sq, __ddiv_rn(__dmul_rn(lin, lin), static_cast<double>(d))) : sq;
  return isnan(key) ? __longlong_as_double(static_cast<long long>(0xfff0000000000000ull)) : key;  // -inf
}
__device__ __forceinline__ double distance_from_key(double key, bool, int64_t) {
  return __dsqrt_rn(key > 0.0 ? key : 0.0);
}

// Sum over slices, in slice order, of one slot: buf[slot_off * n_slices + s * n_slots + slot].
template <typename Out>
__device__ __forceinline__ Out slice_total(const Out* __restrict__ buf, int64_t slot_off,
                                           int64_t n_slices, int64_t n_slots, int64_t slot) {
  Out acc = Out(0);
  const Out* p = buf + slot_off * n_slices + slot;
  // Unrolled so that the loads are in flight together; the additions stay in slice order.
#pragma unroll 4
  for (int64_t s = 0; s < n_slices; ++s) acc += p[s * n_slots];
  return acc;
}

// A candidate under the tie rules of docs/reselection.md: larger key, then smaller cost,
// then smaller i, then smaller j. This is a total order over distinct (i, j), so the warp
// reduction below gives the same winner whatever the order in which candidates meet.
template <typename Key>
struct Candidate {
  int any = 0;
  Key key{};
  int64_t cost = 0, i = 0, j = 0;
  __device__ __forceinline__ bool beats(const Candidate& o) const {
    if (!any) return false;
    if (!o.any) return true;
    if (key != o.key) return key > o.key;
    if (cost != o.cost) return cost < o.cost;
    if (i != o.i) return i < o.i;
    return j < o.j;
  }
  __device__ __forceinline__ void offer(Key k, int64_t cost_, int64_t i_, int64_t j_) {
    Candidate c;
    c.any = 1;
    c.key = k;
    c.cost = cost_;
    c.i = i_;
    c.j = j_;
    if (c.beats(*this)) *this = c;
  }
  // Every lane ends with the warp's best candidate.
  __device__ __forceinline__ void warp_best() {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      Candidate o;
      o.any = __shfl_xor_sync(0xffffffffu, any, off);
      o.key = __shfl_xor_sync(0xffffffffu, key, off);
      o.cost = __shfl_xor_sync(0xffffffffu, cost, off);
      o.i = __shfl_xor_sync(0xffffffffu, i, off);
      o.j = __shfl_xor_sync(0xffffffffu, j, off);
      if (o.beats(*this)) *this = o;
    }
  }
};

__device__ __forceinline__ int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

inline unsigned warp_grid(int64_t n_clips) {
  return grid_for((n_clips + kWarps - 1) / kWarps, int64_t{1} << 20);
}

}  // namespace gamdss::gpu

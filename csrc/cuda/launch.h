// The host interface of the CUDA kernels of gamdss::reselect and gamdss::frame_distances:
// plain structs, raw device pointers and one launch function per op, defined in
// reselect_cuda.cu and frame_distances_cuda.cu.
//
// Nothing here (nor in the .cu files) includes torch or a CUDA header. That keeps the nvcc
// compile of the kernels cheap (no ATen headers for every architecture), and it lets
// tests/cuda_emulation compile the very same .cu files for the host with g++. The torch side
// (argument checks, plan, output and scratch allocation, device guard, current stream) is the
// thin launcher cuda/ops_cuda.cpp, which calls launch_reselect / launch_frame_distances.
#pragma once

#include <cstdint>

#include "clip_plan.h"
#include "distance.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace gamdss::gpu {

constexpr int kThreads = 256;  // threads per block, all kernels
constexpr int kWarps = kThreads / 32;
constexpr int kChunkBytes = 16;
// At most 4 chunks per thread and slice. This bounds the uint8 per-thread sums to
// 4 * 16 * 255^2 = 4.2e6 and a warp's to 1.3e8 (uint32 is safe), a block's to 1.1e9.
constexpr int64_t kMaxSliceChunks = 4 * kThreads;

// ---------------------------------------------------------------------------------------
// Plan data on the device: one DevClip (16 int64) per clip, packed from ClipPlan.
struct DevClip {
  int64_t start, length;            // frames [start, start + length) of the packed tensor
  int64_t n_o, n_a, n_f;            // annotation (frame_distances: n_a = reference frame)
  int64_t o_lo, o_hi, a_lo, a_hi, f_lo, f_hi;  // inclusive windows, clip-relative
  int64_t rise_off;   // sum over earlier clips of n_onsets * n_apexes   (kRise slots)
  int64_t fall_off;   // sum over earlier clips of n_offsets             (kFall slots)
  int64_t curve_off;  // sum over earlier clips of length                (kCurve slots)
  int64_t pad0, pad1;
};
static_assert(sizeof(DevClip) == 16 * sizeof(int64_t), "DevClip must be 16 int64");

struct SlotTotals {
  int64_t rise = 0, fall = 0, curve = 0;
  int64_t max_onsets = 0, max_apexes = 0, max_offsets = 0, max_length = 0;
};

// Packs plan[0, n) into out[0, n) (host memory, copied to the device by the caller) and
// returns the slot totals that size the scratch buffers and the grids.
inline SlotTotals pack_plan(const ClipPlan* plan, int64_t n, DevClip* out) {
  SlotTotals t;
  auto max = [](int64_t a, int64_t b) { return a > b ? a : b; };
  for (int64_t c = 0; c < n; ++c) {
    const ClipPlan& p = plan[c];
    DevClip& d = out[c];
    d.start = p.start;
    d.length = p.length;
    d.n_o = p.n_o;
    d.n_a = p.n_a;
    d.n_f = p.n_f;
    d.o_lo = p.o_lo;
    d.o_hi = p.o_hi;
    d.a_lo = p.a_lo;
    d.a_hi = p.a_hi;
    d.f_lo = p.f_lo;
    d.f_hi = p.f_hi;
    d.rise_off = t.rise;
    d.fall_off = t.fall;
    d.curve_off = t.curve;
    d.pad0 = d.pad1 = 0;
    t.rise += p.n_onsets() * p.n_apexes();
    t.fall += p.n_offsets();
    t.curve += p.length;
    t.max_onsets = max(t.max_onsets, p.n_onsets());
    t.max_apexes = max(t.max_apexes, p.n_apexes());
    t.max_offsets = max(t.max_offsets, p.n_offsets());
    t.max_length = max(t.max_length, p.length);
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Frame addressing and slicing (see cuda/common.cuh for the work decomposition).
struct FrameArgs {
  const unsigned char* base;  // element 0 of frame 0 (device memory)
  int64_t stride_bytes;       // bytes from frame i to frame i + 1
  int64_t numel;              // D, elements per frame
  int64_t n_chunks;           // ceil(D / V)
  int64_t slice_chunks;       // chunks per slice (the last slice may have fewer)
  int64_t n_slices;           // ceil(n_chunks / slice_chunks)
  int vec;                    // 1: base and stride_bytes are multiples of 16 (uint4 loads)
};

constexpr int elem_size(Elem e) {
  return e == Elem::kU8 ? 1 : (e == Elem::kF32 ? 4 : (e == Elem::kF64 ? 8 : 2));
}

// Frames of `numel` (>= 1) dense elements of type `e`, frame i at base + i * stride_elems
// elements. The slicing depends only on numel and the element size, never on the batch.
inline FrameArgs make_frame_args(const void* base, int64_t stride_elems, int64_t numel, Elem e) {
  FrameArgs fa{};
  const int64_t es = elem_size(e);
  const int64_t per_chunk = kChunkBytes / es;
  fa.base = static_cast<const unsigned char*>(base);
  fa.stride_bytes = stride_elems * es;
  fa.numel = numel;
  fa.n_chunks = (numel + per_chunk - 1) / per_chunk;
  // Balanced slices of at most kMaxSliceChunks chunks, none empty.
  const int64_t want = (fa.n_chunks + kMaxSliceChunks - 1) / kMaxSliceChunks;
  fa.slice_chunks = (fa.n_chunks + want - 1) / want;
  fa.n_slices = (fa.n_chunks + fa.slice_chunks - 1) / fa.slice_chunks;
  fa.vec = (reinterpret_cast<uintptr_t>(base) % kChunkBytes == 0 &&
            fa.stride_bytes % kChunkBytes == 0)
               ? 1
               : 0;
  return fa;
}

// Bytes of device scratch memory (partial sums: 8-byte values, [clip][slice][slot]) that
// launch_reselect / launch_frame_distances need, at least 8-byte aligned.
inline int64_t reselect_workspace_bytes(const FrameArgs& fa, const SlotTotals& t, Distance d) {
  return (d == Distance::kCentered ? 2 : 1) * (t.rise + t.fall) * fa.n_slices * 8;
}
inline int64_t curve_workspace_bytes(const FrameArgs& fa, const SlotTotals& t, Distance d) {
  return (d == Distance::kCentered ? 2 : 1) * t.curve * fa.n_slices * 8;
}

// ---------------------------------------------------------------------------------------
// gamdss::reselect (docs/reselection.md): all pointers are device memory of the frames'
// device; outputs [n_clips]; tables [n_clips, table_o, table_a] and [n_clips, table_f],
// NaN-filled by the caller (entries that are not candidates stay NaN), or nullptr for none.
// The distance must be valid for the element type (kWrapped: uint8 only).
struct ReselectLaunch {
  FrameArgs frames;
  Elem elem;
  Distance distance;
  const DevClip* clips;  // [n_clips], pack_plan's
  int64_t n_clips;       // >= 1
  SlotTotals totals;     // pack_plan's
  void* workspace;       // reselect_workspace_bytes(frames, totals, distance) bytes
  int64_t *onset, *apex, *offset;
  double *rise_distance, *fall_distance;
  double *rise_table, *fall_table;
  int64_t table_o, table_a, table_f;
  CUstream_st* stream;
};

// Enqueues the four kernels on `stream`; no host synchronisation. Returns the cudaError_t
// of the first failed launch, or 0 (cudaSuccess).
int launch_reselect(const ReselectLaunch& a);

// gamdss::frame_distances: clips' reference frame in DevClip::n_a; out [n_clips, max_length]
// float64, NaN-filled by the caller (entries past a clip's length stay NaN).
struct CurveLaunch {
  FrameArgs frames;
  Elem elem;
  Distance distance;
  const DevClip* clips;
  int64_t n_clips;  // >= 1
  SlotTotals totals;
  void* workspace;  // curve_workspace_bytes(frames, totals, distance) bytes
  double* out;
  int64_t max_length;
  CUstream_st* stream;
};

int launch_frame_distances(const CurveLaunch& a);

}  // namespace gamdss::gpu

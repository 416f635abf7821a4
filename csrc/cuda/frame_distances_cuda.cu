// CUDA kernel of gamdss::frame_distances: same semantics and outputs as
// cpu/frame_distances_cpu.cpp. Two launches on the current stream:
//   1. pair_partials_kernel, role kCurve: partial sums of (reference, t) for every frame t of
//      every clip, per slice (cuda/common.cuh);
//   2. curve_finish_kernel: one warp per clip adds the slices and writes the distances.
// Every pair is summed in the same order as in gamdss::reselect, so for l2 and centered the
// curve value at a frame is bit-identical to the distance reselect reports for the same pair
// of frames. Wrap-around (released_uint8): frame minus reference. The torch side is
// cuda/ops_cuda.cpp, which calls launch_frame_distances.
#include "cuda/common.cuh"
#include "cuda/launch.h"

namespace gamdss::gpu {
namespace {

constexpr int kCurveCols = 8;  // frames per tile (1 reference row x kCurveCols columns)

template <typename Out>
struct CurveFinishArgs {
  const DevClip* clips;
  int64_t n_clips, n_slices, numel, max_length;
  bool centered;
  const Out* sq;  // [clip][slice][t]
  const Out* lin;
  double* out;  // [B, max_length], NaN-filled beforehand
};

// Grid: warps of kThreads-thread blocks, grid-stride over clips (one warp per clip); lane l
// writes out[c, t] for t = l, l + 32, ... < length.
template <typename Out>
__global__ void __launch_bounds__(kThreads) curve_finish_kernel(CurveFinishArgs<Out> a) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t c = first; c < a.n_clips; c += stride) {
    const DevClip& p = a.clips[c];
    for (int64_t t = lane; t < p.length; t += 32) {
      const Out sq = slice_total(a.sq, p.curve_off, a.n_slices, p.length, t);
      const Out lin = a.centered ? slice_total(a.lin, p.curve_off, a.n_slices, p.length, t) : Out(0);
      a.out[c * a.max_length + t] =
          distance_from_key(selection_key(sq, lin, a.centered, a.numel), a.centered, a.numel);
    }
  }
}

template <Elem E, Distance M>
cudaError_t run(const CurveLaunch& ctx) {
  using Out = std::conditional_t<E == Elem::kU8, int64_t, double>;
  constexpr bool kCentered = M == Distance::kCentered;
  const int64_t n_slices = ctx.frames.n_slices;
  // Scratch: sq [, lin] (curve_workspace_bytes).
  Out* sq = static_cast<Out*>(ctx.workspace);
  PairArgs<Out> pa;
  pa.clips = ctx.clips;
  pa.n_clips = ctx.n_clips;
  pa.role = Role::kCurve;
  pa.a_star = nullptr;
  pa.tiles_max = (ctx.totals.max_length + kCurveCols - 1) / kCurveCols;
  pa.sq = sq;
  pa.lin = kCentered ? sq + ctx.totals.curve * n_slices : nullptr;
  // Wrap-around delta: frame t (column) minus reference (row).
  const cudaError_t err = launch_pair_partials<E, M, false, 1, kCurveCols>(ctx.frames, pa, ctx.stream);
  if (err != cudaSuccess) return err;

  CurveFinishArgs<Out> fin;
  fin.clips = ctx.clips;
  fin.n_clips = ctx.n_clips;
  fin.n_slices = n_slices;
  fin.numel = ctx.frames.numel;
  fin.max_length = ctx.max_length;
  fin.centered = kCentered;
  fin.sq = pa.sq;
  fin.lin = pa.lin;
  fin.out = ctx.out;
  GAMDSS_LAUNCH(warp_grid(ctx.n_clips), kThreads, ctx.stream, curve_finish_kernel<Out>)(fin);
  return cudaGetLastError();
}

}  // namespace

int launch_frame_distances(const CurveLaunch& a) {
  if (a.n_clips <= 0) return cudaSuccess;
  return static_cast<int>(dispatch_elem_mode(a.elem, a.distance, [&](auto elem, auto mode) {
    return run<decltype(elem)::value, decltype(mode)::value>(a);
  }));
}

}  // namespace gamdss::gpu

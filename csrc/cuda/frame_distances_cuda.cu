// CUDA kernel of gamdss::frame_distances: same semantics and outputs as
// cpu/frame_distances_cpu.cpp. Two launches on the current stream:
//   1. pair_partials_kernel, role kCurve: partial sums of (reference, t) for every frame t of
//      every clip, per slice (cuda/common.cuh);
//   2. curve_finish_kernel: one warp per clip adds the slices and writes the distances.
// Every pair is summed in the same order as in gamdss::reselect, so for l2 and centered the
// curve value at a frame is bit-identical to the distance reselect reports for the same pair
// of frames. Wrap-around (released_uint8): frame minus reference.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "cuda/common.cuh"
#include "plan.h"

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

struct Context {
  FrameArgs fa;
  const DevClip* clips;
  int64_t n_clips, max_length;
  SlotTotals totals;
  at::TensorOptions options;
  double* out;
  cudaStream_t stream;
};

template <Elem E, Distance M>
void run(const Context& ctx) {
  using Out = std::conditional_t<E == Elem::kU8, int64_t, double>;
  constexpr bool kCentered = M == Distance::kCentered;
  const auto buf_options = ctx.options.dtype(E == Elem::kU8 ? at::kLong : at::kDouble);
  const int64_t n_slices = ctx.fa.n_slices;
  at::Tensor sq = at::empty({ctx.totals.curve * n_slices}, buf_options);
  at::Tensor lin = kCentered ? at::empty({ctx.totals.curve * n_slices}, buf_options) : at::Tensor();
  PairArgs<Out> pa;
  pa.clips = ctx.clips;
  pa.n_clips = ctx.n_clips;
  pa.role = Role::kCurve;
  pa.a_star = nullptr;
  pa.tiles_max = (ctx.totals.max_length + kCurveCols - 1) / kCurveCols;
  pa.sq = sq.data_ptr<Out>();
  pa.lin = kCentered ? lin.data_ptr<Out>() : nullptr;
  // Wrap-around delta: frame t (column) minus reference (row).
  launch_pair_partials<E, M, false, 1, kCurveCols>(ctx.fa, pa, ctx.stream);

  CurveFinishArgs<Out> fin;
  fin.clips = ctx.clips;
  fin.n_clips = ctx.n_clips;
  fin.n_slices = n_slices;
  fin.numel = ctx.fa.numel;
  fin.max_length = ctx.max_length;
  fin.centered = kCentered;
  fin.sq = pa.sq;
  fin.lin = pa.lin;
  fin.out = ctx.out;
  curve_finish_kernel<Out><<<warp_grid(ctx.n_clips), kThreads, 0, ctx.stream>>>(fin);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor frame_distances_cuda(const at::Tensor& frames, const at::Tensor& starts,
                                const at::Tensor& lengths, const at::Tensor& reference,
                                c10::string_view distance, int64_t max_length) {
  check_frames(frames, "frame_distances");
  TORCH_CHECK(frames.is_cuda(), "gamdss.frame_distances: CUDA kernel called with frames on ",
              frames.device());
  const Distance dist = parse_distance(distance, frames.scalar_type());
  const c10::cuda::CUDAGuard guard(frames.device());
  const auto plan = make_curve_plan(frames, starts, lengths, reference, max_length);
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  at::Tensor out = at::full({n_clips, max_length}, std::numeric_limits<double>::quiet_NaN(),
                            frames.options().dtype(at::kDouble));
  if (n_clips == 0) return out;
  const FrameView view = make_frame_view(frames, dist, "frame_distances");

  Context ctx;
  ctx.fa = make_frame_args(view);
  const at::Tensor dev_plan = upload_plan(plan, frames.options(), &ctx.totals);
  ctx.clips = reinterpret_cast<const DevClip*>(dev_plan.const_data_ptr<int64_t>());
  ctx.n_clips = n_clips;
  ctx.max_length = max_length;
  ctx.options = frames.options();
  ctx.out = out.data_ptr<double>();
  ctx.stream = c10::cuda::getCurrentCUDAStream();

  dispatch_elem_mode(frames.scalar_type(), dist, "frame_distances", [&](auto elem, auto mode) {
    run<decltype(elem)::value, decltype(mode)::value>(ctx);
  });
  return out;
}

}  // namespace
}  // namespace gamdss::gpu

TORCH_LIBRARY_IMPL(gamdss, CUDA, m) {
  m.impl("frame_distances", &gamdss::gpu::frame_distances_cuda);
}

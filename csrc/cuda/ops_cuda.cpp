// The CUDA kernels of gamdss::reselect and gamdss::frame_distances as torch ops: argument
// checks, the plan, output and scratch allocation (caching allocator, current stream), the
// device guard, then one call of the host launch function that reselect_cuda.cu /
// frame_distances_cuda.cu define (cuda/launch.h). This is the only CUDA-side file that
// includes torch; the .cu files see raw pointers and plain structs only.
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstring>
#include <limits>
#include <vector>

#include "cuda/launch.h"
#include "plan.h"

namespace gamdss::gpu {
namespace {

// The plan on the frames' device (copied from pinned host memory on the current stream, no
// host synchronisation); the returned tensor keeps it alive.
at::Tensor upload_plan(const std::vector<ClipPlan>& plan, const at::Tensor& frames,
                       SlotTotals* totals) {
  const int64_t n = static_cast<int64_t>(plan.size());
  std::vector<DevClip> clips(static_cast<size_t>(n));
  *totals = pack_plan(plan.data(), n, clips.data());
  at::Tensor host = at::empty({n, 16}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
  if (n > 0) std::memcpy(host.data_ptr<int64_t>(), clips.data(), clips.size() * sizeof(DevClip));
  return host.to(frames.options().dtype(at::kLong), /*non_blocking=*/true);
}

FrameArgs frame_args(const FrameView& v) {
  return make_frame_args(v.holder.const_data_ptr(), v.stride0, v.frame_numel,
                         elem_of(v.holder.scalar_type()));
}

// Scratch memory of `bytes` bytes on the frames' device, freed to the caching allocator when
// the tensor goes out of scope (reused only by work ordered after the kernels on this stream).
at::Tensor workspace(int64_t bytes, const at::Tensor& frames) {
  return at::empty({bytes > 0 ? bytes : 1}, frames.options().dtype(at::kByte));
}

ReselectTuple reselect_cuda(const at::Tensor& frames, const at::Tensor& starts,
                            const at::Tensor& lengths, const at::Tensor& annotations,
                            const at::Tensor& windows, c10::string_view distance, int64_t table_o,
                            int64_t table_a, int64_t table_f) {
  check_frames(frames, "reselect");
  // Reached with CPU frames when an index tensor is on a GPU (the dispatcher follows it).
  TORCH_CHECK(frames.is_cuda(), "gamdss.reselect: frames are on ", frames.device(),
              " but an index tensor is on a GPU; pass starts, lengths, annotations and windows on the CPU or on the frames' device");
  const Distance dist = parse_distance(distance, frames.scalar_type());
  const c10::cuda::CUDAGuard guard(frames.device());
  const auto plan = make_reselect_plan(frames, starts, lengths, annotations, windows, table_o,
                                       table_a, table_f);
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  const ReselectOutputs out = allocate_reselect_outputs(frames, n_clips, table_o, table_a, table_f);
  if (n_clips == 0) return out.as_tuple();

  const FrameView view = make_frame_view(frames, dist, "reselect");
  ReselectLaunch a{};
  a.frames = frame_args(view);
  a.elem = elem_of(frames.scalar_type());
  a.distance = dist;
  const at::Tensor dev_plan = upload_plan(plan, frames, &a.totals);
  a.clips = reinterpret_cast<const DevClip*>(dev_plan.const_data_ptr<int64_t>());
  a.n_clips = n_clips;
  const at::Tensor scratch = workspace(reselect_workspace_bytes(a.frames, a.totals, dist), frames);
  a.workspace = scratch.data_ptr();
  a.onset = out.onset.data_ptr<int64_t>();
  a.apex = out.apex.data_ptr<int64_t>();
  a.offset = out.offset.data_ptr<int64_t>();
  a.rise_distance = out.rise_distance.data_ptr<double>();
  a.fall_distance = out.fall_distance.data_ptr<double>();
  a.rise_table = out.has_tables() ? out.rise_table.data_ptr<double>() : nullptr;
  a.fall_table = out.has_tables() ? out.fall_table.data_ptr<double>() : nullptr;
  a.table_o = table_o;
  a.table_a = table_a;
  a.table_f = table_f;
  a.stream = c10::cuda::getCurrentCUDAStream().stream();
  C10_CUDA_CHECK(static_cast<cudaError_t>(launch_reselect(a)));
  return out.as_tuple();
}

at::Tensor frame_distances_cuda(const at::Tensor& frames, const at::Tensor& starts,
                                const at::Tensor& lengths, const at::Tensor& reference,
                                c10::string_view distance, int64_t max_length) {
  check_frames(frames, "frame_distances");
  // Reached with CPU frames when an index tensor is on a GPU (the dispatcher follows it).
  TORCH_CHECK(frames.is_cuda(), "gamdss.frame_distances: frames are on ", frames.device(),
              " but an index tensor is on a GPU; pass starts, lengths and reference on the CPU or on the frames' device");
  const Distance dist = parse_distance(distance, frames.scalar_type());
  const c10::cuda::CUDAGuard guard(frames.device());
  const auto plan = make_curve_plan(frames, starts, lengths, reference, max_length);
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  at::Tensor out = at::full({n_clips, max_length}, std::numeric_limits<double>::quiet_NaN(),
                            frames.options().dtype(at::kDouble));
  if (n_clips == 0) return out;

  const FrameView view = make_frame_view(frames, dist, "frame_distances");
  CurveLaunch a{};
  a.frames = frame_args(view);
  a.elem = elem_of(frames.scalar_type());
  a.distance = dist;
  const at::Tensor dev_plan = upload_plan(plan, frames, &a.totals);
  a.clips = reinterpret_cast<const DevClip*>(dev_plan.const_data_ptr<int64_t>());
  a.n_clips = n_clips;
  const at::Tensor scratch = workspace(curve_workspace_bytes(a.frames, a.totals, dist), frames);
  a.workspace = scratch.data_ptr();
  a.out = out.data_ptr<double>();
  a.max_length = max_length;
  a.stream = c10::cuda::getCurrentCUDAStream().stream();
  C10_CUDA_CHECK(static_cast<cudaError_t>(launch_frame_distances(a)));
  return out;
}

}  // namespace
}  // namespace gamdss::gpu

TORCH_LIBRARY_IMPL(gamdss, CUDA, m) {
  m.impl("reselect", &gamdss::gpu::reselect_cuda);
  m.impl("frame_distances", &gamdss::gpu::frame_distances_cuda);
}

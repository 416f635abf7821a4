// CPU kernel of gamdss::frame_distances: distance of every frame of each clip to the
// clip's reference frame (the curves of the paper's Fig. 2).
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <limits>

#include "cpu/block_sums.h"
#include "cpu/selection.h"
#include "plan.h"

namespace gamdss::cpu {
namespace {

template <typename Acc>
void curves_impl(const FrameView& view, Distance dist, const std::vector<ClipPlan>& plan,
                 int64_t max_length, double* out) {
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  const int64_t D = view.frame_numel;
  const FrameBytes fb = frame_bytes(view);
  const Blocks blocks = blocks_for(view);
  const PairSummer pair_sums{dist, elem_of(view.holder.scalar_type()), D};
  std::vector<int64_t> slots(n_clips);
  for (int64_t c = 0; c < n_clips; ++c) slots[c] = plan[c].length;
  BlockPartials<Acc> sums(slots, blocks.count);
  // n_a holds the reference frame; the wrap-around curve is frame minus reference.
  int64_t frames_read = 0;
  for (const ClipPlan& p : plan) frames_read += p.length;
  const int64_t threads = threads_for_bytes(frames_read * D * view.holder.element_size());
  for_each_clip_block(n_clips, blocks, D, threads, [&](int64_t c, int64_t k0, int64_t n, int64_t blk) {
    const ClipPlan& p = plan[c];
    const PairBlock pb{p.start + p.n_a, p.start + p.n_a, p.start, p.start + p.length - 1,
                       /*upper=*/false, 0};
    pair_sums(fb, false, pb, k0, n, sums.sq(c, blk), sums.lin(c, blk));
  });
  for (int64_t c = 0; c < n_clips; ++c) {
    for (int64_t t = 0; t < plan[c].length; ++t) {
      const auto [s2, s1] = sums.total(c, t);
      out[c * max_length + t] = distance_from_key(selection_key(s2, s1, dist, D), dist, D);
    }
  }
}

at::Tensor frame_distances_cpu(const at::Tensor& frames, const at::Tensor& starts,
                               const at::Tensor& lengths, const at::Tensor& reference,
                               c10::string_view distance, int64_t max_length) {
  check_frames(frames, "frame_distances");
  TORCH_CHECK(frames.device().is_cpu(), "gamdss.frame_distances: CPU kernel called with frames on ",
              frames.device());
  const Distance dist = parse_distance(distance, frames.scalar_type());
  const auto plan = make_curve_plan(frames, starts, lengths, reference, max_length);
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  at::Tensor out = at::full({n_clips, max_length}, std::numeric_limits<double>::quiet_NaN(),
                            frames.options().dtype(at::kDouble));
  if (n_clips == 0) return out;
  const FrameView view = make_frame_view(frames, dist, "frame_distances");
  if (frames.scalar_type() == at::kByte) {
    curves_impl<int64_t>(view, dist, plan, max_length, out.data_ptr<double>());
  } else {
    curves_impl<double>(view, dist, plan, max_length, out.data_ptr<double>());
  }
  return out;
}

}  // namespace
}  // namespace gamdss::cpu

TORCH_LIBRARY_IMPL(gamdss, CPU, m) { m.impl("frame_distances", &gamdss::cpu::frame_distances_cpu); }

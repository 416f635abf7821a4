// CPU kernel of gamdss::reselect: the rise search over (onset, apex) pairs, then the fall
// search from the chosen apex; per clip on one thread when there are enough clips, else as
// parallel passes over (clip, block) items.
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <limits>
#include <tuple>

#include "cpu/block_sums.h"
#include "cpu/selection.h"
#include "plan.h"

namespace gamdss::cpu {
namespace {

using Outputs = ReselectTuple;

// Clips per thread from which one clip is one work item (rise sums, rise selection, fall
// sums, fall selection, all by one thread). Then each clip's frames are read as one
// sequential stream per frame, and the chosen apex, read again by the fall, is still in
// the cache. With fewer clips the work is cut finer: (clip, block) items for the rise of
// all clips, then for the fall.
constexpr int64_t kClipItemsPerThread = 4;

// Sums with Acc = int64_t (uint8 frames, exact) or double (floating frames) and writes the
// selections, distances and (when allocated) tables into `out`. Both ways of cutting the
// work add the same per-block partial sums in the same order (uint8 l2 / centered: exact
// integers, one call per clip when a clip is an item), so the results do not depend on
// which one runs or on the number of threads.
template <typename Acc>
void reselect_impl(const FrameView& view, Distance dist, const std::vector<ClipPlan>& plan,
                   const ReselectOutputs& out, int64_t table_o, int64_t table_a, int64_t table_f) {
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  int64_t* onset = out.onset.data_ptr<int64_t>();
  int64_t* apex = out.apex.data_ptr<int64_t>();
  int64_t* offset = out.offset.data_ptr<int64_t>();
  double* rise_d = out.rise_distance.data_ptr<double>();
  double* fall_d = out.fall_distance.data_ptr<double>();
  double* rise_table = out.has_tables() ? out.rise_table.data_ptr<double>() : nullptr;
  double* fall_table = out.has_tables() ? out.fall_table.data_ptr<double>() : nullptr;
  const int64_t D = view.frame_numel;
  const FrameBytes fb = frame_bytes(view);
  const Blocks blocks = blocks_for(view);
  const PairSummer sums{dist, elem_of(view.holder.scalar_type()), D};
  using Key = decltype(selection_key(Acc{}, Acc{}, dist, D));

  // Rise: slot (o - o_lo) * n_apexes + (a - a_lo) for o in O, a in A with o <= a.
  std::vector<int64_t> rise_slots(n_clips);
  for (int64_t c = 0; c < n_clips; ++c) rise_slots[c] = plan[c].n_onsets() * plan[c].n_apexes();
  BlockPartials<Acc> rise(rise_slots, blocks.count);
  auto rise_block = [&](int64_t c, int64_t k0, int64_t n, int64_t blk) {
    const ClipPlan& p = plan[c];
    const PairBlock pb{p.start + p.o_lo, p.start + p.o_hi, p.start + p.a_lo, p.start + p.a_hi,
                       /*upper=*/true, p.n_apexes()};
    sums(fb, false, pb, k0, n, rise.sq(c, blk), rise.lin(c, blk));
  };
  std::vector<int64_t> a_star(n_clips);
  auto select_rise = [&](int64_t c) {
    const ClipPlan& p = plan[c];
    RiseBest<Key> best;
    for (int64_t o = p.o_lo; o <= p.o_hi; ++o) {
      for (int64_t a = std::max(p.a_lo, o); a <= p.a_hi; ++a) {
        const int64_t slot = (o - p.o_lo) * p.n_apexes() + (a - p.a_lo);
        const auto [s2, s1] = rise.total(c, slot);
        const auto key = selection_key(s2, s1, dist, D);
        best.offer(key, o, a, p);
        if (rise_table != nullptr) {
          rise_table[(c * table_o + (o - p.o_lo)) * table_a + (a - p.a_lo)] = distance_from_key(key, dist, D);
        }
      }
    }
    onset[c] = best.o;
    apex[c] = best.a;
    a_star[c] = best.a;
    rise_d[c] = distance_from_key(best.key, dist, D);
  };

  // Fall: offsets below the chosen apex become the apex, so the candidates are the frames
  // [max(f_lo, a*), max(f_hi, a*)]; slot f - max(f_lo, a*). There are at most n_offsets.
  std::vector<int64_t> fall_lo(n_clips), fall_slots(n_clips), fall_cap(n_clips);
  for (int64_t c = 0; c < n_clips; ++c) fall_cap[c] = plan[c].n_offsets();
  BlockPartials<Acc> fall(fall_cap, blocks.count);
  auto fall_range = [&](int64_t c) {
    fall_lo[c] = std::max(plan[c].f_lo, a_star[c]);
    fall_slots[c] = std::max(plan[c].f_hi, a_star[c]) - fall_lo[c] + 1;
  };
  auto fall_block = [&](int64_t c, int64_t k0, int64_t n, int64_t blk) {
    const int64_t s = plan[c].start;
    const PairBlock pb{s + a_star[c], s + a_star[c], s + fall_lo[c], s + fall_lo[c] + fall_slots[c] - 1,
                       /*upper=*/false, 0};
    // The wrap-around distance of the fall pair is apex minus offset.
    sums(fb, true, pb, k0, n, fall.sq(c, blk), fall.lin(c, blk));
  };
  auto select_fall = [&](int64_t c) {
    const ClipPlan& p = plan[c];
    FallBest<Key> best;
    std::vector<double> d_eff(fall_slots[c]);
    for (int64_t s = 0; s < fall_slots[c]; ++s) {
      const auto [s2, s1] = fall.total(c, s);
      const auto key = selection_key(s2, s1, dist, D);
      best.offer(key, fall_lo[c] + s, p);
      d_eff[s] = distance_from_key(key, dist, D);
    }
    offset[c] = best.f;
    fall_d[c] = distance_from_key(best.key, dist, D);
    if (fall_table != nullptr) {
      for (int64_t f = p.f_lo; f <= p.f_hi; ++f) {
        fall_table[c * table_f + (f - p.f_lo)] = d_eff[std::max(f, a_star[c]) - fall_lo[c]];
      }
    }
  };

  int64_t frames_read = 0;  // at most; the windows may overlap
  for (const ClipPlan& p : plan) frames_read += p.n_onsets() + p.n_apexes() + p.n_offsets();
  const int64_t threads = threads_for_bytes(frames_read * D * view.holder.element_size());
  if (n_clips >= kClipItemsPerThread * threads) {
    // Exact sums may go in one call per clip (block 0; the other blocks' partials stay 0).
    const Blocks clip_blocks = sums.whole_frames() ? Blocks{D, 1} : blocks;
    for_each_dynamic(n_clips, threads, [&](int64_t c) {
      for (int64_t blk = 0; blk < clip_blocks.count; ++blk) {
        const auto [k0, n] = clip_blocks.range(blk, D);
        rise_block(c, k0, n, blk);
      }
      select_rise(c);
      fall_range(c);
      for (int64_t blk = 0; blk < clip_blocks.count; ++blk) {
        const auto [k0, n] = clip_blocks.range(blk, D);
        fall_block(c, k0, n, blk);
      }
      select_fall(c);
    });
    return;
  }
  for_each_clip_block(n_clips, blocks, D, threads, rise_block);
  // The selections are a few additions per pair: not worth waking threads for.
  for (int64_t c = 0; c < n_clips; ++c) select_rise(c);
  for (int64_t c = 0; c < n_clips; ++c) fall_range(c);
  for_each_clip_block(n_clips, blocks, D, threads, fall_block);
  for (int64_t c = 0; c < n_clips; ++c) select_fall(c);
}

Outputs reselect_cpu(const at::Tensor& frames, const at::Tensor& starts,
                     const at::Tensor& lengths, const at::Tensor& annotations,
                     const at::Tensor& windows, c10::string_view distance, int64_t table_o,
                     int64_t table_a, int64_t table_f) {
  check_frames(frames, "reselect");
  TORCH_CHECK(frames.device().is_cpu(), "gamdss.reselect: CPU kernel called with frames on ",
              frames.device());
  const Distance dist = parse_distance(distance, frames.scalar_type());
  const auto plan = make_reselect_plan(frames, starts, lengths, annotations, windows, table_o,
                                       table_a, table_f);
  const int64_t n_clips = static_cast<int64_t>(plan.size());
  const ReselectOutputs out = allocate_reselect_outputs(frames, n_clips, table_o, table_a, table_f);
  if (n_clips == 0) return out.as_tuple();

  const FrameView view = make_frame_view(frames, dist, "reselect");
  if (frames.scalar_type() == at::kByte) {
    reselect_impl<int64_t>(view, dist, plan, out, table_o, table_a, table_f);
  } else {
    reselect_impl<double>(view, dist, plan, out, table_o, table_a, table_f);
  }
  return out.as_tuple();
}

}  // namespace
}  // namespace gamdss::cpu

TORCH_LIBRARY_IMPL(gamdss, CPU, m) { m.impl("reselect", &gamdss::cpu::reselect_cpu); }

// CUDA kernel of gamdss::reselect: same semantics and outputs as cpu/reselect_cpu.cpp
// (docs/reselection.md). Four launches on the current stream, no host synchronisation
// after the plan upload:
//   1. pair_partials_kernel, role kRise: partial sums of every rise pair (o, a) per slice;
//   2. rise_select_kernel: one warp per clip adds the slices, applies the tie rules, writes
//      onset, apex (= a*, read back by 3 and 4), rise_distance and the rise table;
//   3. pair_partials_kernel, role kFall: partial sums of (a*, max(f, a*)) per slice;
//   4. fall_select_kernel: one warp per clip, writes offset, fall_distance, fall table.
// The work decomposition and summation order are described in cuda/common.cuh. The torch
// side (checks, plan, allocation, stream) is cuda/ops_cuda.cpp, which calls launch_reselect.
#include "cuda/common.cuh"
#include "cuda/launch.h"

namespace gamdss::gpu {
namespace {

// Tile shapes (rows x columns of frames per block) of the rise kernel, chosen to keep the
// per-thread accumulators in registers: RT*CT uint32 / float accumulators, or RT*CT doubles
// (float64 l2) or 2*RT*CT doubles (centered floating). Fall uses 1 x kFallCols.
template <Elem E, Distance M>
struct RiseTile {
  static constexpr bool kCenteredFloat = M == Distance::kCentered && E != Elem::kU8;
  static constexpr int kRows = kCenteredFloat ? 2 : 4;
  static constexpr int kCols = (E == Elem::kU8 || (M == Distance::kL2 && E != Elem::kF64)) ? 8 : 4;
};
constexpr int kFallCols = 8;

template <typename Out>
struct RiseSelectArgs {
  const DevClip* clips;
  int64_t n_clips, n_slices, numel;
  bool centered;
  const Out* sq;   // rise partials [clip][slice][slot], slot (o - o_lo) * n_apexes + (a - a_lo)
  const Out* lin;  // centered only
  int64_t* onset;
  int64_t* apex;
  double* distance;
  double* table;  // [B, table_o, table_a] or nullptr
  int64_t table_o, table_a;
};

// Grid: warps of kThreads-thread blocks, grid-stride over clips (one warp per clip).
// Lane l handles the slots l, l + 32, ... of its clip; every pair with o <= a gets its key
// (slices added in slice order), its table entry, and competes for the clip's best pair.
template <typename Out>
__global__ void __launch_bounds__(kThreads) rise_select_kernel(RiseSelectArgs<Out> a) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t c = first; c < a.n_clips; c += stride) {  // uniform over the warp
    const DevClip& p = a.clips[c];
    const int64_t n_ap = p.a_hi - p.a_lo + 1;
    const int64_t n_slots = (p.o_hi - p.o_lo + 1) * n_ap;
    Candidate<Out> best;
    for (int64_t slot = lane; slot < n_slots; slot += 32) {
      const int64_t o = p.o_lo + slot / n_ap;
      const int64_t ap = p.a_lo + slot % n_ap;
      if (o > ap) continue;
      const Out sq = slice_total(a.sq, p.rise_off, a.n_slices, n_slots, slot);
      const Out lin = a.centered ? slice_total(a.lin, p.rise_off, a.n_slices, n_slots, slot) : Out(0);
      const Out key = selection_key(sq, lin, a.centered, a.numel);
      if (a.table != nullptr) {
        a.table[(c * a.table_o + (o - p.o_lo)) * a.table_a + (ap - p.a_lo)] =
            distance_from_key(key, a.centered, a.numel);
      }
      best.offer(key, abs64(o - p.n_o) + abs64(ap - p.n_a), o, ap);
    }
    best.warp_best();
    if (lane == 0) {
      a.onset[c] = best.i;
      a.apex[c] = best.j;
      a.distance[c] = distance_from_key(best.key, a.centered, a.numel);
    }
  }
}

template <typename Out>
struct FallSelectArgs {
  const DevClip* clips;
  int64_t n_clips, n_slices, numel;
  bool centered;
  const Out* sq;  // fall partials [clip][slice][k], k = f - f_lo
  const Out* lin;
  const int64_t* apex;  // a*, written by rise_select_kernel
  int64_t* offset;
  double* distance;
  double* table;  // [B, table_f] or nullptr
  int64_t table_f;
};

// Grid as rise_select_kernel. Lane l handles k = l, l + 32, ... < n_offsets: the effective
// offset max(f_lo + k, a*), whose distance goes to table column k and competes under the
// fall tie rules (duplicates of a* are identical candidates).
template <typename Out>
__global__ void __launch_bounds__(kThreads) fall_select_kernel(FallSelectArgs<Out> a) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t c = first; c < a.n_clips; c += stride) {
    const DevClip& p = a.clips[c];
    const int64_t a_star = a.apex[c];
    const int64_t n_off = p.f_hi - p.f_lo + 1;
    Candidate<Out> best;
    for (int64_t k = lane; k < n_off; k += 32) {
      const int64_t f = p.f_lo + k;
      const int64_t f_eff = f > a_star ? f : a_star;
      const Out sq = slice_total(a.sq, p.fall_off, a.n_slices, n_off, k);
      const Out lin = a.centered ? slice_total(a.lin, p.fall_off, a.n_slices, n_off, k) : Out(0);
      const Out key = selection_key(sq, lin, a.centered, a.numel);
      if (a.table != nullptr) a.table[c * a.table_f + k] = distance_from_key(key, a.centered, a.numel);
      best.offer(key, abs64(f_eff - p.n_f), f_eff, 0);
    }
    best.warp_best();
    if (lane == 0) {
      a.offset[c] = best.i;
      a.distance[c] = distance_from_key(best.key, a.centered, a.numel);
    }
  }
}

template <Elem E, Distance M>
cudaError_t run(const ReselectLaunch& ctx) {
  using Out = std::conditional_t<E == Elem::kU8, int64_t, double>;
  constexpr bool kCentered = M == Distance::kCentered;
  constexpr int RT = RiseTile<E, M>::kRows;
  constexpr int CT = RiseTile<E, M>::kCols;
  const int64_t n_slices = ctx.frames.n_slices;
  const cudaStream_t stream = ctx.stream;
  // Scratch: rise sq [, rise lin], fall sq [, fall lin] (reselect_workspace_bytes).
  Out* next = static_cast<Out*>(ctx.workspace);
  auto take = [&](int64_t n) {
    Out* p = next;
    next += n;
    return p;
  };

  // 1-2: rise.
  PairArgs<Out> rise;
  rise.clips = ctx.clips;
  rise.n_clips = ctx.n_clips;
  rise.role = Role::kRise;
  rise.a_star = nullptr;
  rise.tiles_max = ((ctx.totals.max_onsets + RT - 1) / RT) * ((ctx.totals.max_apexes + CT - 1) / CT);
  rise.sq = take(ctx.totals.rise * n_slices);
  rise.lin = kCentered ? take(ctx.totals.rise * n_slices) : nullptr;
  cudaError_t err = launch_pair_partials<E, M, false, RT, CT>(ctx.frames, rise, stream);
  if (err != cudaSuccess) return err;

  RiseSelectArgs<Out> rs;
  rs.clips = ctx.clips;
  rs.n_clips = ctx.n_clips;
  rs.n_slices = n_slices;
  rs.numel = ctx.frames.numel;
  rs.centered = kCentered;
  rs.sq = rise.sq;
  rs.lin = rise.lin;
  rs.onset = ctx.onset;
  rs.apex = ctx.apex;
  rs.distance = ctx.rise_distance;
  rs.table = ctx.rise_table;
  rs.table_o = ctx.table_o;
  rs.table_a = ctx.table_a;
  GAMDSS_LAUNCH(warp_grid(ctx.n_clips), kThreads, stream, rise_select_kernel<Out>)(rs);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;

  // 3-4: fall, from a* in device memory. The wrap-around fall delta is apex minus offset,
  // i.e. row minus column.
  PairArgs<Out> fall;
  fall.clips = ctx.clips;
  fall.n_clips = ctx.n_clips;
  fall.role = Role::kFall;
  fall.a_star = ctx.apex;
  fall.tiles_max = (ctx.totals.max_offsets + kFallCols - 1) / kFallCols;
  fall.sq = take(ctx.totals.fall * n_slices);
  fall.lin = kCentered ? take(ctx.totals.fall * n_slices) : nullptr;
  err = launch_pair_partials<E, M, M == Distance::kWrapped, 1, kFallCols>(ctx.frames, fall, stream);
  if (err != cudaSuccess) return err;

  FallSelectArgs<Out> fs;
  fs.clips = ctx.clips;
  fs.n_clips = ctx.n_clips;
  fs.n_slices = n_slices;
  fs.numel = ctx.frames.numel;
  fs.centered = kCentered;
  fs.sq = fall.sq;
  fs.lin = fall.lin;
  fs.apex = ctx.apex;
  fs.offset = ctx.offset;
  fs.distance = ctx.fall_distance;
  fs.table = ctx.fall_table;
  fs.table_f = ctx.table_f;
  GAMDSS_LAUNCH(warp_grid(ctx.n_clips), kThreads, stream, fall_select_kernel<Out>)(fs);
  return cudaGetLastError();
}

}  // namespace

int launch_reselect(const ReselectLaunch& a) {
  if (a.n_clips <= 0) return cudaSuccess;
  return static_cast<int>(dispatch_elem_mode(a.elem, a.distance, [&](auto elem, auto mode) {
    return run<decltype(elem)::value, decltype(mode)::value>(a);
  }));
}

}  // namespace gamdss::gpu

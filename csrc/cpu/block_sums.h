// The CPU work decomposition shared by both ops: every clip's frames are cut into blocks of
// kBlockBytes; one work item sums one block of one clip for all of that clip's frame pairs,
// so each candidate frame is read from memory once and reused from cache across its pairs.
// Per-block partial sums are added up in block order, which makes the results independent
// of the number of threads.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu/pair_sums.h"
#include "plan.h"

namespace gamdss::cpu {

constexpr int64_t kBlockBytes = 32768;

inline kernels::Mode mode_of(Distance d) {
  switch (d) {
    case Distance::kCentered: return kernels::Mode::kCentered;
    case Distance::kWrapped: return kernels::Mode::kWrapped;
    default: return kernels::Mode::kL2;
  }
}

inline kernels::Elem elem_of(at::ScalarType t) {
  switch (t) {
    case at::kByte: return kernels::Elem::kU8;
    case at::kHalf: return kernels::Elem::kF16;
    case at::kBFloat16: return kernels::Elem::kBF16;
    case at::kFloat: return kernels::Elem::kF32;
    default: return kernels::Elem::kF64;
  }
}

// Byte addressing of frame elements (see FrameView).
struct FrameBytes {
  const char* base;
  int64_t frame_stride;  // bytes between consecutive frames
  int64_t elem_size;     // bytes per element
  const char* at(int64_t frame, int64_t element) const {
    return base + frame * frame_stride + element * elem_size;
  }
};

inline FrameBytes frame_bytes(const FrameView& v) {
  const int64_t es = v.holder.element_size();
  return FrameBytes{static_cast<const char*>(v.holder.const_data_ptr()), v.stride0 * es, es};
}

struct Blocks {
  int64_t elems;  // elements per block
  int64_t count;  // blocks per frame
  std::pair<int64_t, int64_t> range(int64_t blk, int64_t frame_numel) const {
    const int64_t k0 = blk * elems;
    return {k0, std::min(elems, frame_numel - k0)};
  }
};

inline Blocks blocks_for(const FrameView& v) {
  const int64_t elems = kBlockBytes / v.holder.element_size();
  return Blocks{elems, (v.frame_numel + elems - 1) / elems};
}

// Runs the inner kernel; int64 sums for uint8 frames, double sums for floating frames.
template <typename Acc>
struct TileRunner;

template <>
struct TileRunner<int64_t> {
  kernels::Mode mode;
  kernels::Elem elem;
  void operator()(bool x_minus_y, const char* x, const char* const* ys, int ny, int64_t n,
                  int64_t* sq, int64_t* lin) const {
    kernels::active_kernels().u8(mode, x_minus_y, reinterpret_cast<const uint8_t*>(x),
                                 reinterpret_cast<const uint8_t* const*>(ys), ny, n, sq, lin);
  }
};

template <>
struct TileRunner<double> {
  kernels::Mode mode;
  kernels::Elem elem;
  void operator()(bool x_minus_y, const char* x, const char* const* ys, int ny, int64_t n,
                  double* sq, double* lin) const {
    (void)x_minus_y;  // only the uint8 wrap-around depends on the order
    kernels::active_kernels().floating(elem, mode, x, reinterpret_cast<const void* const*>(ys),
                                       ny, n, sq, lin);
  }
};

// Adds the sums of frame `row` against each frame of [col_lo, col_hi] (frame indices in
// the packed tensor) over elements [k0, k0 + n) into sq[col - col_lo], lin[col - col_lo].
template <typename Acc>
void row_against_range(const FrameBytes& fb, const TileRunner<Acc>& run, bool x_minus_y,
                       int64_t row, int64_t col_lo, int64_t col_hi, int64_t k0, int64_t n,
                       Acc* sq, Acc* lin) {
  const char* x = fb.at(row, k0);
  const char* ys[kernels::kMaxTile];
  for (int64_t col = col_lo; col <= col_hi; col += kernels::kMaxTile) {
    const int ny = static_cast<int>(std::min<int64_t>(kernels::kMaxTile, col_hi - col + 1));
    for (int j = 0; j < ny; ++j) ys[j] = fb.at(col + j, k0);
    run(x_minus_y, x, ys, ny, n, sq + (col - col_lo), lin + (col - col_lo));
  }
}

// Partial sums of `slots[c]` pairs per clip c, for every block: [clip][block][slot].
template <typename Acc>
class BlockPartials {
 public:
  BlockPartials(const std::vector<int64_t>& slots, int64_t n_blocks)
      : slots_(slots), n_blocks_(n_blocks), offset_(slots.size() + 1, 0) {
    for (size_t c = 0; c < slots.size(); ++c) offset_[c + 1] = offset_[c] + slots[c] * n_blocks;
    sq_.assign(offset_.back(), Acc{});
    lin_.assign(offset_.back(), Acc{});
  }
  Acc* sq(int64_t c, int64_t blk) { return sq_.data() + offset_[c] + blk * slots_[c]; }
  Acc* lin(int64_t c, int64_t blk) { return lin_.data() + offset_[c] + blk * slots_[c]; }
  // Totals over blocks, in block order.
  std::pair<Acc, Acc> total(int64_t c, int64_t slot) const {
    Acc s2{}, s1{};
    for (int64_t blk = 0; blk < n_blocks_; ++blk) {
      s2 += sq_[offset_[c] + blk * slots_[c] + slot];
      s1 += lin_[offset_[c] + blk * slots_[c] + slot];
    }
    return {s2, s1};
  }

 private:
  std::vector<int64_t> slots_;
  int64_t n_blocks_;
  std::vector<int64_t> offset_;
  std::vector<Acc> sq_, lin_;
};

// Calls f(clip, k0, n, block) for every (clip, block) pair, in parallel.
template <typename F>
void for_each_clip_block(int64_t n_clips, const Blocks& blocks, int64_t frame_numel, const F& f) {
  const int64_t items = n_clips * blocks.count;
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t c = item / blocks.count;
      const int64_t blk = item % blocks.count;
      const auto [k0, n] = blocks.range(blk, frame_numel);
      f(c, k0, n, blk);
    }
  });
}

}  // namespace gamdss::cpu

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
// Within a block, all pairs are summed over sub-blocks of this many bytes, so that the
// sub-blocks of every frame involved stay in L1 while they are reused across pairs.
constexpr int64_t kSubBlockBytes = 2048;

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

// Sums of the frame pairs (r, c), r in [r_lo, r_hi], c in [c_lo, c_hi] (and c >= r when
// `upper`), over elements [k0, k0 + n): sq[slot] += sum delta^2, lin[slot] += sum delta with
// delta = frame c - frame r (for the wrap-around, frame r - frame c when x_minus_y) and
// slot = (r - r_lo) * row_stride + (c - c_lo). Frame indices are rows of the packed tensor.
//
// uint8 l2 / centered go through exact integer dot products (|x|^2 + |y|^2 - 2 x.y and the
// difference of sums, from per-frame statistics computed once per block), which needs one
// multiply-accumulate per element and pair instead of a subtract, widen and square; the
// integers are exact, so the sums are the same as from direct differences.
struct PairBlock {
  int64_t r_lo, r_hi, c_lo, c_hi;
  bool upper;
  int64_t row_stride;
  int64_t first_col(int64_t r) const { return upper ? std::max(c_lo, r) : c_lo; }
};

inline void block_pairs_u8_sub(const FrameBytes& fb, Distance mode, bool x_minus_y, const PairBlock& pb,
                               int64_t k0, int64_t n, int64_t* sq, int64_t* lin, int64_t* stats_buf) {
  const kernels::KernelSet& ks = kernels::active_kernels();
  auto ptr = [&](int64_t frame) { return reinterpret_cast<const uint8_t*>(fb.at(frame, k0)); };
  const uint8_t* ys[kernels::kMaxTile];
  if (mode == Distance::kWrapped) {
    for (int64_t r = pb.r_lo; r <= pb.r_hi; ++r) {
      for (int64_t c = pb.first_col(r); c <= pb.c_hi; c += kernels::kMaxTile) {
        const int ny = static_cast<int>(std::min<int64_t>(kernels::kMaxTile, pb.c_hi - c + 1));
        for (int j = 0; j < ny; ++j) ys[j] = ptr(c + j);
        ks.u8_wrapped(x_minus_y, ptr(r), ys, ny, n, sq + (r - pb.r_lo) * pb.row_stride + (c - pb.c_lo));
      }
    }
    return;
  }
  // Per-frame sums and sums of squares of this block, rows and columns.
  const int64_t n_rows = pb.r_hi - pb.r_lo + 1, n_cols = pb.c_hi - pb.c_lo + 1;
  std::fill(stats_buf, stats_buf + 2 * (n_rows + n_cols), int64_t{0});
  int64_t* r_sum = stats_buf;
  int64_t* r_sq = r_sum + n_rows;
  int64_t* c_sum = r_sq + n_rows;
  int64_t* c_sq = c_sum + n_cols;
  for (int64_t i = 0; i < n_rows; ++i) ks.u8_stats(ptr(pb.r_lo + i), n, r_sum + i, r_sq + i);
  for (int64_t i = 0; i < n_cols; ++i) ks.u8_stats(ptr(pb.c_lo + i), n, c_sum + i, c_sq + i);
  for (int64_t r = pb.r_lo; r <= pb.r_hi; ++r) {
    const int64_t ri = r - pb.r_lo;
    for (int64_t c = pb.first_col(r); c <= pb.c_hi; c += kernels::kMaxTile) {
      const int ny = static_cast<int>(std::min<int64_t>(kernels::kMaxTile, pb.c_hi - c + 1));
      const int64_t ci = c - pb.c_lo;
      for (int j = 0; j < ny; ++j) ys[j] = ptr(c + j);
      int64_t dot[kernels::kMaxTile] = {};
      ks.u8_dots(ptr(r), ys, c_sum + ci, ny, n, dot);
      for (int j = 0; j < ny; ++j) {
        const int64_t slot = ri * pb.row_stride + ci + j;
        sq[slot] += r_sq[ri] + c_sq[ci + j] - 2 * dot[j];
        lin[slot] += c_sum[ci + j] - r_sum[ri];
      }
    }
  }
}

inline void block_pairs_u8(const FrameBytes& fb, Distance mode, bool x_minus_y, const PairBlock& pb,
                           int64_t k0, int64_t n, int64_t* sq, int64_t* lin) {
  std::vector<int64_t> stats(2 * ((pb.r_hi - pb.r_lo + 1) + (pb.c_hi - pb.c_lo + 1)));
  for (int64_t s0 = 0; s0 < n; s0 += kSubBlockBytes) {
    block_pairs_u8_sub(fb, mode, x_minus_y, pb, k0 + s0, std::min(kSubBlockBytes, n - s0), sq, lin,
                       stats.data());
  }
}

inline void block_pairs_float(const FrameBytes& fb, Distance mode, Elem elem,
                              const PairBlock& pb, int64_t k0, int64_t n_all, double* sq, double* lin) {
  const kernels::KernelSet& ks = kernels::active_kernels();
  const void* ys[kernels::kMaxTile];
  // Sub-blocks are whole summation chunks of the float kernels (512 elements of 4 bytes),
  // so the order of additions is the same as in one call over the block.
  const int64_t sub = kSubBlockBytes / 4;  // == kFloatChunk
  for (int64_t s0 = 0; s0 < n_all; s0 += sub) {
    const int64_t k = k0 + s0, n = std::min(sub, n_all - s0);
    for (int64_t r = pb.r_lo; r <= pb.r_hi; ++r) {
      for (int64_t c = pb.first_col(r); c <= pb.c_hi; c += kernels::kMaxTile) {
        const int ny = static_cast<int>(std::min<int64_t>(kernels::kMaxTile, pb.c_hi - c + 1));
        for (int j = 0; j < ny; ++j) ys[j] = fb.at(c + j, k);
        const int64_t slot = (r - pb.r_lo) * pb.row_stride + (c - pb.c_lo);
        ks.floating(elem, mode, fb.at(r, k), ys, ny, n, sq + slot, lin + slot);
      }
    }
  }
}

// The mode and element type of one op call, and the block-level entry point for both
// accumulator types (int64 for uint8 frames, double for floating frames).
struct PairSummer {
  Distance mode;
  Elem elem;
  void operator()(const FrameBytes& fb, bool x_minus_y, const PairBlock& pb, int64_t k0, int64_t n,
                  int64_t* sq, int64_t* lin) const {
    block_pairs_u8(fb, mode, x_minus_y, pb, k0, n, sq, lin);
  }
  void operator()(const FrameBytes& fb, bool, const PairBlock& pb, int64_t k0, int64_t n, double* sq,
                  double* lin) const {
    block_pairs_float(fb, mode, elem, pb, k0, n, sq, lin);
  }
};

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

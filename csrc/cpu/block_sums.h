// The CPU work decomposition shared by both ops: every clip's frames are cut into blocks of
// kBlockBytes, and each frame's block is read from memory once and reused from the caches
// across its pairs. uint8 frames with the l2 and centered distances are read one frame at a
// time, each block as one sequential run, and each frame's dot products are taken against
// the frames read just before it (block_pairs_u8_streamed); the wrap-around and floating
// kernels cut the block into sub-blocks summed for all of the clip's pairs at once. A work
// item is one block of one clip, or (reselect, with enough clips) all blocks of one clip in
// order; items are handed out dynamically (for_each_dynamic). Per-block partial sums are
// added up in block order, which makes the results independent of the number of threads
// and of the kind of work item.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "cpu/pair_sums.h"
#include "plan.h"

namespace gamdss::cpu {

constexpr int64_t kBlockBytes = 32768;
// Within a block, the wrap-around and floating kernels sum all pairs over sub-blocks of this
// many bytes, so that the sub-blocks of every frame involved stay in L1 across pairs.
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
// uint8 l2 / centered go through exact integer Gram terms (|x|^2 + |y|^2 - 2 x.y and the
// difference of sums, see kernels::GramU8); the integers are exact, so the sums are the
// same as from direct differences.
struct PairBlock {
  int64_t r_lo, r_hi, c_lo, c_hi;
  bool upper;
  int64_t row_stride;
  int64_t first_col(int64_t r) const { return upper ? std::max(c_lo, r) : c_lo; }
};

// Software prefetch: while one sub-block is summed, sub-block + kPrefetchSubBlocks of every
// frame involved is requested. The frames are read as many concurrent streams (one per
// frame, ~150 KB apart for 3x224x224 uint8), each crossing a 4 KiB page every two
// sub-blocks, where hardware prefetchers stop and must retrain; a software prefetch also
// walks the page table ahead of the loads.
constexpr int64_t kPrefetchSubBlocks = 2;
constexpr int64_t kCacheLine = 64;

inline void prefetch_range(const char* p, int64_t bytes) {
  // Locality 2 (prefetcht1): into L2 where the CPU distinguishes the levels (Intel), so the
  // lines ahead do not evict the sub-block being summed from L1; AMD Zen treats it as t0.
  for (int64_t off = 0; off < bytes; off += kCacheLine) __builtin_prefetch(p + off, 0, 2);
}

// Prefetches elements [k, k + n) of `frame`, clipped to the frame's `frame_numel` elements
// (never reads: prefetches do not fault, but nothing past the frame is requested).
inline void prefetch_frame(const FrameBytes& fb, int64_t frame, int64_t k, int64_t n, int64_t frame_numel) {
  const int64_t end = std::min(k + n, frame_numel);
  if (end > k) prefetch_range(fb.at(frame, k), (end - k) * fb.elem_size);
}

// uint8 l2 / centered over elements [k0, k0 + n): every frame of the block's pairs is read
// once, as one sequential run: the rows in increasing order, then the columns that are not
// rows. Each frame's dot products are taken as it is read, against the frames it pairs with
// that were read before it (then in L1 or L2; every pair has one), so memory sees one
// stream at a time instead of all the frames interleaved. A frame in both ranges pairs with
// itself at distance zero. A pair whose column is also a row read earlier needs `upper` (the
// rise) or a single row (the fall, the distance curves), as every caller has.
inline void block_pairs_u8_streamed(const FrameBytes& fb, Distance mode, const PairBlock& pb, int64_t k0,
                                    int64_t n, int64_t* sq, int64_t* lin) {
  const kernels::KernelSet& ks = kernels::active_kernels();
  const bool centered = mode == Distance::kCentered;
  TORCH_CHECK(pb.upper || pb.r_lo == pb.r_hi, "gamdss: internal error: a block of pairs below the diagonal with ",
              pb.r_hi - pb.r_lo + 1, " rows");
  const int64_t lo = std::min(pb.r_lo, pb.c_lo), hi = std::max(pb.r_hi, pb.c_hi);
  std::vector<int64_t> sum(hi - lo + 1), sumsq(hi - lo + 1);  // over [k0, k0 + n), of frames read
  std::vector<const uint8_t*> xs;
  std::vector<int64_t> x_sums, partner, dots;
  auto at = [&](int64_t f) { return reinterpret_cast<const uint8_t*>(fb.at(f, k0)); };
  auto is_row = [&](int64_t f) { return f >= pb.r_lo && f <= pb.r_hi; };
  auto is_col = [&](int64_t f) { return f >= pb.c_lo && f <= pb.c_hi; };
  auto valid = [&](int64_t r, int64_t c) { return is_row(r) && is_col(c) && (!pb.upper || c >= r); };
  auto add_pair = [&](int64_t r, int64_t c, int64_t dot) {
    const int64_t slot = (r - pb.r_lo) * pb.row_stride + (c - pb.c_lo);
    sq[slot] += sumsq[r - lo] + sumsq[c - lo] - 2 * dot;
    if (centered) lin[slot] += sum[c - lo] - sum[r - lo];
  };
  auto read = [&](int64_t t) {
    // Partners: the rows it pairs with as a column, read before it (rows are read first:
    // those before it, or all of them when t is not a row).
    xs.clear();
    x_sums.clear();
    partner.clear();
    const int64_t p_hi = is_row(t) ? t - 1 : pb.r_hi;
    for (int64_t r = pb.r_lo; r <= p_hi; ++r) {
      if (valid(r, t)) {
        xs.push_back(at(r));
        x_sums.push_back(sum[r - lo]);
        partner.push_back(r);
      }
    }
    dots.assign(xs.size(), 0);
    ks.u8_stream(at(t), xs.data(), x_sums.data(), static_cast<int>(xs.size()), n, centered, &sum[t - lo],
                 &sumsq[t - lo], dots.data());
    for (size_t i = 0; i < partner.size(); ++i) add_pair(partner[i], t, dots[i]);
  };
  for (int64_t t = pb.r_lo; t <= pb.r_hi; ++t) read(t);
  for (int64_t t = pb.c_lo; t <= pb.c_hi; ++t) {
    if (!is_row(t)) read(t);
  }
}

inline void block_pairs_u8_wrapped(const FrameBytes& fb, bool x_minus_y, const PairBlock& pb, int64_t k0,
                                   int64_t n_all, int64_t frame_numel, int64_t* sq) {
  const kernels::KernelSet& ks = kernels::active_kernels();
  auto ptr = [&](int64_t frame, int64_t k) { return reinterpret_cast<const uint8_t*>(fb.at(frame, k)); };
  const uint8_t* ys[kernels::kMaxTile];
  for (int64_t s0 = 0; s0 < n_all; s0 += kSubBlockBytes) {
    const int64_t k = k0 + s0, n = std::min(kSubBlockBytes, n_all - s0);
    const int64_t kp = k + kPrefetchSubBlocks * kSubBlockBytes;
    for (int64_t f = pb.r_lo; f <= pb.r_hi; ++f) prefetch_frame(fb, f, kp, kSubBlockBytes, frame_numel);
    for (int64_t f = pb.c_lo; f <= pb.c_hi; ++f) {
      if (f < pb.r_lo || f > pb.r_hi) prefetch_frame(fb, f, kp, kSubBlockBytes, frame_numel);
    }
    for (int64_t r = pb.r_lo; r <= pb.r_hi; ++r) {
      for (int64_t c = pb.first_col(r); c <= pb.c_hi; c += kernels::kMaxTile) {
        const int ny = static_cast<int>(std::min<int64_t>(kernels::kMaxTile, pb.c_hi - c + 1));
        for (int j = 0; j < ny; ++j) ys[j] = ptr(c + j, k);
        ks.u8_wrapped(x_minus_y, ptr(r, k), ys, ny, n, sq + (r - pb.r_lo) * pb.row_stride + (c - pb.c_lo));
      }
    }
  }
}

inline void block_pairs_u8(const FrameBytes& fb, Distance mode, bool x_minus_y, const PairBlock& pb,
                           int64_t k0, int64_t n, int64_t frame_numel, int64_t* sq, int64_t* lin) {
  if (mode == Distance::kWrapped) {
    block_pairs_u8_wrapped(fb, x_minus_y, pb, k0, n, frame_numel, sq);
  } else {
    block_pairs_u8_streamed(fb, mode, pb, k0, n, sq, lin);
  }
}

inline void block_pairs_float(const FrameBytes& fb, Distance mode, Elem elem, const PairBlock& pb,
                              int64_t k0, int64_t n_all, int64_t frame_numel, double* sq, double* lin) {
  const kernels::KernelSet& ks = kernels::active_kernels();
  const void* ys[kernels::kMaxTile];
  // Sub-blocks are whole summation chunks of the float kernels (512 elements of 4 bytes),
  // so the order of additions is the same as in one call over the block.
  const int64_t sub = kSubBlockBytes / 4;  // == kFloatChunk
  for (int64_t s0 = 0; s0 < n_all; s0 += sub) {
    const int64_t k = k0 + s0, n = std::min(sub, n_all - s0);
    const int64_t kp = k + kPrefetchSubBlocks * sub;
    for (int64_t f = pb.r_lo; f <= pb.r_hi; ++f) prefetch_frame(fb, f, kp, sub, frame_numel);
    for (int64_t f = pb.c_lo; f <= pb.c_hi; ++f) {
      if (f < pb.r_lo || f > pb.r_hi) prefetch_frame(fb, f, kp, sub, frame_numel);
    }
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
  int64_t frame_numel;
  void operator()(const FrameBytes& fb, bool x_minus_y, const PairBlock& pb, int64_t k0, int64_t n,
                  int64_t* sq, int64_t* lin) const {
    block_pairs_u8(fb, mode, x_minus_y, pb, k0, n, frame_numel, sq, lin);
  }
  void operator()(const FrameBytes& fb, bool, const PairBlock& pb, int64_t k0, int64_t n, double* sq,
                  double* lin) const {
    block_pairs_float(fb, mode, elem, pb, k0, n, frame_numel, sq, lin);
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

// Each thread of an op gets at least this many bytes of frames to read, and an op with less
// runs on the calling thread alone: starting a thread costs tens of microseconds on an idle
// machine, and on a busy one a started thread may wait milliseconds for a core.
constexpr int64_t kMinBytesPerThread = int64_t{1} << 20;

// Threads for an op that reads `bytes`: at most at::get_num_threads().
inline int64_t threads_for_bytes(int64_t bytes) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), bytes / kMinBytesPerThread));
}

namespace detail {
// Items handed out one at a time from a shared counter. The calling thread works too and
// waits only for the items that were claimed, never for a helper to start: on a small
// machine shared with other work a helper may get no core for many milliseconds (a
// fork-join region would wait that long), and then the calling thread does its items. A
// helper that starts after all items are claimed touches nothing but this state, which
// it co-owns.
struct DynamicJob {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  int64_t n = 0;
  const std::function<void(int64_t)>* f = nullptr;  // valid while done < n
  std::mutex m;
  std::condition_variable cv;
  std::exception_ptr error;

  void work() {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        (*f)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lock(m);
        cv.notify_all();
      }
    }
  }
};
}  // namespace detail

// Calls f(i) for every i in [0, n) on the calling thread and up to threads - 1 helper
// threads started for this call.
template <typename F>
void for_each_dynamic(int64_t n, int64_t threads, const F& f) {
  const int64_t helpers = std::min(threads, n) - 1;
  if (helpers <= 0 || at::in_parallel_region()) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  const std::function<void(int64_t)> fn = [&f](int64_t i) { f(i); };
  auto job = std::make_shared<detail::DynamicJob>();
  job->n = n;
  job->f = &fn;
  for (int64_t h = 0; h < helpers; ++h) {
    try {
      std::thread([job] { job->work(); }).detach();
    } catch (const std::system_error&) {
      break;  // no thread to be had: the calling thread does the items
    }
  }
  job->work();
  {
    std::unique_lock<std::mutex> lock(job->m);
    job->cv.wait(lock, [&] { return job->done.load() == n; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

// Calls f(clip, k0, n, block) for every (clip, block) pair on up to `threads` threads.
template <typename F>
void for_each_clip_block(int64_t n_clips, const Blocks& blocks, int64_t frame_numel, int64_t threads,
                         const F& f) {
  for_each_dynamic(n_clips * blocks.count, threads, [&](int64_t item) {
    const int64_t c = item / blocks.count;
    const int64_t blk = item % blocks.count;
    const auto [k0, n] = blocks.range(blk, frame_numel);
    f(c, k0, n, blk);
  });
}

}  // namespace gamdss::cpu

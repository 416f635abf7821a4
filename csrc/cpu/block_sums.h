// The CPU work decomposition shared by both ops: every clip's frames are cut into blocks of
// kBlockBytes, and each frame's block is read from memory once and reused from the caches
// across its pairs. uint8 frames with the l2 and centered distances are read one frame at a
// time, each piece as one sequential run, and each frame's dot products are taken against
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

#include "cpu/l2_cache.h"
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
// difference of sums, see kernels::StreamU8); the integers are exact, so the sums are the
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

// uint8 l2 / centered over elements [k0, k0 + n), in pieces (stream_piece_bytes).
// In each piece every frame of the block's pairs is read once, as one sequential run: the
// rows in increasing order, then the columns that are not rows. Each frame's dot products
// are taken as it is read, against the rows it pairs with, read just before it (then in L1
// or L2), so memory sees one or two streams at a time instead of all the frames
// interleaved. Reads with no partner (the rows, mostly) only take moments: they are done
// for the next piece as companions of this piece's reads with partners, whose arithmetic
// then overlaps their memory reads. With a kernel set that has u8_dots_columns (AVX-512, AVX2),
// each frame's read takes its moments only, and the dots of all of the piece's columns are
// taken after its reads, in one call per group of columns with the same rows, which keeps
// the rows in L1 across the columns (Zen 4: cold calls 3-7% faster than the dots in each
// read). A frame in both ranges pairs with itself at distance zero. A pair whose column is
// also a row read earlier needs `upper` (the rise) or a single row (the fall, the distance
// curves), as every caller has.
constexpr int64_t kStreamPieceBytes = 32768;
// With u8_dots_columns, the pieces of a whole-frame call are longer where few frames are
// read: as long as the frames read stay within one core's L2 per piece (at most this many
// bytes), split evenly. Longer runs read faster, and the dots still find the piece in L2.
// On Zen 4 (L2 1 MiB; (a) and (b): 11 frames, two pieces of 74 KiB) cold calls were 2-15%
// faster than with 32 KiB pieces in seven of eight comparisons in one process (two of them
// with a 92 + 55 KiB split), 3% slower in one. Whole frames in one piece (the dots then
// partly from L3) were no faster than this, and 30% slower on the wide workload (47
// frames, which keeps 32 KiB pieces here).
constexpr int64_t kStreamPieceBudgetBytes = int64_t{1} << 20;
// The budget where the L2 size is unknown: Zen 3's L2.
constexpr int64_t kUnknownL2Bytes = int64_t{1} << 19;

// min(this core's L2 size, kStreamPieceBudgetBytes).
inline int64_t stream_piece_budget_bytes() {
  const int64_t l2 = l2_cache_bytes();
  return l2 > 0 ? std::min(l2, kStreamPieceBudgetBytes) : kUnknownL2Bytes;
}

// Bytes per piece for block_pairs_u8_streamed over n elements with `reads` frames read.
inline int64_t stream_piece_bytes(int64_t n, int64_t reads, bool columns_apart) {
  // A (clip, block) item's block (n < 4 pieces) still gets four pieces.
  if (n < 4 * kStreamPieceBytes) return std::max<int64_t>(2048, (n / 4 + 31) / 32 * 32);
  if (!columns_apart) return kStreamPieceBytes;
  const int64_t cap =
      std::max(kStreamPieceBytes, stream_piece_budget_bytes() / std::max<int64_t>(1, reads) / 2048 * 2048);
  const int64_t pieces = (n + cap - 1) / cap;
  return std::min(n, ((n + pieces - 1) / pieces + 2047) / 2048 * 2048);
}

inline void block_pairs_u8_streamed(const FrameBytes& fb, Distance mode, const PairBlock& pb, int64_t k0,
                                    int64_t n, int64_t* sq, int64_t* lin) {
  TORCH_CHECK(pb.upper || pb.r_lo == pb.r_hi, "gamdss: internal error: a block of pairs below the diagonal with ",
              pb.r_hi - pb.r_lo + 1, " rows");
  const kernels::KernelSet& ks = kernels::active_kernels();
  const bool centered = mode == Distance::kCentered;
  const int64_t lo = std::min(pb.r_lo, pb.c_lo), hi = std::max(pb.r_hi, pb.c_hi);
  const int64_t n_cols = pb.c_hi - pb.c_lo + 1;
  auto is_row = [&](int64_t f) { return f >= pb.r_lo && f <= pb.r_hi; };
  auto is_col = [&](int64_t f) { return f >= pb.c_lo && f <= pb.c_hi; };

  // Reads of one piece, in order, with their partners: rows r_lo..last.
  struct Read {
    int64_t frame, last;
  };
  std::vector<Read> light, heavy;
  auto add_read = [&](int64_t t) {
    int64_t last = pb.r_lo - 1;
    if (is_col(t)) {
      last = is_row(t) ? t - 1 : pb.r_hi;
      if (pb.upper) last = std::min(last, t);
    }
    (last < pb.r_lo ? light : heavy).push_back({t, last});
  };
  for (int64_t t = pb.r_lo; t <= pb.r_hi; ++t) add_read(t);
  for (int64_t t = pb.c_lo; t <= pb.c_hi; ++t) {
    if (!is_row(t)) add_read(t);
  }
  // Light reads depend on nothing; heavy reads (all of them columns) keep their order, as
  // a heavy row is a partner of later reads.

  // Moments over the whole range, and over the current and next piece (partners' sums).
  std::vector<kernels::U8Moments> total(hi - lo + 1), cur(hi - lo + 1), next(hi - lo + 1);
  std::vector<int64_t> pair_dot((pb.r_hi - pb.r_lo + 1) * n_cols, 0), x_sums, dots;
  std::vector<const uint8_t*> xs;
  auto at = [&](int64_t f, int64_t k) { return reinterpret_cast<const uint8_t*>(fb.at(f, k)); };
  auto keep = [&](int64_t f, const kernels::U8Moments& m, std::vector<kernels::U8Moments>& piece_m) {
    piece_m[f - lo] = m;
    total[f - lo].sum += m.sum;
    total[f - lo].sumsq += m.sumsq;
  };
  // xs and x_sums: rows r_lo..last at element k, with their sums over the current piece.
  auto partners = [&](int64_t last, int64_t k) {
    xs.clear();
    x_sums.clear();
    for (int64_t r = pb.r_lo; r <= last; ++r) {
      xs.push_back(at(r, k));
      x_sums.push_back(cur[r - lo].sum);
    }
  };
  // Reads y over [k, k + len) of the current piece against its partners; z (a light read
  // of the next piece, at next_k, or null) is its companion.
  // With ks.u8_dots_columns the call takes no partners (moments only): dots_of_piece takes
  // the dots of the piece's columns once its reads are done.
  const bool columns_apart = ks.u8_dots_columns != nullptr;
  auto read = [&](const Read& y, const Read* z, int64_t k, int64_t len, int64_t next_k) {
    partners(columns_apart ? pb.r_lo - 1 : y.last, k);
    dots.assign(xs.size(), 0);
    kernels::U8Moments ym, zm;
    ks.u8_stream(at(y.frame, k), xs.data(), x_sums.data(), static_cast<int>(xs.size()),
                 z != nullptr ? at(z->frame, next_k) : nullptr, len, centered, &ym, &zm, dots.data());
    keep(y.frame, ym, cur);
    if (z != nullptr) keep(z->frame, zm, next);
    for (size_t i = 0; i < dots.size(); ++i) pair_dot[i * n_cols + (y.frame - pb.c_lo)] += dots[i];
  };
  // A light read alone, into `into`.
  auto read_light = [&](const Read& y, int64_t k, int64_t len, std::vector<kernels::U8Moments>& into) {
    kernels::U8Moments ym, unused;
    ks.u8_stream(at(y.frame, k), nullptr, nullptr, 0, nullptr, len, centered, &ym, &unused, nullptr);
    keep(y.frame, ym, into);
  };

  // The dots of the piece [k, k + len), after its reads: consecutive heavy reads with the
  // same partners (all of them, but where the windows overlap) in one call.
  std::vector<const uint8_t*> ys;
  auto dots_of_piece = [&](int64_t k, int64_t len) {
    for (size_t g = 0, e = 0; g < heavy.size(); g = e) {
      for (e = g; e < heavy.size() && heavy[e].last == heavy[g].last; ++e) {
      }
      const int nx = static_cast<int>(heavy[g].last - pb.r_lo + 1);
      ys.clear();
      for (size_t h = g; h < e; ++h) ys.push_back(at(heavy[h].frame, k));
      partners(heavy[g].last, k);
      dots.assign(ys.size() * nx, 0);
      ks.u8_dots_columns(ys.data(), static_cast<int>(ys.size()), xs.data(), x_sums.data(), nx, len, dots.data());
      for (size_t j = 0; j < ys.size(); ++j) {
        for (int i = 0; i < nx; ++i) pair_dot[i * n_cols + (heavy[g + j].frame - pb.c_lo)] += dots[j * nx + i];
      }
    }
  };

  const int64_t piece = stream_piece_bytes(n, static_cast<int64_t>(light.size() + heavy.size()), columns_apart);
  for (const Read& r : light) read_light(r, k0, std::min(piece, n), cur);
  for (int64_t s0 = 0; s0 < n; s0 += piece) {
    const int64_t k = k0 + s0, len = std::min(piece, n - s0);
    const int64_t next_len = std::min(piece, n - s0 - len);
    size_t z = 0;
    for (const Read& r : heavy) {
      // A companion covers the same number of elements (not the shorter last piece).
      const bool companion = next_len == len && z < light.size();
      read(r, companion ? &light[z] : nullptr, k, len, k + len);
      z += companion;
    }
    for (; next_len > 0 && z < light.size(); ++z) read_light(light[z], k + len, next_len, next);
    if (columns_apart) dots_of_piece(k, len);
    std::swap(cur, next);
  }

  for (const Read& r : heavy) {
    const int64_t c = r.frame;
    for (int64_t row = pb.r_lo; row <= r.last; ++row) {
      const int64_t slot = (row - pb.r_lo) * pb.row_stride + (c - pb.c_lo);
      sq[slot] += total[row - lo].sumsq + total[c - lo].sumsq - 2 * pair_dot[(row - pb.r_lo) * n_cols + (c - pb.c_lo)];
      if (centered) lin[slot] += total[c - lo].sum - total[row - lo].sum;
    }
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
  // uint8 l2 / centered: exact integer sums, streamed (block_pairs_u8_streamed), so one
  // call may cover whole frames: its pieces then pipeline across the frame.
  bool whole_frames() const { return elem == Elem::kU8 && mode != Distance::kWrapped; }
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
// threads started for this call. Helpers kept asleep between calls were slower on a 2-vCPU
// Zen 4 (2026-12-02): a woken helper was placed on the calling thread's CPU, the two shared
// it while the other CPU stayed idle, and the caller started its items 4-6 ms late in half
// of the calls of a 4 ms workload; a new thread goes to the idle CPU.
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
    } catch (const std::exception&) {
      // No thread to be had (std::system_error) or no memory for its state (std::bad_alloc):
      // the calling thread does the items.
      break;
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

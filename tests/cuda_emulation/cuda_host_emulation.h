// Host emulation of the CUDA subset that csrc/cuda/*.cu use, so that g++ can compile the
// very same kernel source for the CPU (`g++ -x c++ -include cuda_host_emulation.h`) and
// tests/test_cuda_emulation.py can run it against the reference.
//
// Execution model
// ---------------
// A launch runs its blocks one after another. The threads of a block are cooperative fibers
// on one OS thread (own stack each, switched by a small context switch), so a thread runs
// until it reaches a barrier and then yields:
//   * __syncthreads(): every thread of the block must arrive at the same call site before
//     any continues (a thread that has exited, or waits elsewhere, is reported as a
//     divergent barrier / deadlock, as the GPU would hang or be undefined);
//   * warp operations (__shfl_*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp):
//     the 32 lanes of the warp write their value, meet at a warp barrier, then read their
//     source lane's value, so lanes exchange values at the same point as on the GPU; all
//     lanes must take part with the same operation at the same call site (full masks only).
//   * __shared__ variables are function-local statics: one copy per kernel instantiation,
//     shared by the threads of the running block, holding the previous block's values when
//     a block starts (the GPU leaves shared memory uninitialised; a read before the block's
//     own write sees another block's data and gives a wrong result).
//   * atomics are plain read-modify-writes (only one fiber runs at a time).
// Global memory: buffers from gamdss_emu::device_alloc sit flush against a PROT_NONE guard
// page (any access past their end faults, and the fault names the buffer), and every __ldg
// checks that the whole load lies inside one such buffer and is naturally aligned (a
// misaligned uint4 load is an error on the GPU).
// Arithmetic: the _rn intrinsics are IEEE operations in the named precision (compile with
// -ffp-contract=off), fma is std::fma, the SIMD byte intrinsics are written out per byte.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#define GAMDSS_HOST_EMULATION 1

// ---------------------------------------------------------------------------------------
// Qualifiers.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static

// ---------------------------------------------------------------------------------------
// Runtime API subset.
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaError_t : int { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunchFailure = 719 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
constexpr int warpSize = 32;

namespace gamdss_emu {

[[noreturn]] inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void fail(const char* fmt, ...) {
  std::fprintf(stderr, "cuda host emulation: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::_Exit(70);
}

// ---------------------------------------------------------------------------------------
// "Device" memory: guarded host buffers.
struct Buffer {
  const char* name;
  unsigned char* data;  // first byte
  size_t size;          // bytes
  unsigned char* map;   // mapping (guard, data pages, guard)
  size_t map_size;
};
inline std::vector<Buffer>& buffers() {
  static std::vector<Buffer> b;
  return b;
}

// `size` bytes whose end is `align`-aligned and touches the upper guard page when size is
// a multiple of `align`; `offset` (< align) shifts the start forward (misaligned frames).
inline void* device_alloc(size_t size, const char* name, size_t align = 16, size_t offset = 0) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t span = (size + offset + align - 1) / align * align;
  const size_t data_pages = (span + page - 1) / page * page;
  const size_t map_size = data_pages + 2 * page;
  void* m = mmap(nullptr, map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) fail("mmap of %zu bytes for %s failed", map_size, name);
  unsigned char* map = static_cast<unsigned char*>(m);
  if (mprotect(map + page, data_pages, PROT_READ | PROT_WRITE) != 0) fail("mprotect failed");
  unsigned char* end = map + page + data_pages;
  unsigned char* data = end - span + offset;
  buffers().push_back(Buffer{name, data, size, map, map_size});
  return data;
}

inline void device_free_all() {
  for (const Buffer& b : buffers()) munmap(b.map, b.map_size);
  buffers().clear();
}

inline const Buffer* buffer_of(const void* p, size_t n) {
  const auto* a = static_cast<const unsigned char*>(p);
  for (const Buffer& b : buffers()) {
    if (a >= b.data && a + n <= b.data + b.size) return &b;
  }
  return nullptr;
}

// A fault on a guard page: name the buffer, then exit (the test reports it).
inline void on_fault(int sig, siginfo_t* info, void*) {
  const auto* a = static_cast<const unsigned char*>(info->si_addr);
  char msg[256];
  int n = std::snprintf(msg, sizeof msg, "cuda host emulation: signal %d at address %p", sig, info->si_addr);
  for (const Buffer& b : buffers()) {
    if (a >= b.map && a < b.map + b.map_size) {
      const long off = static_cast<long>(a - b.data);
      n += std::snprintf(msg + n, sizeof msg - n, ": out of bounds of device buffer '%s' (%zu bytes) at byte offset %ld",
                         b.name, b.size, off);
      break;
    }
  }
  n += std::snprintf(msg + n, sizeof msg - n, "\n");
  if (write(2, msg, static_cast<size_t>(n)) < 0) {
  }
  _exit(71);
}

inline void install_fault_handler() {
  static bool done = false;
  if (done) return;
  done = true;
  static std::vector<unsigned char> alt(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

// ---------------------------------------------------------------------------------------
// Fibers.
// Where a barrier or warp operation is in the source (the call site's line and column:
// unlike a return address, the same for every copy the optimiser makes of the call).
struct Site {
  const char* file = nullptr;
  unsigned line = 0, column = 0;
  static Site of(const std::source_location& l) { return Site{l.file_name(), l.line(), l.column()}; }
  bool operator==(const Site& o) const {
    return line == o.line && column == o.column && (file == o.file || std::strcmp(file, o.file) == 0);
  }
};

enum class Wait : int { kNone = 0, kBlock = 1, kWarp = 2 };
enum class State : int { kRunnable = 0, kBlocked = 1, kDone = 2 };

struct Fiber {
  void* sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t ctx;
#endif
  unsigned char* stack = nullptr;
  State state = State::kDone;
  Wait wait = Wait::kNone;
  uint3 tid{0, 0, 0};
  unsigned lane = 0, warp = 0;
  int parity = 0;          // warp exchange buffer used by this lane's next warp operation
  uint64_t warp_ops = 0;   // warp operations done in this block
};

struct WarpState {
  int arrived = 0;
  int size = 32;
  Site site;  // call site of the operation being gathered
  unsigned char slot[2][32][8];
  int slot_bytes[2][32];
};

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kMaxThreads = 1024;

struct Runtime {
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  int n_threads = 0;
  int current = -1;
  int alive = 0;
  int block_arrived = 0;
  Site block_site;
  void* sched_sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t sched_ctx;
#endif
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
  uint3 thread_idx{0, 0, 0}, block_idx{0, 0, 0};
  dim3 block_dim, grid_dim;
  uint64_t blocks_run = 0, launches = 0;
};
inline Runtime& rt() {
  static Runtime r;
  return r;
}

}  // namespace gamdss_emu

#if defined(__x86_64__)
// Saves the callee-saved registers and the stack pointer of the running context into
// *save_sp and resumes the context whose stack pointer is next_sp (System V x86-64).
extern "C" void gamdss_emu_switch(void** save_sp, void* next_sp);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".weak gamdss_emu_switch\n"
    ".type gamdss_emu_switch,@function\n"
    "gamdss_emu_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size gamdss_emu_switch, .-gamdss_emu_switch\n");
#endif

namespace gamdss_emu {

inline void enter_fiber(int i) {
  Runtime& r = rt();
  Fiber& f = r.fibers[i];
  r.current = i;
  r.thread_idx = f.tid;
#if defined(__x86_64__)
  gamdss_emu_switch(&r.sched_sp, f.sp);
#else
  swapcontext(&r.sched_ctx, &f.ctx);
#endif
  r.current = -1;
}

inline void leave_fiber() {
  Runtime& r = rt();
  Fiber& f = r.fibers[r.current];
#if defined(__x86_64__)
  gamdss_emu_switch(&f.sp, r.sched_sp);
#else
  swapcontext(&f.ctx, &r.sched_ctx);
#endif
  // Resumed by enter_fiber, which has set current and thread_idx.
}

[[noreturn]] inline void fiber_main() {
  Runtime& r = rt();
  r.body(r.body_arg);
  Fiber& f = r.fibers[r.current];
  f.state = State::kDone;
  --r.alive;
  leave_fiber();
  fail("a finished fiber was resumed");
}

#if !defined(__x86_64__)
inline void fiber_trampoline() { fiber_main(); }
#endif

inline void prepare_fiber(Fiber& f) {
  if (f.stack == nullptr) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("mmap of a fiber stack failed");
    mprotect(m, page, PROT_NONE);  // stack overflow faults
    f.stack = static_cast<unsigned char*>(m) + page;
  }
#if defined(__x86_64__)
  // Top of stack: [dummy return address][fiber_main][6 callee-saved registers], so that
  // gamdss_emu_switch pops the registers and "returns" into fiber_main with the stack
  // aligned as after a call.
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + kStackBytes) & ~uintptr_t{15};
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;
  *--sp = reinterpret_cast<void*>(&fiber_main);
  for (int k = 0; k < 6; ++k) *--sp = nullptr;
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, &fiber_trampoline, 0);
#endif
}

// Blocks the running fiber until released (its state is set back to runnable).
inline void block_current(Wait w) {
  Runtime& r = rt();
  Fiber& f = r.fibers[r.current];
  f.state = State::kBlocked;
  f.wait = w;
  leave_fiber();
}

inline Fiber& current_fiber() {
  Runtime& r = rt();
  if (r.current < 0) fail("a device function was called outside a kernel");
  return r.fibers[r.current];
}

// __syncthreads at call site `site`.
inline void block_barrier(Site site) {
  Runtime& r = rt();
  (void)current_fiber();
  if (r.block_arrived == 0) {
    r.block_site = site;
  } else if (!(r.block_site == site)) {
    fail("__syncthreads reached at two different places (%s:%u and %s:%u) by threads of block %u (divergent "
         "barrier)", r.block_site.file, r.block_site.line, site.file, site.line, r.block_idx.x);
  }
  if (++r.block_arrived == r.n_threads) {
    r.block_arrived = 0;
    for (Fiber& f : r.fibers) {
      if (f.state == State::kBlocked && f.wait == Wait::kBlock) {
        f.state = State::kRunnable;
        f.wait = Wait::kNone;
      }
    }
    return;
  }
  block_current(Wait::kBlock);
}

inline void check_full_mask(unsigned mask, const char* op) {
  if (mask != 0xffffffffu) fail("%s with mask 0x%08x: only full-warp masks are emulated", op, mask);
  if (rt().n_threads % 32 != 0) fail("%s in a block of %d threads (not whole warps)", op, rt().n_threads);
}

// One warp exchange: every lane deposits `bytes` bytes of `value`, the lanes meet, and
// the caller reads its source lane's deposit with warp_read. Returns the buffer parity.
inline int warp_exchange(const void* value, int bytes, Site site, const char* op) {
  Runtime& r = rt();
  Fiber& f = current_fiber();
  WarpState& w = r.warps[f.warp];
  const int p = f.parity;
  f.parity ^= 1;
  ++f.warp_ops;
  std::memcpy(w.slot[p][f.lane], value, static_cast<size_t>(bytes));
  w.slot_bytes[p][f.lane] = bytes;
  if (w.arrived == 0) {
    w.site = site;
  } else if (!(w.site == site)) {
    fail("%s: lanes of warp %u in block %u reached different warp operations (%s:%u and %s:%u; divergent warp)",
         op, f.warp, r.block_idx.x, w.site.file, w.site.line, site.file, site.line);
  }
  if (++w.arrived == w.size) {
    w.arrived = 0;
    const int first = static_cast<int>(f.warp) * 32;
    for (int l = 0; l < w.size; ++l) {
      Fiber& g = r.fibers[first + l];
      if (g.warp_ops != f.warp_ops) fail("%s: lanes of warp %u are out of step", op, f.warp);
      if (g.state == State::kBlocked && g.wait == Wait::kWarp) {
        g.state = State::kRunnable;
        g.wait = Wait::kNone;
      }
    }
  } else {
    block_current(Wait::kWarp);
  }
  return p;
}

inline void warp_read(int parity, unsigned src_lane, void* out, int bytes) {
  Runtime& r = rt();
  Fiber& f = current_fiber();
  WarpState& w = r.warps[f.warp];
  if (w.slot_bytes[parity][src_lane] != bytes) fail("warp exchange of values of different sizes");
  std::memcpy(out, w.slot[parity][src_lane], static_cast<size_t>(bytes));
}

template <typename T>
T shuffle(unsigned mask, T var, Site site, const char* op, unsigned (*src_of)(unsigned, int, int), int arg,
          int width) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 4- or 8-byte values");
  check_full_mask(mask, op);
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) fail("%s: width %d is not a power of 2 <= 32", op, width);
  const unsigned lane = current_fiber().lane;
  const int p = warp_exchange(&var, sizeof(T), site, op);
  T out;
  warp_read(p, src_of(lane, arg, width), &out, sizeof(T));
  return out;
}

inline unsigned src_xor(unsigned lane, int mask, int width) {
  const unsigned src = lane ^ static_cast<unsigned>(mask);
  // Lanes may read earlier groups of `width` lanes, not later ones (their own value then).
  return (src / width > lane / width) ? lane : (src & 31u);
}
inline unsigned src_down(unsigned lane, int delta, int width) {
  return (lane % width) + static_cast<unsigned>(delta) >= static_cast<unsigned>(width) ? lane : lane + delta;
}
inline unsigned src_up(unsigned lane, int delta, int width) {
  return static_cast<int>(lane % width) - delta < 0 ? lane : lane - delta;
}
inline unsigned src_idx(unsigned lane, int src, int width) {
  return (lane / width) * width + (static_cast<unsigned>(src) % width);
}

// Ballot over the warp: bit l of the result is lane l's predicate.
inline unsigned ballot(unsigned mask, int pred, Site site, const char* op) {
  check_full_mask(mask, op);
  const int v = pred != 0;
  const int p = warp_exchange(&v, sizeof v, site, op);
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l) {
    int x;
    warp_read(p, l, &x, sizeof x);
    bits |= static_cast<unsigned>(x != 0) << l;
  }
  return bits;
}

template <typename T>
T check_load(const T* p) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) != 0) {
    fail("__ldg of %zu bytes at %p: misaligned (block %u, thread %u)", sizeof(T), static_cast<const void*>(p),
         rt().block_idx.x, rt().thread_idx.x);
  }
  if (buffer_of(p, sizeof(T)) == nullptr) {
    fail("__ldg of %zu bytes at %p: outside every device buffer (block %u, thread %u)", sizeof(T),
         static_cast<const void*>(p), rt().block_idx.x, rt().thread_idx.x);
  }
  return *p;
}

// ---------------------------------------------------------------------------------------
// Launch: blocks in order, threads as fibers.
inline void run_grid(dim3 grid, dim3 block, void (*body)(void*), void* arg) {
  Runtime& r = rt();
  if (r.current >= 0) fail("kernel launch from device code is not emulated");
  if (grid.y != 1 || grid.z != 1 || block.y != 1 || block.z != 1) fail("only 1-D grids and blocks are emulated");
  const int n = static_cast<int>(block.x);
  if (n < 1 || n > kMaxThreads) fail("block of %d threads", n);
  if (grid.x < 1) fail("empty grid");
  install_fault_handler();
  ++r.launches;
  r.n_threads = n;
  r.fibers.resize(static_cast<size_t>(n));
  r.warps.assign(static_cast<size_t>((n + 31) / 32), WarpState{});
  for (size_t w = 0; w < r.warps.size(); ++w) {
    r.warps[w].size = std::min(32, n - static_cast<int>(w) * 32);
  }
  r.body = body;
  r.body_arg = arg;
  r.block_dim = block;
  r.grid_dim = grid;
  for (unsigned b = 0; b < grid.x; ++b) {
    r.block_idx = uint3{b, 0, 0};
    for (int i = 0; i < n; ++i) {
      Fiber& f = r.fibers[static_cast<size_t>(i)];
      prepare_fiber(f);
      f.state = State::kRunnable;
      f.wait = Wait::kNone;
      f.tid = uint3{static_cast<unsigned>(i), 0, 0};
      f.lane = static_cast<unsigned>(i) % 32;
      f.warp = static_cast<unsigned>(i) / 32;
      f.parity = 0;
      f.warp_ops = 0;
    }
    r.alive = n;
    r.block_arrived = 0;
    for (WarpState& w : r.warps) w.arrived = 0;
    while (r.alive > 0) {
      bool progressed = false;
      for (int i = 0; i < n; ++i) {
        if (r.fibers[static_cast<size_t>(i)].state == State::kRunnable) {
          enter_fiber(i);
          progressed = true;
        }
      }
      if (!progressed) {
        int at_block = 0, at_warp = 0, done = 0;
        for (const Fiber& f : r.fibers) {
          at_block += f.state == State::kBlocked && f.wait == Wait::kBlock;
          at_warp += f.state == State::kBlocked && f.wait == Wait::kWarp;
          done += f.state == State::kDone;
        }
        fail("deadlock in block %u: %d threads wait at __syncthreads, %d at a warp operation, %d have exited "
             "(a barrier or warp operation not reached by every thread)",
             b, at_block, at_warp, done);
      }
    }
    ++r.blocks_run;
  }
}

template <typename... P>
struct BoundKernel {
  dim3 grid, block;
  void (*fn)(P...);
  template <typename... A>
  void operator()(A&&... args) const {
    // Arguments are copied once, as a launch does; each thread gets its own copy of the
    // by-value parameters.
    struct Call {
      void (*fn)(P...);
      std::tuple<std::decay_t<P>...> args;
    } call{fn, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    run_grid(grid, block, [](void* p) {
      auto* c = static_cast<Call*>(p);
      std::apply(c->fn, c->args);
    }, &call);
  }
};

struct Launch {
  dim3 grid, block;
  Launch(dim3 g, dim3 b, cudaStream_t) : grid(g), block(b) {}
  template <typename... P>
  BoundKernel<P...> kernel(void (*fn)(P...)) const {
    return BoundKernel<P...>{grid, block, fn};
  }
};

// ---------------------------------------------------------------------------------------
// Bit casts and conversions.
template <typename To, typename From>
inline To bit_cast(const From& v) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &v, sizeof t);
  return t;
}

// IEEE binary16 bits to float (exact for every value).
inline float half_to_float(unsigned short h) {
  const unsigned sign = static_cast<unsigned>(h >> 15) << 31;
  const unsigned exp = (h >> 10) & 0x1fu;
  const unsigned mant = h & 0x3ffu;
  unsigned bits;
  if (exp == 0) {
    const float mag = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal, exact
    bits = bit_cast<unsigned>(mag) | sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u);  // inf / quiet NaN
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  return bit_cast<float>(bits);
}

}  // namespace gamdss_emu

#define GAMDSS_LAUNCH(grid, block, stream, ...) ::gamdss_emu::Launch((grid), (block), (stream)).kernel(__VA_ARGS__)

// Built-in variables (of the running fiber).
#define threadIdx (::gamdss_emu::rt().thread_idx)
#define blockIdx (::gamdss_emu::rt().block_idx)
#define blockDim (::gamdss_emu::rt().block_dim)
#define gridDim (::gamdss_emu::rt().grid_dim)

// ---------------------------------------------------------------------------------------
// Synchronisation and warp intrinsics. The call site (a defaulted source_location argument)
// tells barriers and warp operations at different places apart.
using gamdss_emu_loc = std::source_location;
#define GAMDSS_EMU_HERE const gamdss_emu_loc& loc = gamdss_emu_loc::current()
#define GAMDSS_EMU_SITE ::gamdss_emu::Site::of(loc)
inline void __syncthreads(GAMDSS_EMU_HERE) { ::gamdss_emu::block_barrier(GAMDSS_EMU_SITE); }
inline void __syncwarp(unsigned mask = 0xffffffffu, GAMDSS_EMU_HERE) {
  ::gamdss_emu::check_full_mask(mask, "__syncwarp");
  const int zero = 0;
  (void)::gamdss_emu::warp_exchange(&zero, sizeof zero, GAMDSS_EMU_SITE, "__syncwarp");
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::shuffle(mask, var, GAMDSS_EMU_SITE, "__shfl_xor_sync", &::gamdss_emu::src_xor, lane_mask,
                               width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::shuffle(mask, var, GAMDSS_EMU_SITE, "__shfl_down_sync", &::gamdss_emu::src_down,
                               static_cast<int>(delta), width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::shuffle(mask, var, GAMDSS_EMU_SITE, "__shfl_up_sync", &::gamdss_emu::src_up,
                               static_cast<int>(delta), width);
}
template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::shuffle(mask, var, GAMDSS_EMU_SITE, "__shfl_sync", &::gamdss_emu::src_idx, src_lane, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::ballot(mask, pred, GAMDSS_EMU_SITE, "__ballot_sync");
}
inline int __any_sync(unsigned mask, int pred, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::ballot(mask, pred, GAMDSS_EMU_SITE, "__any_sync") != 0u;
}
inline int __all_sync(unsigned mask, int pred, GAMDSS_EMU_HERE) {
  return ::gamdss_emu::ballot(mask, pred, GAMDSS_EMU_SITE, "__all_sync") == 0xffffffffu;
}

// ---------------------------------------------------------------------------------------
// Loads through the read-only path: checked (inside a device buffer, naturally aligned).
inline unsigned char __ldg(const unsigned char* p) { return ::gamdss_emu::check_load(p); }
inline unsigned short __ldg(const unsigned short* p) { return ::gamdss_emu::check_load(p); }
inline unsigned int __ldg(const unsigned int* p) { return ::gamdss_emu::check_load(p); }
inline unsigned long long __ldg(const unsigned long long* p) { return ::gamdss_emu::check_load(p); }
inline int __ldg(const int* p) { return ::gamdss_emu::check_load(p); }
inline long long __ldg(const long long* p) { return ::gamdss_emu::check_load(p); }
inline float __ldg(const float* p) { return ::gamdss_emu::check_load(p); }
inline double __ldg(const double* p) { return ::gamdss_emu::check_load(p); }
inline uint4 __ldg(const uint4* p) { return ::gamdss_emu::check_load(p); }

// ---------------------------------------------------------------------------------------
// Atomics (one fiber runs at a time, so a plain read-modify-write is atomic).
template <typename T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
T atomicSub(T* p, T v) {
  const T old = *p;
  *p = old - v;
  return old;
}
template <typename T>
T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old > v ? old : v;
  return old;
}
template <typename T>
T atomicMin(T* p, T v) {
  const T old = *p;
  *p = old < v ? old : v;
  return old;
}
template <typename T>
T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <typename T>
T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}
template <typename T>
T atomicOr(T* p, T v) {
  const T old = *p;
  *p = old | v;
  return old;
}
template <typename T>
T atomicAnd(T* p, T v) {
  const T old = *p;
  *p = old & v;
  return old;
}

// ---------------------------------------------------------------------------------------
// Bit casts, conversions, correctly rounded arithmetic.
struct __half {
  unsigned short bits;
};
inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline float __half2float(__half h) { return ::gamdss_emu::half_to_float(h.bits); }
inline float __uint_as_float(unsigned u) { return ::gamdss_emu::bit_cast<float>(u); }
inline unsigned __float_as_uint(float f) { return ::gamdss_emu::bit_cast<unsigned>(f); }
inline float __int_as_float(int u) { return ::gamdss_emu::bit_cast<float>(u); }
inline double __longlong_as_double(long long v) { return ::gamdss_emu::bit_cast<double>(v); }
inline long long __double_as_longlong(double d) { return ::gamdss_emu::bit_cast<long long>(d); }

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
// CUDA's math functions are in the global namespace.
using std::isfinite;
using std::isinf;
using std::isnan;

// ---------------------------------------------------------------------------------------
// SIMD within a word, byte lanes.
inline unsigned __vabsdiffu4(unsigned a, unsigned b) {
  unsigned r = 0;
  for (int k = 0; k < 4; ++k) {
    const int x = static_cast<int>((a >> (8 * k)) & 0xffu);
    const int y = static_cast<int>((b >> (8 * k)) & 0xffu);
    r |= static_cast<unsigned>(x > y ? x - y : y - x) << (8 * k);
  }
  return r;
}
inline unsigned __vsadu4(unsigned a, unsigned b) {
  unsigned s = 0;
  for (int k = 0; k < 4; ++k) {
    const int x = static_cast<int>((a >> (8 * k)) & 0xffu);
    const int y = static_cast<int>((b >> (8 * k)) & 0xffu);
    s += static_cast<unsigned>(x > y ? x - y : y - x);
  }
  return s;
}
// Dot product of the four byte lanes plus c, modulo 2^32 (unsigned bytes).
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  for (int k = 0; k < 4; ++k) c += ((a >> (8 * k)) & 0xffu) * ((b >> (8 * k)) & 0xffu);
  return c;
}
// Signed bytes.
inline int __dp4a(int a, int b, int c) {
  uint32_t acc = static_cast<uint32_t>(c);
  for (int k = 0; k < 4; ++k) {
    const int x = static_cast<int8_t>(static_cast<uint32_t>(a) >> (8 * k));
    const int y = static_cast<int8_t>(static_cast<uint32_t>(b) >> (8 * k));
    acc += static_cast<uint32_t>(x * y);
  }
  return static_cast<int>(acc);
}

// Checks of the host emulation itself (tests/test_cuda_emulation.py): warp intrinsics and
// barriers give the GPU's results, the half conversion is exact, and out-of-bounds or
// misaligned accesses and divergent barriers are reported instead of passing silently.
//
//   driver --selftest intrinsics|half|oob-load|misaligned-load|oob-store|divergent-barrier|divergent-shuffle
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr int kThreads = 64;  // two warps
constexpr int kChecks = 16;   // values written per thread by the intrinsics kernel

__global__ void intrinsics_kernel(int64_t* out, unsigned long long* counter) {
  __shared__ int ring[kThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  int64_t* o = out + (static_cast<int64_t>(blockIdx.x) * kThreads + tid) * kChecks;
  const int64_t v = 1000 * warp + 3 * lane + 1;
  o[0] = __shfl_xor_sync(0xffffffffu, v, 1);
  o[1] = __shfl_xor_sync(0xffffffffu, v, 16);
  o[2] = __shfl_down_sync(0xffffffffu, v, 5);
  o[3] = __shfl_down_sync(0xffffffffu, v, 3, 8);
  o[4] = __shfl_up_sync(0xffffffffu, v, 2);
  o[5] = __shfl_sync(0xffffffffu, v, 7, 16);
  o[6] = static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<double>(v) + 0.5, 6) * 2.0);
  o[7] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  o[8] = __any_sync(0xffffffffu, lane == 31 && warp == 1);
  o[9] = __all_sync(0xffffffffu, lane < 32);
  // Butterfly sum over the warp, as the kernels reduce.
  int64_t s = v;
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  o[10] = s;
  ring[tid] = tid * 7;
  __syncthreads();
  o[11] = ring[(tid + 1) % kThreads];
  __syncthreads();
  ring[tid] = -tid;
  __syncthreads();
  o[12] = ring[kThreads - 1 - tid];
  o[13] = static_cast<int64_t>(blockIdx.x) * 1000 + gridDim.x * 10 + blockDim.x;
  atomicAdd(counter, 1ull + tid);
  o[14] = __dp4a(0xff01807fu, 0xff02037fu, 5u);
  o[15] = __vabsdiffu4(0x00ff1080u, 0xff001180u);
}

int64_t expected(int block, int tid, int k) {
  const int lane = tid & 31, warp = tid >> 5;
  auto val = [&](int l) { return static_cast<int64_t>(1000 * warp + 3 * l + 1); };
  switch (k) {
    case 0: return val(lane ^ 1);
    case 1: return val(lane ^ 16);
    case 2: return lane + 5 < 32 ? val(lane + 5) : val(lane);
    case 3: return (lane % 8) + 3 < 8 ? val(lane + 3) : val(lane);
    case 4: return lane >= 2 ? val(lane - 2) : val(lane);
    case 5: return val((lane / 16) * 16 + 7);
    case 6: return static_cast<int64_t>((static_cast<double>(val(lane ^ 6)) + 0.5) * 2.0);
    case 7: {
      int64_t bits = 0;
      for (int l = 0; l < 32; ++l) bits |= static_cast<int64_t>(l % 3 == 0) << l;
      return bits;
    }
    case 8: return 1 * (warp == 1);
    case 9: return 1;
    case 10: {
      int64_t s = 0;
      for (int l = 0; l < 32; ++l) s += val(l);
      return s;
    }
    case 11: return ((tid + 1) % kThreads) * 7;
    case 12: return -(kThreads - 1 - tid);
    case 13: return static_cast<int64_t>(block) * 1000 + 3 * 10 + kThreads;
    case 14: return 5 + 0xff * 0xff + 0x01 * 0x02 + 0x80 * 0x03 + 0x7f * 0x7f;
    case 15: return 0xffff0100;
  }
  return -1;
}

int run_intrinsics() {
  const int blocks = 3;
  auto* out = static_cast<int64_t*>(gamdss_emu::device_alloc(sizeof(int64_t) * blocks * kThreads * kChecks, "out", 8));
  auto* counter = static_cast<unsigned long long*>(gamdss_emu::device_alloc(8, "counter", 8));
  *counter = 0;
  GAMDSS_LAUNCH(blocks, kThreads, nullptr, intrinsics_kernel)(out, counter);
  int bad = 0;
  for (int b = 0; b < blocks; ++b) {
    for (int t = 0; t < kThreads; ++t) {
      for (int k = 0; k < kChecks; ++k) {
        const int64_t got = out[(b * kThreads + t) * kChecks + k];
        if (got != expected(b, t, k) && bad++ < 10) {
          std::printf("block %d thread %d check %d: got %" PRId64 ", expected %" PRId64 "\n", b, t, k, got,
                      expected(b, t, k));
        }
      }
    }
  }
  const unsigned long long want = blocks * (kThreads + kThreads * (kThreads - 1) / 2);
  if (*counter != want) {
    std::printf("atomicAdd counter %llu, expected %llu\n", *counter, want);
    ++bad;
  }
  // __dp4a on signed bytes.
  if (__dp4a(static_cast<int>(0xff7f8001u), static_cast<int>(0x02ff7f03u), 10) != 10 - 2 - 127 - 128 * 127 + 3) {
    std::printf("signed __dp4a\n");
    ++bad;
  }
  if (bad == 0) std::printf("ok\n");
  return bad == 0 ? 0 : 1;
}

__global__ void oob_load_kernel(const unsigned* p, int n, unsigned* out) {
  if (threadIdx.x == 0) out[0] = __ldg(p + n);  // one past the end
}
__global__ void misaligned_kernel(const unsigned char* p, uint4* out) {
  if (threadIdx.x == 0) out[0] = __ldg(reinterpret_cast<const uint4*>(p + 4));
}
__global__ void oob_store_kernel(double* out, int n) {
  if (threadIdx.x == 31) out[n] = 1.0;  // one past the end
}
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
    out[threadIdx.x] = 1;
  }
}
__global__ void divergent_shuffle_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if ((threadIdx.x & 31) < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

}  // namespace

int emulation_selftest(const char* mode) {
  if (std::strcmp(mode, "intrinsics") == 0) return run_intrinsics();
  if (std::strcmp(mode, "half") == 0) {
    for (unsigned h = 0; h < 65536; ++h) {
      const unsigned bits = __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(h))));
      std::printf("%02x%02x%02x%02x", bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, bits >> 24);
    }
    std::printf("\n");
    return 0;
  }
  auto* words = static_cast<unsigned*>(gamdss_emu::device_alloc(sizeof(unsigned) * 64, "words", 16));
  std::memset(words, 0, sizeof(unsigned) * 64);
  auto* out = static_cast<double*>(gamdss_emu::device_alloc(sizeof(double) * 512, "out", 8));
  if (std::strcmp(mode, "oob-load") == 0) {
    GAMDSS_LAUNCH(1, 32, nullptr, oob_load_kernel)(words, 64, reinterpret_cast<unsigned*>(out));
  } else if (std::strcmp(mode, "misaligned-load") == 0) {
    GAMDSS_LAUNCH(1, 32, nullptr, misaligned_kernel)(reinterpret_cast<const unsigned char*>(words),
                                                     reinterpret_cast<uint4*>(out));
  } else if (std::strcmp(mode, "oob-store") == 0) {
    GAMDSS_LAUNCH(1, 32, nullptr, oob_store_kernel)(out, 512);
  } else if (std::strcmp(mode, "divergent-barrier") == 0) {
    GAMDSS_LAUNCH(1, 64, nullptr, divergent_barrier_kernel)(reinterpret_cast<int*>(out));
  } else if (std::strcmp(mode, "divergent-shuffle") == 0) {
    GAMDSS_LAUNCH(1, 64, nullptr, divergent_shuffle_kernel)(reinterpret_cast<int*>(out));
  } else {
    std::fprintf(stderr, "unknown selftest %s\n", mode);
    return 2;
  }
  std::printf("no fault detected\n");
  return 0;
}

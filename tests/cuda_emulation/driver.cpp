// Host driver of the emulated CUDA kernels (tests/test_cuda_emulation.py): reads cases,
// lays them out in guarded "device" buffers, calls the same host launch functions that the
// torch launcher csrc/cuda/ops_cuda.cpp calls (cuda/launch.h), and writes the outputs.
//
//   driver CASES_FILE OUTPUT_FILE
//   driver --selftest MODE          (checks of the emulation itself: selftest.cpp)
//
// A case (all integers little-endian int64):
//   header[16]: magic 0x47414d4453454d55, op (0 reselect, 1 frame_distances), elem (Elem),
//               distance (Distance), n_frames, numel (D), stride (elements from frame i to
//               i + 1, >= D), base_offset (bytes of misalignment of frame 0 from 16),
//               n_clips, table_o, table_a, table_f, max_length, 0, 0, 0
//   clips[n_clips][11]: start, length, onset, apex, offset, o_lo, o_hi, a_lo, a_hi, f_lo,
//               f_hi (frame_distances: the reference frame in apex, windows unused)
//   frame bytes: ((n_frames - 1) * stride + D) * element size (nothing when n_frames is 0)
// Output per case: reselect: onset, apex, offset [n] int64, rise and fall distances [n]
// float64, rise table [n * table_o * table_a] and fall table [n * table_f] float64;
// frame_distances: [n * max_length] float64.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda/launch.h"

namespace {

using gamdss::ClipPlan;
using gamdss::Distance;
using gamdss::Elem;
namespace gpu = gamdss::gpu;

constexpr int64_t kMagic = 0x47414d4453454d55LL;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "driver: %s\n", what);
  std::exit(2);
}

void read_exact(FILE* f, void* p, size_t n) {
  if (n > 0 && std::fread(p, 1, n, f) != n) die("truncated case file");
}

template <typename T>
T* device_array(int64_t n, const char* name, unsigned char fill) {
  const size_t bytes = static_cast<size_t>(n > 0 ? n : 0) * sizeof(T);
  void* p = gamdss_emu::device_alloc(bytes, name, alignof(T) < 8 ? 8 : alignof(T));
  std::memset(p, fill, bytes);
  return static_cast<T*>(p);
}

template <typename T>
void write_array(FILE* f, const T* p, int64_t n) {
  if (n > 0 && std::fwrite(p, sizeof(T), static_cast<size_t>(n), f) != static_cast<size_t>(n)) {
    die("cannot write the output");
  }
}

void fill_nan(double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

int emulation_selftest(const char* mode);  // selftest.cpp

int main(int argc, char** argv) {
  if (argc != 3) die("usage: driver CASES_FILE OUTPUT_FILE | driver --selftest MODE");
  if (std::strcmp(argv[1], "--selftest") == 0) return emulation_selftest(argv[2]);
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  if (in == nullptr || out == nullptr) die("cannot open the case or output file");
  int64_t h[16];
  while (std::fread(h, sizeof(int64_t), 16, in) == 16) {
    if (h[0] != kMagic) die("bad case header");
    const int64_t op = h[1];
    const Elem elem = static_cast<Elem>(h[2]);
    const Distance dist = static_cast<Distance>(h[3]);
    const int64_t n_frames = h[4], numel = h[5], stride = h[6], base_offset = h[7];
    const int64_t n_clips = h[8], table_o = h[9], table_a = h[10], table_f = h[11], max_length = h[12];
    if (numel < 1 || stride < numel || n_clips < 1 || base_offset < 0 || base_offset >= 16) die("bad case sizes");

    std::vector<int64_t> raw(static_cast<size_t>(n_clips * 11));
    read_exact(in, raw.data(), raw.size() * sizeof(int64_t));
    std::vector<ClipPlan> plan(static_cast<size_t>(n_clips));
    for (int64_t c = 0; c < n_clips; ++c) {
      const int64_t* r = &raw[static_cast<size_t>(c * 11)];
      ClipPlan& p = plan[static_cast<size_t>(c)];
      p.start = r[0];
      p.length = r[1];
      p.n_o = r[2];
      p.n_a = r[3];
      p.n_f = r[4];
      p.o_lo = r[5];
      p.o_hi = r[6];
      p.a_lo = r[7];
      p.a_hi = r[8];
      p.f_lo = r[9];
      p.f_hi = r[10];
    }

    // Frames: exactly the bytes a strided [n_frames, D] view spans, flush against the
    // guard page; `base_offset` bytes past a 16-byte boundary.
    const int64_t es = gpu::elem_size(elem);
    const int64_t frame_bytes = n_frames > 0 ? ((n_frames - 1) * stride + numel) * es : 0;
    auto* frames = static_cast<unsigned char*>(
        gamdss_emu::device_alloc(static_cast<size_t>(frame_bytes), "frames", 16, static_cast<size_t>(base_offset)));
    read_exact(in, frames, static_cast<size_t>(frame_bytes));

    const gpu::FrameArgs fa = gpu::make_frame_args(frames, stride, numel, elem);
    std::vector<gpu::DevClip> host_clips(static_cast<size_t>(n_clips));
    const gpu::SlotTotals totals = gpu::pack_plan(plan.data(), n_clips, host_clips.data());
    auto* clips = device_array<gpu::DevClip>(n_clips, "clips", 0);
    std::memcpy(clips, host_clips.data(), host_clips.size() * sizeof(gpu::DevClip));

    int err = 0;
    if (op == 0) {
      // Scratch and outputs start as 0xff bytes (NaN / -1): anything the kernels should
      // write and do not shows up as a wrong value.
      const int64_t ws_bytes = gpu::reselect_workspace_bytes(fa, totals, dist);
      gpu::ReselectLaunch a{};
      a.frames = fa;
      a.elem = elem;
      a.distance = dist;
      a.clips = clips;
      a.n_clips = n_clips;
      a.totals = totals;
      a.workspace = device_array<int64_t>(ws_bytes / 8, "workspace", 0xff);
      a.onset = device_array<int64_t>(n_clips, "onset", 0xff);
      a.apex = device_array<int64_t>(n_clips, "apex", 0xff);
      a.offset = device_array<int64_t>(n_clips, "offset", 0xff);
      a.rise_distance = device_array<double>(n_clips, "rise_distance", 0xff);
      a.fall_distance = device_array<double>(n_clips, "fall_distance", 0xff);
      const bool tables = table_o > 0 || table_a > 0 || table_f > 0;
      if (tables) {
        a.rise_table = device_array<double>(n_clips * table_o * table_a, "rise_table", 0xff);
        a.fall_table = device_array<double>(n_clips * table_f, "fall_table", 0xff);
        fill_nan(a.rise_table, n_clips * table_o * table_a);
        fill_nan(a.fall_table, n_clips * table_f);
      }
      a.table_o = table_o;
      a.table_a = table_a;
      a.table_f = table_f;
      a.stream = nullptr;
      err = gpu::launch_reselect(a);
      write_array(out, a.onset, n_clips);
      write_array(out, a.apex, n_clips);
      write_array(out, a.offset, n_clips);
      write_array(out, a.rise_distance, n_clips);
      write_array(out, a.fall_distance, n_clips);
      if (tables) {
        write_array(out, a.rise_table, n_clips * table_o * table_a);
        write_array(out, a.fall_table, n_clips * table_f);
      }
    } else if (op == 1) {
      const int64_t ws_bytes = gpu::curve_workspace_bytes(fa, totals, dist);
      gpu::CurveLaunch a{};
      a.frames = fa;
      a.elem = elem;
      a.distance = dist;
      a.clips = clips;
      a.n_clips = n_clips;
      a.totals = totals;
      a.workspace = device_array<int64_t>(ws_bytes / 8, "workspace", 0xff);
      a.out = device_array<double>(n_clips * max_length, "out", 0xff);
      fill_nan(a.out, n_clips * max_length);
      a.max_length = max_length;
      a.stream = nullptr;
      err = gpu::launch_frame_distances(a);
      write_array(out, a.out, n_clips * max_length);
    } else {
      die("unknown op");
    }
    if (err != 0) {
      std::fprintf(stderr, "driver: launch returned CUDA error %d\n", err);
      return 3;
    }
    gamdss_emu::device_free_all();
  }
  std::fclose(out);
  std::fclose(in);
  std::fprintf(stderr, "driver: %llu launches, %llu blocks\n",
               static_cast<unsigned long long>(gamdss_emu::rt().launches),
               static_cast<unsigned long long>(gamdss_emu::rt().blocks_run));
  return 0;
}

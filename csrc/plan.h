// Host-side validation and planning shared by the CPU and CUDA kernels of
// gamdss::reselect and gamdss::frame_distances.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>
#include <tuple>
#include <vector>

#include "clip_plan.h"
#include "distance.h"

namespace gamdss {

Distance parse_distance(std::string_view name, at::ScalarType dtype);
// The Elem of a supported frame dtype (check_frames has rejected the others).
Elem elem_of(at::ScalarType dtype);

// How the kernels address frames: frame i starts at `data + i * stride0` (elements) and
// its `frame_numel` elements are dense in memory in an order that is the same for every
// frame (row-major, channels-last, any permutation). `holder` keeps the memory alive; it
// is a contiguous copy only when the input was not dense per frame.
struct FrameView {
  at::Tensor holder;
  int64_t num_frames = 0;
  int64_t stride0 = 0;
  int64_t frame_numel = 0;
};

void check_frames(const at::Tensor& frames, const char* op);
// Also checks that uint8 frames are small enough for the exact centered key (distance
// kCentered), naming `op` in the error.
FrameView make_frame_view(const at::Tensor& frames, Distance dist, const char* op);

// The outputs of gamdss::reselect on the frames' device: indices int64 [B], distances
// float64 [B], NaN-filled tables [B, table_o, table_a] and [B, table_f] (or [B, 0, 0] and
// [B, 0] when every table size is 0).
using ReselectTuple =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
struct ReselectOutputs {
  at::Tensor onset, apex, offset, rise_distance, fall_distance, rise_table, fall_table;
  bool has_tables() const { return fall_table.size(1) > 0 || rise_table.size(1) > 0; }
  ReselectTuple as_tuple() const {
    return {onset, apex, offset, rise_distance, fall_distance, rise_table, fall_table};
  }
};
ReselectOutputs allocate_reselect_outputs(const at::Tensor& frames, int64_t n_clips,
                                          int64_t table_o, int64_t table_a, int64_t table_f);

// Validates starts [B], lengths [B], annotations [B,3] and windows [B,6] (int64, on the
// CPU or the frames' device: they are read on the host) against the frames, naming the clip and values of
// anything invalid. Table sizes must be 0 (no tables) or cover every clip's windows.
std::vector<ClipPlan> make_reselect_plan(const at::Tensor& frames, const at::Tensor& starts,
                                         const at::Tensor& lengths, const at::Tensor& annotations,
                                         const at::Tensor& windows, int64_t table_o,
                                         int64_t table_a, int64_t table_f);

// Validates starts, lengths, reference [B] and max_length for frame_distances; returns the clips with
// the reference frame stored in n_a.
std::vector<ClipPlan> make_curve_plan(const at::Tensor& frames, const at::Tensor& starts,
                                      const at::Tensor& lengths, const at::Tensor& reference,
                                      int64_t max_length);

// uint8 centered keys D * sum(d^2) - (sum d)^2 are exact in int64 up to this frame size.
constexpr int64_t kMaxCenteredU8FrameNumel = 11909000;

}  // namespace gamdss

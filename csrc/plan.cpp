#include "plan.h"

#include <ATen/ops/contiguous.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace gamdss {
namespace {

bool is_supported_dtype(at::ScalarType t) {
  switch (t) {
    case at::kByte:
    case at::kHalf:
    case at::kBFloat16:
    case at::kFloat:
    case at::kDouble:
      return true;
    default:
      return false;
  }
}

// Copies a small integer tensor to host int64 values, checking its shape.
std::vector<int64_t> host_values(const at::Tensor& t, const char* name, int64_t rows,
                                 int64_t cols) {
  TORCH_CHECK(t.scalar_type() == at::kLong, "gamdss: ", name, " must be int64, got ",
              t.scalar_type());
  if (cols == 0) {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == rows, "gamdss: ", name, " must have shape [",
                rows, "], got ", t.sizes());
  } else {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols, "gamdss: ", name,
                " must have shape [", rows, ", ", cols, "], got ", t.sizes());
  }
  at::Tensor h = t.to(at::kCPU).contiguous();
  const int64_t* p = h.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + h.numel());
}

std::vector<ClipPlan> clips_from_layout(const at::Tensor& frames, const at::Tensor& starts,
                                        const at::Tensor& lengths) {
  TORCH_CHECK(starts.dim() == 1, "gamdss: starts must be 1-D [B], got ", starts.sizes());
  const int64_t batch = starts.size(0);
  const auto s = host_values(starts, "starts", batch, 0);
  const auto l = host_values(lengths, "lengths", batch, 0);
  const int64_t n = frames.size(0);
  std::vector<ClipPlan> plan(batch);
  for (int64_t b = 0; b < batch; ++b) {
    TORCH_CHECK(l[b] >= 1, "gamdss: clip ", b, " has length ", l[b], "; a clip needs at least 1 frame");
    TORCH_CHECK(s[b] >= 0 && s[b] <= n - l[b], "gamdss: clip ", b, " spans frames [", s[b], ", ",
                s[b] + l[b], ") but frames has ", n, " frames along dim 0");
    plan[b].start = s[b];
    plan[b].length = l[b];
  }
  return plan;
}

void check_window(int64_t b, const char* which, int64_t lo, int64_t hi, int64_t length) {
  TORCH_CHECK(0 <= lo && lo <= hi && hi <= length - 1, "gamdss: clip ", b, ": ", which,
              " window [", lo, ", ", hi, "] is not inside [0, ", length - 1,
              "] with lo <= hi");
}

}  // namespace

Distance parse_distance(std::string_view name, at::ScalarType dtype) {
  Distance d;
  if (name == "l2") {
    d = Distance::kL2;
  } else if (name == "centered") {
    d = Distance::kCentered;
  } else if (name == "released_uint8") {
    d = Distance::kWrapped;
    TORCH_CHECK(dtype == at::kByte, "gamdss: distance 'released_uint8' reproduces a uint8 "
                "wrap-around and needs uint8 frames, got ", dtype);
  } else {
    TORCH_CHECK(false, "gamdss: unknown distance '", std::string(name),
                "'; expected 'l2', 'centered' or 'released_uint8'");
  }
  return d;
}

Elem elem_of(at::ScalarType dtype) {
  switch (dtype) {
    case at::kByte: return Elem::kU8;
    case at::kHalf: return Elem::kF16;
    case at::kBFloat16: return Elem::kBF16;
    case at::kFloat: return Elem::kF32;
    default: return Elem::kF64;
  }
}

void check_frames(const at::Tensor& frames, const char* op) {
  TORCH_CHECK(frames.dim() >= 2, "gamdss.", op, ": frames must be [N, ...] with at least one "
              "dimension per frame, got shape ", frames.sizes());
  TORCH_CHECK(is_supported_dtype(frames.scalar_type()), "gamdss.", op, ": frames dtype ",
              frames.scalar_type(), " is not supported; use uint8, float16, bfloat16, float32 or float64");
  TORCH_CHECK(frames.size(0) == 0 || frames[0].numel() > 0, "gamdss.", op,
              ": frames have no elements (shape ", frames.sizes(), ")");
}

FrameView make_frame_view(const at::Tensor& frames, Distance dist, const char* op) {
  FrameView v;
  v.num_frames = frames.size(0);
  v.frame_numel = 1;
  for (int64_t d = 1; d < frames.dim(); ++d) v.frame_numel *= frames.size(d);
  // Dense per frame: the trailing dimensions, ordered by stride, tile the frame exactly.
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of non-trivial dims
  for (int64_t d = 1; d < frames.dim(); ++d) {
    if (frames.size(d) != 1) dims.emplace_back(frames.stride(d), frames.size(d));
  }
  std::sort(dims.begin(), dims.end());
  bool dense = true;
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) {
      dense = false;
      break;
    }
    expected *= size;
  }
  v.holder = dense ? frames : frames.contiguous();
  v.stride0 = v.num_frames > 1 ? v.holder.stride(0) : v.frame_numel;
  TORCH_CHECK(dist != Distance::kCentered || frames.scalar_type() != at::kByte ||
                  v.frame_numel <= kMaxCenteredU8FrameNumel,
              "gamdss.", op, ": uint8 frames of ", v.frame_numel, " elements exceed the ",
              kMaxCenteredU8FrameNumel, " for which the exact centered distance fits in 64 bits");
  return v;
}

ReselectOutputs allocate_reselect_outputs(const at::Tensor& frames, int64_t n_clips,
                                          int64_t table_o, int64_t table_a, int64_t table_f) {
  const auto i64 = frames.options().dtype(at::kLong);
  const auto f64 = frames.options().dtype(at::kDouble);
  const bool tables = table_o > 0 || table_a > 0 || table_f > 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ReselectOutputs out;
  out.onset = at::empty({n_clips}, i64);
  out.apex = at::empty({n_clips}, i64);
  out.offset = at::empty({n_clips}, i64);
  out.rise_distance = at::empty({n_clips}, f64);
  out.fall_distance = at::empty({n_clips}, f64);
  out.rise_table = tables ? at::full({n_clips, table_o, table_a}, nan, f64) : at::empty({n_clips, 0, 0}, f64);
  out.fall_table = tables ? at::full({n_clips, table_f}, nan, f64) : at::empty({n_clips, 0}, f64);
  return out;
}

std::vector<ClipPlan> make_reselect_plan(const at::Tensor& frames, const at::Tensor& starts,
                                         const at::Tensor& lengths, const at::Tensor& annotations,
                                         const at::Tensor& windows, int64_t table_o,
                                         int64_t table_a, int64_t table_f) {
  auto plan = clips_from_layout(frames, starts, lengths);
  const int64_t batch = static_cast<int64_t>(plan.size());
  const auto ann = host_values(annotations, "annotations", batch, 3);
  const auto win = host_values(windows, "windows", batch, 6);
  TORCH_CHECK(table_o >= 0 && table_a >= 0 && table_f >= 0,
              "gamdss.reselect: table sizes must be >= 0, got (", table_o, ", ", table_a, ", ", table_f, ")");
  const bool tables = table_o > 0 || table_a > 0 || table_f > 0;
  for (int64_t b = 0; b < batch; ++b) {
    ClipPlan& c = plan[b];
    c.n_o = ann[3 * b];
    c.n_a = ann[3 * b + 1];
    c.n_f = ann[3 * b + 2];
    TORCH_CHECK(0 <= c.n_o && c.n_o <= c.n_a && c.n_a <= c.n_f && c.n_f <= c.length - 1,
                "gamdss.reselect: clip ", b, ": annotation onset=", c.n_o, ", apex=", c.n_a,
                ", offset=", c.n_f, " violates 0 <= onset <= apex <= offset <= T-1 with T=", c.length);
    c.o_lo = win[6 * b];
    c.o_hi = win[6 * b + 1];
    c.a_lo = win[6 * b + 2];
    c.a_hi = win[6 * b + 3];
    c.f_lo = win[6 * b + 4];
    c.f_hi = win[6 * b + 5];
    check_window(b, "onset", c.o_lo, c.o_hi, c.length);
    check_window(b, "apex", c.a_lo, c.a_hi, c.length);
    check_window(b, "offset", c.f_lo, c.f_hi, c.length);
    TORCH_CHECK(c.o_lo <= c.a_hi, "gamdss.reselect: clip ", b, ": no rise pair with onset <= apex: "
                "onset window starts at ", c.o_lo, " after the apex window ends at ", c.a_hi);
    if (tables) {
      TORCH_CHECK(table_o >= c.n_onsets() && table_a >= c.n_apexes() && table_f >= c.n_offsets(),
                  "gamdss.reselect: table sizes (", table_o, ", ", table_a, ", ", table_f,
                  ") are smaller than clip ", b, "'s windows (", c.n_onsets(), ", ",
                  c.n_apexes(), ", ", c.n_offsets(), ")");
    }
  }
  return plan;
}

std::vector<ClipPlan> make_curve_plan(const at::Tensor& frames, const at::Tensor& starts,
                                      const at::Tensor& lengths, const at::Tensor& reference,
                                      int64_t max_length) {
  TORCH_CHECK(max_length >= 0, "gamdss.frame_distances: max_length must be >= 0, got ", max_length);
  auto plan = clips_from_layout(frames, starts, lengths);
  const int64_t batch = static_cast<int64_t>(plan.size());
  const auto ref = host_values(reference, "reference", batch, 0);
  for (int64_t b = 0; b < batch; ++b) {
    ClipPlan& c = plan[b];
    TORCH_CHECK(0 <= ref[b] && ref[b] < c.length, "gamdss.frame_distances: clip ", b,
                ": reference frame ", ref[b], " is outside [0, ", c.length - 1, "]");
    TORCH_CHECK(c.length <= max_length, "gamdss.frame_distances: clip ", b, " has ", c.length,
                " frames, more than max_length=", max_length);
    c.n_a = ref[b];
  }
  return plan;
}

}  // namespace gamdss

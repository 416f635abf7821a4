// One clip's frames and candidate windows, as the kernels see them. Free of torch headers so
// that the CUDA kernel files (and their host emulation in tests/cuda_emulation/) can use it.
#pragma once

#include <cstdint>

namespace gamdss {

// All clip-relative and inclusive.
struct ClipPlan {
  int64_t start = 0;   // first frame of the clip in the packed frames (dim 0)
  int64_t length = 0;  // number of frames T
  int64_t n_o = 0, n_a = 0, n_f = 0;  // annotated onset, apex, offset
  int64_t o_lo = 0, o_hi = 0, a_lo = 0, a_hi = 0, f_lo = 0, f_hi = 0;
  int64_t n_onsets() const { return o_hi - o_lo + 1; }
  int64_t n_apexes() const { return a_hi - a_lo + 1; }
  int64_t n_offsets() const { return f_hi - f_lo + 1; }
};

}  // namespace gamdss

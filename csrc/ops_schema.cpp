// The schemas of the gamdss ops, declared once; each backend registers its kernels in its
// own file (cpu/*.cpp, cuda/*.cu). Semantics: docs/reselection.md and
// the docstrings of python/gamdss/op/ops.py.
#include <torch/library.h>

TORCH_LIBRARY(gamdss, m) {
  // frames [N, ...] packed clips; starts, lengths [B] int64; annotations [B, 3] (onset, apex,
  // offset) and windows [B, 6] (onset lo/hi, apex lo/hi, offset lo/hi), clip-relative
  // inclusive int64. Returns onset, apex, offset [B] int64; rise and fall distances [B]
  // float64; the rise table [B, table_o, table_a] and fall table [B, table_f] float64 (NaN
  // where no candidate), or [B, 0, 0] and [B, 0] when the table sizes are 0.
  m.def(
      "reselect(Tensor frames, Tensor starts, Tensor lengths, Tensor annotations, "
      "Tensor windows, str distance, int table_o=0, int table_a=0, int table_f=0) -> "
      "(Tensor onset, Tensor apex, Tensor offset, Tensor rise_distance, Tensor fall_distance, "
      "Tensor rise_table, Tensor fall_table)");
  // Distance of every frame of each clip to that clip's reference frame: [B, max_length]
  // float64, NaN past each clip's length.
  m.def(
      "frame_distances(Tensor frames, Tensor starts, Tensor lengths, Tensor reference, "
      "str distance, int max_length) -> Tensor");
}

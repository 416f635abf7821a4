// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (see CMakeLists.txt); only
// called after pair_sums_dispatch.cpp has checked that the CPU supports them.
#include "cpu/pair_sums.h"

#define GAMDSS_KERNEL_NS avx512
#include "cpu/pair_sums_impl.h"

namespace gamdss::kernels::avx512 {
KernelSet kernels() { return make_kernel_set("avx512"); }
}  // namespace gamdss::kernels::avx512

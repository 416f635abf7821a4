// Compiled with -mavx2 -mf16c (see CMakeLists.txt); only called after
// pair_sums_dispatch.cpp has checked that the CPU supports them (AMD Zen 1-3 and Intel
// CPUs without AVX-512 VNNI run these).
#include "cpu/pair_sums.h"

#define GAMDSS_KERNEL_NS avx2
#include "cpu/pair_sums_impl.h"

namespace gamdss::kernels::avx2 {
KernelSet kernels() { return make_kernel_set("avx2"); }
}  // namespace gamdss::kernels::avx2

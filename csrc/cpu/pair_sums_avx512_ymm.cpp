// Compiled with -mavx2 -mf16c -mavx512f -mavx512vl -mavx512vnni (see CMakeLists.txt): the
// source of the AVX-VNNI variant with AVX-512 VNNI's vpdpbusd on 256-bit registers (EVEX).
// It runs wherever the AVX-512 variant runs, so the 256-bit scheme is tested and measured
// on such CPUs; it is chosen by name only. Only called after pair_sums_dispatch.cpp has
// checked that the CPU supports it.
#include "cpu/pair_sums.h"

#define GAMDSS_KERNEL_NS avx512_ymm
#define GAMDSS_VNNI256_KERNEL 1
#include "cpu/pair_sums_impl.h"

namespace gamdss::kernels::avx512_ymm {
KernelSet kernels() { return make_kernel_set("avx512_ymm"); }
}  // namespace gamdss::kernels::avx512_ymm

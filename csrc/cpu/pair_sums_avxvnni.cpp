// Compiled with -mavx2 -mf16c -mavxvnni (see CMakeLists.txt): the AVX2 kernels with the
// uint8 dots and moments of AVX-VNNI's 256-bit vpdpbusd (VEX), for CPUs that have AVX-VNNI
// and no AVX-512 (Intel Core from the 12th generation, Xeon 6 E-cores). Only called after
// pair_sums_dispatch.cpp has checked that the CPU supports them.
#include "cpu/pair_sums.h"

#define GAMDSS_KERNEL_NS avxvnni
#define GAMDSS_VNNI256_KERNEL 1
#include "cpu/pair_sums_impl.h"

namespace gamdss::kernels::avxvnni {
KernelSet kernels() { return make_kernel_set("avxvnni"); }
}  // namespace gamdss::kernels::avxvnni

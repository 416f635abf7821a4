#include "cpu/pair_sums.h"

#define GAMDSS_KERNEL_NS baseline
#include "cpu/pair_sums_impl.h"

namespace gamdss::kernels::baseline {
KernelSet kernels() { return make_kernel_set("baseline"); }
}  // namespace gamdss::kernels::baseline

// Stand-in for the CUDA toolkit's cuda_fp16.h in the host emulation: the half-precision
// bits and conversions the kernels use are in cuda_host_emulation.h.
#pragma once
#include "../cuda_host_emulation.h"

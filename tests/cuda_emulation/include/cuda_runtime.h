// Stand-in for the CUDA toolkit's cuda_runtime.h in the host emulation.
#pragma once
#include "../cuda_host_emulation.h"

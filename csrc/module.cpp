// The Python module gamdss_ext._C: importing it registers the ops (their static
// TORCH_LIBRARY initialisers run at load) and exposes build facts and the CPU kernel choice.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "cpu/core_speed.h"
#include "cpu/l2_cache.h"
#include "cpu/pair_sums.h"

namespace py = pybind11;

namespace {

// "8.0 9.0+PTX" -> ["sm_80", "sm_90"]
std::vector<std::string> split_archs(const std::string& s) {
  std::vector<std::string> out;
  std::string token;
  auto flush = [&] {
    if (!token.empty()) out.push_back("sm_" + token.substr(0, token.find('+')));
    token.clear();
  };
  for (char ch : s) {
    if (ch == ' ' || ch == ';') {
      flush();
    } else if (ch != '.') {
      token += ch;
    }
  }
  flush();
  return out;
}

py::dict build_info() {
  py::dict d;
  d["torch_version"] = std::string(GAMDSS_BUILT_TORCH_VERSION);
#ifdef GAMDSS_WITH_CUDA
  d["cuda_kernels"] = true;
#else
  d["cuda_kernels"] = false;
#endif
  d["cuda_archs"] = split_archs(GAMDSS_CUDA_ARCHS);
  d["cxx_compiler"] = std::string(GAMDSS_CXX_COMPILER);
#if defined(GAMDSS_HAVE_X86_KERNELS) && defined(GAMDSS_HAVE_AVXVNNI_KERNEL)
  d["cpu_kernel_variants"] = std::vector<std::string>{"baseline", "avx2", "avxvnni", "avx512_ymm", "avx512"};
#elif defined(GAMDSS_HAVE_X86_KERNELS)
  d["cpu_kernel_variants"] = std::vector<std::string>{"baseline", "avx2", "avx512_ymm", "avx512"};
#else
  d["cpu_kernel_variants"] = std::vector<std::string>{"baseline"};
#endif
  d["cpu_kernel"] = std::string(gamdss::kernels::active_kernels().name);
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled core of gamdss: registers torch.ops.gamdss.* on import.";
  m.def("build_info", &build_info,
        "Facts of this build: torch version, CUDA kernels and architectures, CPU kernels.");
  m.def(
      "set_cpu_kernel",
      [](const std::string& name) {
        if (!gamdss::kernels::select_kernels(name.c_str())) {
          throw py::value_error("CPU kernel '" + name +
                                "' is not available here; choose 'auto', 'baseline' or one of "
                                "build_info()['cpu_kernel_variants'] that this CPU supports");
        }
      },
      py::arg("name"),
      "Choose the CPU inner kernels: 'auto' (default), 'baseline', 'avx2', 'avxvnni', 'avx512_ymm' or "
        "'avx512'.");
  m.def("cpu_kernel", [] { return std::string(gamdss::kernels::active_kernels().name); },
        "Name of the CPU inner kernels in use.");
  m.def(
      "core_speed_ghz",
      [](int64_t n) {
        if (n < 1 || n > gamdss::cpu::kMaxAddChain) {
          throw py::value_error("core_speed_ghz: n must be in [1, " + std::to_string(gamdss::cpu::kMaxAddChain) +
                                "], got " + std::to_string(n));
        }
        py::gil_scoped_release release;
        return gamdss::cpu::add_chain_per_ns(n);
      },
      py::arg("n"),
      "Dependent integer additions per nanosecond over a chain of n (~ this core's clock in GHz now).");
  m.def("cpu_l2_bytes", &gamdss::cpu::l2_cache_bytes,
        "One core's L2 size in bytes as the op reads it (the C library), or -1 if unknown.");
}

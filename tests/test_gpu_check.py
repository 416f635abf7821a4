"""The GPU check script skips cleanly on a machine without a CUDA GPU (this one, and CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from process_helpers import python_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU driver is present: the check would run")
def test_gpu_check_skips_cleanly_without_a_gpu(tmp_path):
    report = tmp_path / "gpu-check.md"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == ["no CUDA GPU: skipped"]
    assert "no CUDA GPU: skipped" in report.read_text(encoding="utf-8")


def test_gpu_check_needs_a_report_path():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def _gpu_check_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_step_over_its_limit_keeps_what_it_printed_on_both_streams():
    """The GPU check has one try on a lent machine: a step stopped at its limit must still
    report what it printed (stdout and stderr), as a failure."""
    gpu_check = _gpu_check_module()
    script = "import sys, time; print('measured 1'); print('progress', file=sys.stderr); time.sleep(30)"
    status, seconds, output = gpu_check._run_step([sys.executable, "-c", script], gpu_check._env(), 3)
    assert status == "FAILED (over its 3 s limit)" and 3 <= seconds < 20
    assert "measured 1" in output and "progress" in output


# Packages the lent GPU machine's image lacks (device notes: its Python has torch, timm, cv2,
# sklearn, matplotlib... but not these); nothing can be installed there.
ABSENT_ON_THE_GPU_IMAGE = ("openpyxl", "xlrd", "xlwt", "facenet_pytorch", "ray")


def test_the_gpu_steps_need_no_package_the_gpu_image_lacks(tmp_path):
    """Run the training step of the check (tiny sizes, on the CPU) with those packages made
    unimportable: it must not need them (an import at a module's top once stopped four steps)."""
    blocker = tmp_path / "site" / "sitecustomize.py"
    blocker.parent.mkdir()
    blocker.write_text(
        "import sys\n"
        f"ABSENT = {set(ABSENT_ON_THE_GPU_IMAGE)!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ABSENT:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (absent from the GPU image)')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = python_env(HF_HUB_OFFLINE="1")  # this gamdss, installed or from the sources
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env["PYTHONPATH"]])
    check_blocked = subprocess.run(
        [sys.executable, "-c", "import openpyxl"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "absent from the GPU image" in check_blocked.stderr  # the blocker works
    step = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--step", "train-fp32", "--small"]
    proc = subprocess.run(
        [*step, "--device", "cpu", "--work", str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "two folds" in proc.stdout


def test_the_build_commands_target_one_architecture_with_cuda_required(tmp_path):
    gpu_check = _gpu_check_module()
    configure, build = gpu_check.cmake_commands(tmp_path / "b", "9.0", sys.executable, 16)
    assert "-DGAMDSS_CUDA=ON" in configure and "-DGAMDSS_CUDA_ARCHS=9.0" in configure
    assert f"-DPython_EXECUTABLE={sys.executable}" in configure and configure[configure.index("-S") + 1] == str(ROOT)
    assert build[1:] == ["--build", str(tmp_path / "b"), "--parallel", "16"] and build[0] == configure[0]


def test_the_cuda_toolkit_is_one_that_holds_nvcc_and_its_headers(tmp_path, monkeypatch):
    gpu_check = _gpu_check_module()
    toolkit = tmp_path / "cuda-13.0"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (toolkit / "bin" / "nvcc").chmod(0o755)
    (toolkit / "include" / "cuda_runtime.h").write_text("")
    wrapper = tmp_path / "wrapper" / "bin"  # an nvcc on PATH that is a script calling the real one
    wrapper.mkdir(parents=True)
    (wrapper / "nvcc").write_text(f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    (wrapper / "nvcc").chmod(0o755)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("CUDA_HOME", str(toolkit))
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")
    assert gpu_check.cuda_root() == toolkit
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", f"{toolkit / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert gpu_check.cuda_root() == toolkit  # found through the nvcc on PATH
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}/nonexistent")
    assert gpu_check.cuda_root() != wrapper.parent  # a wrapper's folder is no toolkit

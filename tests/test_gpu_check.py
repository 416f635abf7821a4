"""The GPU check script skips cleanly on a machine without a CUDA GPU (this one, and CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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

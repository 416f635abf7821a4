"""report.py on the smallest workload (smoke test), and the arithmetic of its paired cold-cache
roofline against hand-computed values."""

from __future__ import annotations

import math

import report
import timing


def test_paired_fractions_hand_computed():
    # 1 GB probe read in 0.05 s (20 GB/s), then in 0.02 s (50 GB/s); op 10 ms and 4 ms on 0.1 GB
    pc = timing.PairedCold(op_s=[0.010, 0.004], probe_s=[0.05, 0.02], probe_bytes=10**9, result=None)
    assert [round(b) for b in pc.bandwidths()] == [20 * 10**9, 50 * 10**9]
    # bound 5 ms over 10 ms; 2 ms over 4 ms
    assert all(math.isclose(f, 0.5) for f in pc.fractions(10**8))
    # a plain read of the same 0.1 GB in 20 ms and 4 ms: bounds 5 ms and 2 ms over them
    pc = timing.PairedCold([0.010, 0.004], [0.05, 0.02], 10**9, None, same_s=[0.020, 0.004])
    assert [round(f, 9) for f in pc.same_fractions(10**8)] == [0.25, 0.5]


def test_report_prints_the_paired_cold_roofline(capsys, monkeypatch):
    monkeypatch.setenv("GAMDSS_BENCH_SCALE", "small")
    assert report.main(["--scale", "small", "--workloads", "casme2", "--dtypes", "uint8"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| workload"))
    row = next(line for line in out.splitlines() if line.startswith("| casme2"))
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    assert cells["machine"].startswith(report.cpu_model())
    assert cells["fraction of roofline"].endswith("%")
    assert float(cells["read bandwidth, same rounds (GB/s)"].split()[0]) > 0
    assert float(cells["core speed, same rounds (GHz)"].split()[0]) > 0
    assert 0 < float(cells["plain read of the same bytes, paired"].rstrip("%"))
    assert "each cold call of the op is followed at once by a cold" in out


def test_report_runs_the_chosen_cpu_kernel_and_restores_the_previous_one(capsys, monkeypatch):
    import gamdss_ext

    monkeypatch.setenv("GAMDSS_BENCH_SCALE", "small")
    before = gamdss_ext.cpu_kernel()
    argv = ["--scale", "small", "--workloads", "samm", "--dtypes", "uint8", "--cpu-kernel", "baseline"]
    assert report.main(argv) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| samm"))
    assert "baseline kernel" in row
    assert gamdss_ext.cpu_kernel() == before

"""pipeline.py on a tiny cache (smoke test): both inputs with each flow method, one row per
measurement, every rate positive, and the flow cache labelled with the method it ran."""

from __future__ import annotations

import pytest

import pipeline
from gamdss.data.flow import tvl1_available
from gamdss.data.flow_cache import FlowStore


@pytest.mark.parametrize("flow", ["farneback", "tvl1"])
def test_pipeline_reports_every_rate_for_the_chosen_flow_method(capsys, tmp_path, flow):
    if flow == "tvl1" and not tvl1_available():
        pytest.skip("this OpenCV build has no TV-L1 (cv2.optflow): opencv-contrib-python-headless")
    argv = ["--size", "32", "--clips", "4", "--frames", "6", "--batch", "4", "--batches", "2", "--workers", "0"]
    assert pipeline.main([*argv, "--flow", flow, "--cache", str(tmp_path / "cache")]) == 0
    # the fields were computed with that method: its store holds every pair, the other's none
    samples = pipeline.make_cache(tmp_path / "again", 4, 6, 32)  # the same clips and keyframes
    pairs = pipeline.flow_cache_pairs(samples)
    other = "farneback" if flow == "tvl1" else "tvl1"
    assert FlowStore(tmp_path / "cache", flow, size=32).missing(pairs) == []
    assert len(FlowStore(tmp_path / "cache", other, size=32).missing(pairs)) == len(pairs)
    by_input: dict[str, list[list[str]]] = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "input":  # the table's rows, not its header
            by_input.setdefault(cells[0], []).append(cells)
    (cache_row,) = by_input["flow cache (once)"]
    assert cache_row[1].startswith(pipeline.FLOW_LABELS[flow])
    # DataLoader only, and with the batched transform, for each input
    for kind in ("difference", "flow"):
        rates = [float(cells[3]) for cells in by_input[kind]]
        assert len(rates) == 2 and all(r > 0 for r in rates)

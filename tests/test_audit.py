"""The annotation audit: every file it lists exists, its numbers match hand-computed
displacements, several caches and groups side by side, reuse of a reselection run."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from cache_fixtures import fixture_truth, make_cache
from gamdss.audit import audit_cache, audit_caches
from gamdss.cli import main
from gamdss.reselection.run import reselect_cache
from gamdss.settings.reselection import ReselectionSettings

PAPER_03 = ReselectionSettings(lam_rise=0.3, lam_fall=0.3)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("a") / "casme2", n_clips=4, seed=5)


@pytest.fixture(scope="module")
def tiny_report(tiny, tmp_path_factory):
    return audit_cache(tiny, tmp_path_factory.mktemp("out") / "audit", settings=PAPER_03, progress=False)


def test_every_listed_file_exists_and_report_links_them(tiny_report):
    out = tiny_report.out
    for name in tiny_report.files:
        assert (out / name).is_file(), name
    for required in (
        "displacements.csv",
        "summary.csv",
        "hist_frames.png",
        "hist_frames.csv",
        "hist_ms.png",
        "hist_ms.csv",
        "apex_vs_offset.png",
        "apex_vs_offset.csv",
        "groups_dataset.png",
        "groups_dataset.csv",
        "settings.yaml",
        "report.md",
    ):
        assert required in tiny_report.files
    text = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all((out / link).is_file() for link in links)
    assert {f for f in tiny_report.files if f.endswith(".png")} <= set(links)
    assert sum(f.startswith("curves/") and f.endswith(".png") for f in tiny_report.files) >= 2


def test_displacements_match_hand_computed(tiny, tiny_report):
    truth = fixture_truth(tiny)
    rows = {r["clip_id"]: r for r in _rows(tiny_report.out / "displacements.csv")}
    checked = 0
    for e in tiny.entries:
        row = rows[e.clip_id]
        a = e.apex_index
        reach = int(0.3 * (a - e.onset_index))
        if abs(truth[e.clip_id][1] - a) <= reach:  # the true apex is a candidate: it wins
            shift = truth[e.clip_id][1] - a
            assert int(row["shift_apex_frames"]) == shift
            assert float(row["shift_apex_ms"]) == pytest.approx(shift * 1000 / 200)
            checked += 1
        assert int(row["shift_onset_frames"]) >= 0  # paper windows: the onset only moves later
    assert checked >= 2
    summary = _rows(tiny_report.out / "summary.csv")
    overall = summary[0]
    assert overall["group"] == "all clips" and int(overall["clips"]) == 4
    apex_ms = [abs(float(r["shift_apex_ms"])) for r in rows.values()]
    assert float(overall["apex_mean_abs_ms"]) == pytest.approx(np.mean(apex_ms))
    assert float(overall["apex_p90_abs_ms"]) == pytest.approx(np.percentile(apex_ms, 90))
    hist = _rows(tiny_report.out / "hist_frames.csv")
    for k in ("onset", "apex", "offset"):
        counts = {int(h["shift_frames"]): int(h[k]) for h in hist}
        assert sum(counts.values()) == 4
        for r in rows.values():
            assert counts[int(r[f"shift_{k}_frames"])] >= 1


def test_curve_numbers_by_hand(tiny, tmp_path):
    e = tiny.entries[1]
    rep = audit_cache(tiny, tmp_path / "a", curves_for=[e.clip_id], progress=False)
    curve_csv = [f for f in rep.files if f.startswith("curves/") and f.endswith(".csv")]
    assert len(curve_csv) == 1
    rows = _rows(rep.out / curve_csv[0])
    frames = np.asarray(tiny.frames(e), dtype=np.int64)
    for i in (0, e.apex_index, len(rows) - 1):
        d_on = np.sqrt(((frames[i] - frames[e.onset_index]) ** 2).sum())
        d_off = np.sqrt(((frames[i] - frames[e.offset_index]) ** 2).sum())
        assert float(rows[i]["distance_to_annotated_onset"]) == pytest.approx(d_on)
        assert float(rows[i]["distance_to_annotated_offset"]) == pytest.approx(d_off)
        assert int(rows[i]["frame_number"]) == e.frame_numbers[i]
    assert "annotated apex" in rows[e.apex_index]["keyframes"]
    with pytest.raises(KeyError, match="nope"):
        audit_cache(tiny, tmp_path / "b", curves_for=["nope"], progress=False)


def test_several_caches_and_meta_groups_html(tmp_path):
    a = make_cache(tmp_path / "casme2", n_clips=4, meta={"sub01": {"ethnicity": "A"}, "sub02": {"ethnicity": "B"}})
    b = make_cache(tmp_path / "samm", n_clips=3, dataset="samm", seed=1, meta={"sub01": {"ethnicity": "C"}})
    rep = audit_caches([a, b], tmp_path / "out", settings=PAPER_03, fmt="html", progress=False)
    assert "groups_ethnicity.png" in rep.files and "groups_dataset.png" in rep.files
    groups = _rows(rep.out / "groups_dataset.csv")
    assert {(g["group"], int(g["clips"])) for g in groups} == {("casme2", 4), ("samm", 3)}
    eth = {g["group"] for g in _rows(rep.out / "groups_ethnicity.csv")}
    assert eth == {"A", "B", "C", "unknown"}
    # one self-contained file (was: links to the PNGs beside it): every src and href is a data URI
    html = (rep.out / "report.html").read_text()
    srcs = re.findall(r"(?:src|href)='([^']+)'", html)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert "alt='hist_ms.png'" in html


def test_reuses_a_reselection_run_and_refuses_overwrite(tiny, tmp_path, capsys):
    assert (
        main(
            [
                "reselect",
                str(tiny.root),
                "--preset",
                "paper",
                "--lam-rise",
                "0.3",
                "--lam-fall",
                "0.3",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    out = tmp_path / "audit"
    assert (
        main(["audit", str(tiny.root), "--reselection", str(tmp_path / "run" / "reselection.csv"), "--out", str(out)])
        == 0
    )
    assert "report.md" in capsys.readouterr().out
    got = _rows(out / "displacements.csv")
    expected = reselect_cache(tiny, PAPER_03, progress=False)  # the run's settings
    assert [tuple(int(r[f"reselected_{k}_index"]) for k in ("onset", "apex", "offset")) for r in got] == [
        r.reselected for r in expected
    ]
    before = (out / "report.md").read_text()
    assert main(["audit", str(tiny.root), "--out", str(out)]) == 2  # needs --overwrite: bad input (was 1)
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "report.md").read_text() == before
    assert main(["audit", str(tiny.root), "--out", str(out), "--overwrite", "--format", "html"]) == 0
    assert (out / "report.html").is_file()


def test_recommended_audit_counts_confident_moves(tmp_path):
    """With the recommended preset every move is a confident one: the summary's
    ``<k>_confident_moves`` equal the moves, the onset never moves, and the report says that
    the offset-versus-apex comparison uses confident moves only."""
    from gamdss.settings.reselection import preset

    # with sensor noise: the noise-aware method leaves exactly repeated frames out
    noisy = make_cache(tmp_path / "casme2", n_clips=4, seed=5, noise_sd=2.0)
    rep = audit_cache(noisy, tmp_path / "rec", settings=preset("recommended"), progress=False)
    rows = _rows(rep.out / "displacements.csv")
    total = next(r for r in _rows(rep.out / "summary.csv") if r["group"] == "all clips")
    for k in ("onset", "apex", "offset"):
        moved = sum(1 for r in rows if int(r[f"shift_{k}_frames"]) != 0)
        if k == "onset":
            assert moved == 0 and total["onset_confident_moves"] == ""  # not assessed
        else:
            assert int(total[f"{k}_confident_moves"]) == moved
    assert sum(1 for r in rows if int(r["shift_apex_frames"]) != 0) > 0  # the fixture's apexes are off
    text = (rep.out / "report.md").read_text()
    assert "confident moves only" in text and "preset recommended" in text


def test_paper_audit_has_no_confidences(tiny_report):
    total = next(r for r in _rows(tiny_report.out / "summary.csv") if r["group"] == "all clips")
    assert total["apex_confident_moves"] == ""
    assert "NOT tested against noise" in (tiny_report.out / "report.md").read_text()


def test_settings_file_reads_back_through_the_one_yaml_mechanism(tiny, tiny_report):
    from gamdss.audit import AuditSettings
    from gamdss.settings import yaml_io

    saved = yaml_io.load(AuditSettings, tiny_report.out / "settings.yaml")
    assert saved.reselection == PAPER_03 and saved.caches == [str(tiny.root)] and saved.fmt == "markdown"
    assert saved.reselection_csv is None and saved.created  # ISO time of the audit
    # the reselection.csv it wrote is the one scheme (reselect's), with the settings recorded
    assert ReselectionSettings.from_yaml(tiny_report.out / "settings.yaml") == PAPER_03
    assert "annotated_onset_index" in _rows(tiny_report.out / "reselection.csv")[0]


def test_an_audit_stopped_midway_leaves_nothing_and_runs_again(tiny, tmp_path, monkeypatch):
    """Ctrl-C while the curves are drawn (after the CSVs and histograms are written): the
    report folder gets nothing, so the same call then runs without --overwrite."""
    from gamdss.audit import plots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "audit"
    with monkeypatch.context() as m:
        m.setattr(plots, "distance_curves", interrupted)
        with pytest.raises(KeyboardInterrupt):
            audit_cache(tiny, out, settings=PAPER_03, progress=False)
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".audit.partial-*"))  # the staging folder is gone too
    rep = audit_cache(tiny, out, settings=PAPER_03, progress=False)
    assert rep.report.is_file() and all((out / f).is_file() for f in rep.files)

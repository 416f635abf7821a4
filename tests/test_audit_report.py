"""Audit reports you can send: the HTML report is one self-contained file (PNGs embedded as
data URIs that decode to the very PNGs written beside it), legends lie outside the axes so
they never hide data, the Fig.-2 curves are drawn against the dataset's frame numbers, and a
group comparison with one group says so."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from cache_fixtures import make_cache
from gamdss.audit import audit_cache, plots, report
from gamdss.settings.reselection import ReselectionSettings

PAPER_03 = ReselectionSettings(lam_rise=0.3, lam_fall=0.3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    cache = make_cache(tmp_path_factory.mktemp("c") / "casme2", n_clips=4, seed=3)
    rep = audit_cache(cache, tmp_path_factory.mktemp("o") / "audit", settings=PAPER_03, fmt="html", progress=False)
    return cache, rep


def _decode(uri: str) -> tuple[str, bytes]:
    head, _, payload = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    return head[5:-7], base64.b64decode(payload, validate=True)


def test_html_report_is_self_contained(html_report):
    _, rep = html_report
    html = rep.report.read_text(encoding="utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
    assert refs, "the report embeds nothing"
    assert all(r.startswith("data:") for r in refs), [r[:60] for r in refs if not r.startswith("data:")]
    images = re.findall(r"<img src='([^']+)' alt='([^']+)'>", html)
    pngs = {f for f in rep.files if f.endswith(".png")}
    assert {alt for _, alt in images} == pngs  # every plot written is in the report
    for uri, alt in images:
        mime, data = _decode(uri)
        assert mime == "image/png" and data.startswith(PNG_SIGNATURE)
        assert data == (rep.out / alt).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG" and min(im.size) > 50
    # the CSV links are downloads holding the numbers themselves
    downloads = dict((name, uri) for name, uri in re.findall(r"<a download='([^']+)' href='([^']+)'>", html))
    mime, data = _decode(downloads["summary.csv"])
    assert mime == "text/csv" and data == (rep.out / "summary.csv").read_bytes()


def test_html_needs_the_folder_of_its_images():
    with pytest.raises(ValueError, match="base"):
        report.render([{"heading": "h", "images": ["a.png"]}], "t", "html")


# ------------------------------------------------------------------------------ legends
@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept instead of only saved."""
    kept = []
    save = plots._save

    def keep(fig, path):
        kept.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return kept


def _rows(n: int = 40, seed: int = 0) -> list[dict]:
    """Clips of two datasets whose displacements cover the whole plot, corners included."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {"dataset": "casme2" if i % 2 else "samm", "meta_ethnicity": "A" if i % 3 else "B"}
        for k in ("onset", "apex", "offset"):
            row[f"shift_{k}_ms"] = float(rng.integers(-10, 11) * 5)
        rows.append(row)
    rows[0].update(shift_apex_ms=0.0, shift_offset_ms=50.0)  # top left, where a legend used to sit
    rows[1].update(shift_apex_ms=50.0, shift_offset_ms=50.0)
    return rows


def _assert_legends_outside(fig) -> int:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax_box in boxes:
            overlap = min(box.x1, ax_box.x1) - max(box.x0, ax_box.x0), min(box.y1, ax_box.y1) - max(box.y0, ax_box.y0)
            assert min(overlap) <= 0, f"legend {box} overlaps axes {ax_box}"
    return len(legends)


def test_legends_never_cover_the_axes(figures, tmp_path):
    rows = _rows()
    plots.apex_vs_offset(rows, tmp_path / "a.png", "sub")
    plots.groups_side_by_side(rows, "dataset", ["casme2", "samm"], tmp_path / "g.png", "sub")
    plots.distance_curves(_curve(), tmp_path / "c.png", "sub")
    assert [_assert_legends_outside(f) for f in figures] == [1, 1, 1]


# ------------------------------------------------------------------------------ frame numbers
def _curve() -> dict:
    t = 30
    x = np.arange(t, dtype=float)
    return {
        "clip_id": "sub01/EP01",
        "dataset": "casme2",
        "fps": 200.0,
        "frame_numbers": list(range(101, 101 + t)),  # the dataset numbers frames from 101
        "to_onset": np.exp(-((x - 12) ** 2) / 20).tolist(),
        "to_offset": np.exp(-((x - 14) ** 2) / 30).tolist(),
        "annotated": [2, 10, 25],
        "reselected": [2, 12, 24],
        "windows": [2, 4, 8, 14, 22, 27],
        "distance": "l2",
    }


def test_curves_are_drawn_against_dataset_frame_numbers(figures, tmp_path):
    curve = _curve()
    plots.distance_curves(curve, tmp_path / "c.png", "sub")
    (fig,) = figures
    top, _ = fig.axes[:2]
    line = top.get_lines()[0]
    assert list(line.get_xdata()) == curve["frame_numbers"]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    # annotated apex at index 10 = frame 111; reselected at index 12 = frame 113
    assert "annotated apex (frame 111)" in labels
    assert "reselected apex (frame 113, moved +2)" in labels
    assert "reselected offset (frame 125, moved -1)" in labels
    vlines = {round(v.get_xdata()[0]) for v in top.get_lines()[1:]}
    assert {103, 111, 113, 126, 125} <= vlines


# ------------------------------------------------------------------------------ one group
def test_one_group_is_said_in_the_table_the_report_and_the_plot(html_report, figures, tmp_path):
    _, rep = html_report  # one cache: one dataset
    header, rows = report.summary_table(rep.summary)
    by_dataset = [r for r in rows if r[0] == "dataset"]
    assert len(by_dataset) == 1 and by_dataset[0][1] == "casme2 (only group)"
    html = rep.report.read_text(encoding="utf-8")
    assert "Only one group under dataset (all clips are &#x27;casme2&#x27;)" in html
    plots.groups_side_by_side(_rows(), "dataset", ["casme2"], tmp_path / "g.png", "sub")
    assert "only one group" in figures[-1].axes[0].get_title()


def test_two_groups_get_no_note():
    summary = [
        {"group_by": "-", "group": "all clips"},
        {"group_by": "dataset", "group": "casme2"},
        {"group_by": "dataset", "group": "samm"},
    ]
    assert report.single_group_keys(summary) == [] and report.single_group_note(summary) == ""

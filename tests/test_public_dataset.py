"""The public torch Dataset (``gamdss.data.keyframe_dataset``): the README example as written,
reselection outputs, flow input, and the batches' contents against the cache itself."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import gamdss.data
from cache_fixtures import make_cache
from gamdss.data import collate, keyframe_dataset
from gamdss.data.reselection_files import save_reselection
from gamdss.reselection.run import reselect_cache
from gamdss.settings.reselection import PRESETS

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## A torch Dataset for your own training loop") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_example(), "README.md example", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert re.search(r"^4 clips, \(\d, 3, 64, 64\) \[", out, re.M), out


def test_public_names_are_exported():
    for name in ("KeyframeDataset", "keyframe_dataset", "collate", "KeyframeTransform", "FlowStore"):
        assert getattr(gamdss.data, name) is not None
    with pytest.raises(AttributeError):
        gamdss.data.no_such_name  # noqa: B018


def test_batches_hold_the_cache_frames_and_protocol_labels(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=5, size=32)
    ds = keyframe_dataset(cache.root, protocol="casme2-5", image_size=32)
    assert len(ds) + len(ds.dropped) == 5
    batch, labels, index = collate([ds[i] for i in range(len(ds))])
    for j, i in enumerate(index.tolist()):
        s = ds.samples[i]
        e = cache[s.clip_id]
        want = cache.frames(s.clip_id)[[e.onset_index, e.apex_index, e.offset_index]]
        np.testing.assert_array_equal(batch.frames[j].numpy(), want)
        assert int(labels[j]) == s.label
    x = ds.transform(batch, "cpu")
    raw = batch.frames[0].permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(torch.stack([x.onset[0], x.apex[0], x.offset[0]]), (raw - mean) / std)


def test_reselection_output_gives_the_reselected_keyframes(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=4, size=32)
    results = reselect_cache(cache, PRESETS["paper"], progress=False)
    out = tmp_path / "reselect-out"
    save_reselection(results, out / "reselection.csv", cache=cache)
    moved = {r.clip_id: tuple(r.reselected) for r in results}
    for source in (out, out / "reselection.csv"):
        ds = keyframe_dataset(cache.root, protocol="casme2-5", reselection=source, image_size=32)
        assert ds.use_reselected
        for i, s in enumerate(ds.samples):
            assert ds.keyframes(i) == moved[s.clip_id]
    annotated = keyframe_dataset(cache.root, protocol="casme2-5", image_size=32)
    for i, s in enumerate(annotated.samples):
        e = cache[s.clip_id]
        assert annotated.keyframes(i) == (e.onset_index, e.apex_index, e.offset_index)


def test_reselection_of_another_cache_is_refused(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    other = make_cache(tmp_path / "other", n_clips=3, size=32, seed=5)
    results = reselect_cache(other, PRESETS["paper"], progress=False)
    save_reselection(results, tmp_path / "other.csv", cache=other)
    with pytest.raises(ValueError):
        keyframe_dataset(cache.root, protocol="casme2-5", reselection=tmp_path / "other.csv", image_size=32)


def test_flow_input_from_the_public_dataset(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    ds = keyframe_dataset(cache.root, image_size=32, input_kind="flow", flow="farneback", flow_workers=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate)
    batch, _, _ = next(iter(loader))
    rise, fall = ds.transform(batch, "cpu").motion()
    assert rise.shape == (2, 2, 32, 32) and fall.shape == (2, 2, 32, 32)
    assert any((cache.root / "flow").rglob("*.npy"))

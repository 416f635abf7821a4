"""The batched device-side input pipeline against the per-sample path it replaces.

Oracle: the released code's per-sample augmentation (torchvision ``rotate``, pad, crop) run on
each sample with the same draws (:func:`augment_one`), after the per-sample resize and
normalisation the dataset did before; and, for flow vectors, hand-computed rotations.
"""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch

from cache_fixtures import make_cache
from gamdss.data.batch import AugmentParams, KeyframeBatch
from gamdss.data.batch_transform import (
    KeyframeTransform,
    _window_grid,
    augment_one,
    crop_padding,
    draw_augment,
    flow_vector_map,
    resize_frames,
    sampling_index,
)
from gamdss.data.keyframes import KeyframeDataset, collate
from gamdss.data.protocols import get_protocol
from gamdss.data.samples import build_samples
from gamdss.models.inputs import IMAGENET_MEAN, IMAGENET_STD
from gamdss.util.seeds import derive_seed

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _draws(n: int, size: int, seed: int = 0) -> list[AugmentParams]:
    return [draw_augment(torch.Generator().manual_seed(seed * 1000 + i), size) for i in range(n)]


def _old_difference(raw: torch.Tensor, size: int, params: AugmentParams | None) -> torch.Tensor:
    """The per-sample difference path before: uint8 [3, H, W, 3] -> float [3, 3, S, S]."""
    x = resize_frames(raw.permute(0, 3, 1, 2).float().div_(255.0), size)
    x = (x - MEAN) / STD
    return x if params is None else augment_one(x, params)


def _old_flow_stills(raw: torch.Tensor, size: int, params: AugmentParams | None) -> torch.Tensor:
    """The per-sample flow path before (uint8 frames augmented, normalised in the trainer)."""
    x = resize_frames(raw.permute(0, 3, 1, 2).float().div_(255.0), size)
    pixels = x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    if params is not None:
        pixels = augment_one(pixels, params)
    return (pixels.float() / 255.0 - MEAN) / STD


@pytest.mark.parametrize("cache_size,size", [(48, 48), (40, 32), (224, 224)])
def test_batched_difference_equals_per_sample(cache_size, size):
    n = 6
    raw = torch.randint(
        0, 256, (n, 3, cache_size, cache_size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    draws = _draws(n, size)
    got = KeyframeTransform(size)(KeyframeBatch(raw, AugmentParams.stack(draws)))
    for i in range(n):
        ref = _old_difference(raw[i], size, draws[i])
        out = torch.stack([got.onset[i], got.apex[i], got.offset[i]])
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        assert torch.equal(out == 0, ref == 0)  # the same pixels are fill, exactly


@pytest.mark.parametrize("cache_size,size", [(48, 48), (40, 32)])
def test_batched_flow_stills_equal_per_sample(cache_size, size):
    n = 5
    raw = torch.randint(
        0, 256, (n, 3, cache_size, cache_size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    )
    draws = _draws(n, size, seed=3)
    flow = torch.zeros(n, 2, 2, size, size, dtype=torch.float16)
    got = KeyframeTransform(size, "flow")(KeyframeBatch(raw, AugmentParams.stack(draws), flow))
    for i in range(n):
        ref = _old_flow_stills(raw[i], size, draws[i])
        torch.testing.assert_close(torch.stack([got.onset[i], got.apex[i], got.offset[i]]), ref, rtol=1e-5, atol=1e-5)


def test_no_augmentation_is_plain_normalisation():
    raw = torch.randint(0, 256, (3, 3, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    got = KeyframeTransform(16)(KeyframeBatch(raw, None))
    for i in range(3):
        torch.testing.assert_close(
            torch.stack([got.onset[i], got.apex[i], got.offset[i]]), _old_difference(raw[i], 16, None)
        )


def test_window_grid_is_torchvisions_grid_bit_for_bit():
    """The elementwise grid equals torchvision's bmm grid where the window is inside the image."""
    size = 64
    draws = _draws(8, size, seed=5)
    grid = _window_grid(AugmentParams.stack(draws), size, "cpu")
    d, p = 0.5, crop_padding(size)
    base = torch.empty(1, size, size, 3)
    base[..., 0].copy_(torch.linspace(-size * 0.5 + d, size * 0.5 + d - 1, steps=size))
    base[..., 1].copy_(torch.linspace(-size * 0.5 + d, size * 0.5 + d - 1, steps=size).unsqueeze_(-1))
    base[..., 2].fill_(1)
    for i, prm in enumerate(draws):
        rot = math.radians(-float(prm.angle))
        theta = torch.tensor([math.cos(rot), math.sin(rot), 0.0, -math.sin(rot), math.cos(rot), 0.0]).view(1, 2, 3)
        full = base.view(1, size * size, 3).bmm(theta.transpose(1, 2) / torch.tensor([0.5 * size, 0.5 * size]))
        full = full.view(size, size, 2)
        padded = torch.full((size + 2 * p, size + 2 * p, 2), float("nan"))
        padded[p : p + size, p : p + size] = full
        top, left = int(prm.top), int(prm.left)
        want = padded[top : top + size, left : left + size]
        inside = ~want.isnan().any(-1)
        assert inside.any()
        assert torch.equal(grid[i][inside], want[inside])


def test_sampling_index_selects_like_the_reference_on_an_index_image():
    size = 32
    draws = _draws(10, size, seed=6)
    index = sampling_index(AugmentParams.stack(draws), size)
    ids = torch.arange(1, size * size + 1, dtype=torch.float32).view(1, 1, size, size)
    for i, prm in enumerate(draws):
        ref = augment_one(ids, prm).view(-1).long() - 1
        assert torch.equal(index[i], ref)


def test_draws_are_the_released_order_and_seeded_per_sample_and_epoch():
    gen = torch.Generator().manual_seed(7)
    flip = bool(torch.rand((), generator=gen) < 0.5)
    angle = float((torch.rand((), generator=gen) * 2 - 1) * 3.0)
    top = int(torch.randint(0, 2 * 15 + 1, (), generator=gen))
    left = int(torch.randint(0, 2 * 15 + 1, (), generator=gen))
    prm = draw_augment(torch.Generator().manual_seed(7), 224)
    assert (bool(prm.flip), float(prm.angle), int(prm.top), int(prm.left)) == (flip, angle, top, left)
    assert crop_padding(224) == 15 and crop_padding(64) == 4


def test_flow_vectors_rotate_flip_and_scale():
    """A uniform field (1, 0) (rightward) comes out as R·F·(1, 0) away from the fill."""
    size = 32
    params = AugmentParams(
        flip=torch.tensor([False, True, False]),
        angle=torch.tensor([2.5, -1.0, 0.0]),
        top=torch.tensor([crop_padding(size)] * 3),
        left=torch.tensor([crop_padding(size)] * 3),
        scale=torch.tensor([1.0, 1.0, 1.5]),
    )
    flow = torch.zeros(3, 2, 2, size, size, dtype=torch.float16)
    flow[:, :, 0] = 1.0
    raw = torch.zeros(3, 3, size, size, 3, dtype=torch.uint8)
    got = KeyframeTransform(size, "flow")(KeyframeBatch(raw, params, flow))
    for i, (flip, angle, scale) in enumerate([(1, 2.5, 1.0), (-1, -1.0, 1.0), (1, 0.0, 1.5)]):
        a = math.radians(angle)
        want = (scale * math.cos(a) * flip, -scale * math.sin(a) * flip)
        centre = got.rise_flow[i, :, size // 2, size // 2]
        assert centre.tolist() == pytest.approx(want, abs=1e-6)
        assert got.fall_flow[i, :, size // 2, size // 2].tolist() == pytest.approx(want, abs=1e-6)
    a = flow_vector_map(params)
    assert torch.allclose(
        a[1],
        torch.tensor(
            [
                [-math.cos(math.radians(-1.0)), math.sin(math.radians(-1.0))],
                [math.sin(math.radians(-1.0)), math.cos(math.radians(-1.0))],
            ]
        ),
    )


def test_flipped_flow_is_mirrored_and_negated():
    size = 24
    field = torch.randn(1, 2, 2, size, size, generator=torch.Generator().manual_seed(8)).half()
    p = crop_padding(size)
    params = AugmentParams(
        flip=torch.tensor([True]),
        angle=torch.tensor([0.0]),
        top=torch.tensor([p]),
        left=torch.tensor([p]),
        scale=torch.tensor([1.0]),
    )
    raw = torch.zeros(1, 3, size, size, 3, dtype=torch.uint8)
    got = KeyframeTransform(size, "flow")(KeyframeBatch(raw, params, field))
    want = field.float().flip(-1)
    want[:, :, 0] *= -1
    assert torch.equal(got.rise_flow, want[:, 0])
    assert torch.equal(got.fall_flow, want[:, 1])


def _dataset(tmp_path, **kw):
    cache = make_cache(tmp_path / "cache", n_clips=6, size=32)
    samples, _ = build_samples([cache], get_protocol("casme2-5"))
    return cache, KeyframeDataset(samples, [cache.root], image_size=32, **kw)


def test_dataset_batches_equal_the_old_per_sample_items(tmp_path):
    """DataLoader -> collate -> transform gives what the per-sample dataset gave, same draws."""
    cache, ds = _dataset(tmp_path, augment=True, seed=11)
    ds.set_epoch(3)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate)
    seen = 0
    for batch, labels, index in loader:
        x = ds.transform(batch, "cpu")
        for j, i in enumerate(index.tolist()):
            s = ds.samples[i]
            clip = cache.frames(s.clip_id)
            raw = torch.from_numpy(np.ascontiguousarray(clip[list(ds.keyframes(i))]))
            gen = torch.Generator().manual_seed(derive_seed("augment", 11, 3, s.key))
            ref = _old_difference(raw, 32, draw_augment(gen, 32))
            torch.testing.assert_close(torch.stack([x.onset[j], x.apex[j], x.offset[j]]), ref, rtol=1e-5, atol=1e-5)
            assert int(labels[j]) == s.label
            seen += 1
    assert seen == len(ds)


def test_getitem_and_getitems_agree(tmp_path):
    _, ds = _dataset(tmp_path, augment=True, seed=1)
    one = collate([ds[0], ds[1]])[0]
    two = collate(ds.__getitems__([0, 1]))[0]
    assert torch.equal(one.frames, two.frames)
    assert one.frames.dtype == torch.uint8 and one.frames.shape == (2, 3, 32, 32, 3)
    assert torch.equal(one.augment.angle, two.augment.angle)


def test_epoch_changes_draws_and_worker_count_does_not(tmp_path):
    _, ds = _dataset(tmp_path, augment=True, seed=2)
    ds.set_epoch(1)
    a = [float(ds[i].augment.angle) for i in range(len(ds))]
    ds.set_epoch(2)
    b = [float(ds[i].augment.angle) for i in range(len(ds))]
    assert a != b
    ds.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=1)
    c = torch.cat([batch.augment.angle for batch, _, _ in loader]).tolist()
    assert c == a


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(tmp_path, context):
    """Workers kept across epochs draw each epoch's augmentation, as a loader without workers does."""
    _, ds = _dataset(tmp_path, augment=True, seed=5)
    expected = []
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        expected.append([float(ds[i].augment.angle) for i in range(len(ds))])
    assert expected[0] != expected[1] != expected[2]
    loader = torch.utils.data.DataLoader(
        ds, batch_size=3, collate_fn=collate, num_workers=2, persistent_workers=True, multiprocessing_context=context
    )
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        got = torch.cat([batch.augment.angle for batch, _, _ in loader]).tolist()
        assert got == expected[epoch], f"epoch {epoch}"


def test_a_pickled_or_copied_dataset_keeps_its_own_epoch_for_persistent_workers(tmp_path):
    import copy

    _, ds = _dataset(tmp_path, augment=True, seed=5)
    for other in (pickle.loads(pickle.dumps(ds)), copy.deepcopy(ds), copy.copy(ds)):
        expected = []
        for epoch in (0, 1):
            other.set_epoch(epoch)
            expected.append([float(other[i].augment.angle) for i in range(len(other))])
        loader = torch.utils.data.DataLoader(
            other, batch_size=3, collate_fn=collate, num_workers=2, persistent_workers=True
        )
        for epoch in (0, 1):
            other.set_epoch(epoch)
            assert torch.cat([b.augment.angle for b, _, _ in loader]).tolist() == expected[epoch], epoch
        assert ds.epoch == 0  # the original is not touched by its copies


def test_dataset_pickles_without_its_open_memory_maps(tmp_path):
    _, ds = _dataset(tmp_path, augment=False)
    before = ds[0].frames
    assert ds._clips  # a clip's memory map is open now
    copy = pickle.loads(pickle.dumps(ds))
    assert len(copy._clips) == 0 and copy._caches is None
    assert torch.equal(copy[0].frames, before)


def test_open_maps_keep_at_most_limit_and_drop_the_least_recently_used():
    from gamdss.util.open_maps import OpenMaps

    opened: list[str] = []

    def opener(key):
        def open_fn():
            opened.append(key)
            return np.zeros(1)

        return open_fn

    maps = OpenMaps(limit=2)
    for key in ("a", "b", "a", "c"):  # "a" used again before "c": "b" is the least recent
        maps.get(key, opener(key))
    assert opened == ["a", "b", "c"] and len(maps) == 2
    maps.get("a", opener("a"))  # still held
    maps.get("b", opener("b"))  # dropped before, reopened
    assert opened == ["a", "b", "c", "b"] and len(maps) == 2


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to count descriptors")
def test_reading_every_sample_holds_a_bounded_number_of_files(tmp_path, monkeypatch):
    """A dataset larger than the limit of open maps does not keep a descriptor per clip."""
    from gamdss.util import open_maps

    monkeypatch.setattr(open_maps, "DEFAULT_LIMIT", 2)
    monkeypatch.setattr(open_maps.OpenMaps.__init__, "__defaults__", (2,))
    _, ds = _dataset(tmp_path)
    before = _open_fds()
    for i in range(len(ds)):
        ds[i]
    assert len(ds) == 6 and _open_fds() - before <= 2

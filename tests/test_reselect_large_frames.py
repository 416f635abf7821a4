"""The CPU kernel on frames larger than its work blocks (32 KiB), sub-blocks (2 KiB) and
vector pieces, with sizes that leave ragged tails, in both of its work decompositions (one
clip per work item when there are many clips, (clip, block) items when there are few):
bit-identical across the CPU inner kernels and threads, and matching the reference."""

from __future__ import annotations

import math

import pytest
import torch

import gamdss
import gamdss_ext
from gamdss.op import reference
from support import available_cpu_variants

VARIANTS = available_cpu_variants()
# 3 x 99 x 115 = 34155 elements: two blocks for uint8, more for wider types; the tails of
# every level (block, sub-block, 512-byte piece, 32-byte vector) are ragged.
SHAPE = (3, 99, 115)


def _frames(gen: torch.Generator, b: int, t: int, dtype: torch.dtype) -> torch.Tensor:
    x = torch.randint(0, 256, (b, t, *SHAPE), generator=gen, dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.to(dtype)


def _run(x, ann, lam, window, distance):
    return gamdss.reselect(
        x,
        ann[:, 0],
        ann[:, 1],
        ann[:, 2],
        lam_rise=lam,
        lam_fall=lam,
        window=window,
        distance=distance,
        return_table=True,
    )


FIELDS = ("onset", "apex", "offset", "rise_distance", "fall_distance", "rise_table", "fall_table")


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, n).nan_to_num(-1), getattr(b, n).nan_to_num(-1)) for n in FIELDS)


def _on_every_kernel(call, all_thread_counts=True):
    """[(threads, variant, call())] for every CPU inner kernel, on 1 thread and on torch's
    thread count (or on torch's only); both settings are restored afterwards."""
    threads = torch.get_num_threads()
    results = []
    try:
        for n_threads in sorted({1, threads}) if all_thread_counts else [threads]:
            torch.set_num_threads(n_threads)
            for variant in VARIANTS:
                gamdss_ext.set_cpu_kernel(variant)
                results.append((n_threads, variant, call()))
    finally:
        torch.set_num_threads(threads)
        gamdss_ext.set_cpu_kernel("auto")
    return results


@pytest.mark.parametrize("b", [2, 12])  # few clips: (clip, block) items; many: one clip per item
@pytest.mark.parametrize(
    "dtype,distance",
    [
        (torch.uint8, "l2"),
        (torch.uint8, "centered"),
        (torch.uint8, "released_uint8"),
        (torch.float32, "l2"),
        (torch.float16, "centered"),
        (torch.float64, "l2"),
    ],
)
def test_large_frames_identical_across_kernels_and_threads(b, dtype, distance):
    gen = torch.Generator().manual_seed(b * 31 + len(distance))
    t = 14
    x = _frames(gen, b, t, dtype)
    ann = torch.sort(torch.randint(0, t, (b, 3), generator=gen), dim=1).values
    window = "released" if distance == "released_uint8" else "paper"
    results = _on_every_kernel(lambda: _run(x, ann, 0.4, window, distance))
    first = results[0][2]
    for n_threads, variant, got in results[1:]:
        assert _same(got, first), (n_threads, variant)
    ref = reference.reselect(
        x,
        ann[:, 0],
        ann[:, 1],
        ann[:, 2],
        lam_rise=0.4,
        lam_fall=0.4,
        window=window,
        distance=distance,
        return_table=True,
    )
    if dtype == torch.uint8:
        assert _same(first, ref)
    else:
        for name in ("rise_distance", "fall_distance"):
            assert torch.allclose(getattr(first, name), getattr(ref, name), rtol=1e-5)


@pytest.mark.parametrize("distance", ["l2", "centered"])
def test_wide_windows_uint8_identical_across_kernels_and_match_reference(distance):
    """Windows of 1 to ~30 frames per side (symmetric, lambda 0.9 on spans up to 35 frames):
    every size of the kernels' groups of frames read side by side (up to 8 at a time) and
    every remainder, exact against the reference."""
    gen = torch.Generator().manual_seed(7 + len(distance))
    b, t = 6, 40
    x = _frames(gen, b, t, torch.uint8)
    onset = torch.randint(0, 6, (b,), generator=gen)
    apex = onset + torch.randint(1, 20, (b,), generator=gen)
    offset = torch.minimum(apex + torch.randint(1, 16, (b,), generator=gen), torch.tensor(t - 1))
    ann = torch.stack([onset, apex, offset], dim=1)
    kwargs = dict(lam_rise=0.9, lam_fall=0.9, window="symmetric", distance=distance, return_table=True)
    results = _on_every_kernel(
        lambda: gamdss.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs), all_thread_counts=False
    )
    ref = reference.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs)
    for _, variant, got in results:
        assert _same(got, ref), variant
    # the windows really are that wide: some clip has more than 8 apex candidates
    assert int(torch.isfinite(ref.rise_table).any(dim=1).sum(dim=1).max()) > 8


@pytest.mark.parametrize("distance", ["l2", "centered"])
def test_full_size_frames_many_clips_uint8_match_reference(distance):
    """3x224x224 uint8 frames (five full 32 KiB pieces and a short last one per frame), enough
    clips for one clip per work item on every thread count, and up to ~15 onset candidates
    (several passes of the kernels' groups of 8): every kernel and thread count, exact against
    the reference."""
    gen = torch.Generator().manual_seed(224 + len(distance))
    b, t = 9, 24
    x = torch.randint(0, 256, (b, t, 3, 224, 224), generator=gen, dtype=torch.uint8)
    onset = torch.randint(0, 4, (b,), generator=gen)
    apex = onset + torch.randint(6, 14, (b,), generator=gen)
    offset = torch.minimum(apex + torch.randint(1, 8, (b,), generator=gen), torch.tensor(t - 1))
    ann = torch.stack([onset, apex, offset], dim=1)
    kwargs = dict(lam_rise=0.9, lam_fall=0.9, window="symmetric", distance=distance, return_table=True)
    results = _on_every_kernel(lambda: gamdss.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs))
    ref = reference.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs)
    for n_threads, variant, got in results:
        assert _same(got, ref), (n_threads, variant)
    assert int(torch.isfinite(ref.rise_table).any(dim=2).sum(dim=1).max()) > 8  # onset candidates


@pytest.mark.parametrize("distance", ["l2", "centered"])
def test_saturated_uint8_frames_exact_on_every_kernel(distance):
    """Frames of only 0 and 255, whose products are the largest the integer lanes of the
    inner kernels take (255 * 255 squares; 255 * -128 and 255 * 127 on the biased side of
    the VNNI dots and norms), full-size so that whole pieces (32 KiB or longer) are summed, with wide
    windows (up to ~12 rows against ~12 columns, so several row groups and column pairs):
    every kernel and thread count, exact against the float64 reference; and with lambda 0 a
    hand-computed distance."""
    gen = torch.Generator().manual_seed(255 + len(distance))
    b, t = 9, 30
    x = (torch.randint(0, 2, (b, t, 3, 224, 224), generator=gen, dtype=torch.uint8) * 255).contiguous()
    x[:, 3] = 0  # a frame of zeros against a frame of 255: the largest distance there is
    x[:, 15] = 255
    ann = torch.tensor([[3, 15, 27]] * b)
    for lam in (0.9, 0.0):
        kwargs = dict(lam_rise=lam, lam_fall=lam, window="symmetric", distance=distance, return_table=True)
        results = _on_every_kernel(lambda kw=kwargs: gamdss.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kw))
        ref = reference.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs)
        for n_threads, variant, got in results:
            assert _same(got, ref), (lam, n_threads, variant)
    # lambda 0: the annotated pair alone, frame 3 (zeros) against frame 15 (all 255)
    d = 3 * 224 * 224
    expected = math.sqrt(d * 255.0**2) if distance == "l2" else 0.0
    assert torch.allclose(ref.rise_distance, torch.full((b,), expected, dtype=torch.float64))


@pytest.mark.parametrize("variant", gamdss_ext.build_info()["cpu_kernel_variants"])
def test_every_compiled_kernel_matches_the_reference_or_says_why_not_here(variant):
    """Each CPU inner kernel compiled in, alone, on full-size uint8 frames against the
    reference; a kernel this CPU cannot run (e.g. AVX-VNNI on a CPU with AVX-512 and no
    AVX-VNNI) is skipped with that reason, so a CPU that can run it checks it."""
    if variant not in VARIANTS:
        pytest.skip(f"the {variant!r} CPU kernel is compiled in, but this CPU lacks its instructions")
    gen = torch.Generator().manual_seed(31)
    b, t = 9, 24
    x = torch.randint(0, 256, (b, t, 3, 224, 224), generator=gen, dtype=torch.uint8)
    ann = torch.tensor([[2, 11, 20]] * b) + torch.randint(-2, 3, (b, 3), generator=gen)
    kwargs = dict(lam_rise=0.5, lam_fall=0.5, window="symmetric", distance="l2", return_table=True)
    try:
        gamdss_ext.set_cpu_kernel(variant)
        got = gamdss.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs)
    finally:
        gamdss_ext.set_cpu_kernel("auto")
    assert _same(got, reference.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kwargs))

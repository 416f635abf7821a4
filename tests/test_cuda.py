"""CUDA kernels against the CPU kernels and the reference (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

import gamdss
from gamdss.op import reference
from gamdss.op.ops import frame_distances
from gamdss.op.packing import keyframes, pack_clips
from gamdss.op.windows import preset_windows
from oracle import assert_matches_reference
from support import cuda_only

pytestmark = cuda_only


def batch(seed: int, dtype: torch.dtype, b: int = 12, t: int = 50, shape=(3, 20, 17)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, t, *shape), generator=g, dtype=torch.uint8)
    if seed % 4 == 0:  # many exact ties
        x = x[:, torch.randint(0, 4, (t,), generator=g)]
    ann = torch.sort(torch.randint(0, t, (b, 3), generator=g), dim=1).values
    return (x if dtype == torch.uint8 else x.to(dtype)), ann


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("distance", ["l2", "centered", "released_uint8"])
@pytest.mark.parametrize("window", ["paper", "released", "symmetric"])
def test_uint8_cuda_is_bit_identical_to_cpu(seed, distance, window):
    x, ann = batch(seed, torch.uint8)
    kw = dict(lam_rise=0.4, lam_fall=0.4, window=window, distance=distance, return_table=True)
    cpu = gamdss.reselect(x, ann[:, 0], ann[:, 1], ann[:, 2], **kw)
    gpu = gamdss.reselect(x.cuda(), ann[:, 0], ann[:, 1], ann[:, 2], **kw)
    assert gpu.onset.is_cuda and gpu.rise_table.is_cuda
    for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
        assert torch.equal(getattr(gpu, name).cpu(), getattr(cpu, name)), name
    assert torch.equal(gpu.rise_table.cpu().nan_to_num(-1), cpu.rise_table.nan_to_num(-1))
    assert torch.equal(gpu.fall_table.cpu().nan_to_num(-1), cpu.fall_table.nan_to_num(-1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("distance", ["l2", "centered"])
def test_floating_cuda_matches_reference(dtype, distance):
    x, ann = batch(3, dtype)
    packed = pack_clips(x.cuda())
    a = keyframes(ann[:, 0], ann[:, 1], ann[:, 2], packed.lengths)
    win = preset_windows("symmetric", a[:, 0], a[:, 1], a[:, 2], packed.lengths, 0.4, 0.4)
    got = gamdss.op.ops.reselect_windows(packed, a, win, distance=distance, return_table=True)
    assert_matches_reference(got, packed, a, win, distance)


def test_near_identical_float32_frames_on_cuda():
    g = torch.Generator().manual_seed(11)
    base = 250 + 5 * torch.rand((3, 32, 32), generator=g, dtype=torch.float64)
    x = (base + 1e-3 * torch.randn((6, 40, 3, 32, 32), generator=g, dtype=torch.float64)).float()
    ann = torch.tensor([[2, 20, 35]] * 6)
    packed = pack_clips(x.cuda())
    win = preset_windows("symmetric", ann[:, 0], ann[:, 1], ann[:, 2], packed.lengths, 0.3, 0.3)
    got = gamdss.op.ops.reselect_windows(packed, ann, win, return_table=True)
    assert_matches_reference(got, packed, ann, win, "l2")


@pytest.mark.parametrize("distance", ["l2", "centered", "released_uint8"])
def test_frame_distances_cuda(distance):
    x, ann = batch(5, torch.uint8)
    clips = [x[i, : 10 + 3 * i] for i in range(x.shape[0])]
    ref = torch.tensor([min(int(ann[i, 0]), 9) for i in range(len(clips))])
    want = reference.frame_distances(pack_clips(clips), ref, distance=distance)
    got = frame_distances(pack_clips([c.cuda() for c in clips]), ref, distance=distance)
    assert got.is_cuda
    assert torch.equal(got.cpu().nan_to_num(-1), want.nan_to_num(-1))


def test_metadata_on_the_gpu_and_empty_batches():
    x, ann = batch(1, torch.uint8)
    packed = pack_clips(x.cuda())
    a = keyframes(ann[:, 0], ann[:, 1], ann[:, 2], packed.lengths)
    win = preset_windows("paper", a[:, 0], a[:, 1], a[:, 2], packed.lengths, 0.3, 0.3)
    out = torch.ops.gamdss.reselect(
        packed.frames, packed.starts.cuda(), packed.lengths.cuda(), a.cuda(), win.cuda(), "l2"
    )
    want = gamdss.op.ops.reselect_windows(pack_clips(x), a, win)
    assert torch.equal(out[1].cpu(), want.apex)
    empty = gamdss.reselect(torch.zeros((0, 5, 3, 4), dtype=torch.uint8, device="cuda"), [], [], [])
    assert empty.onset.shape == (0,) and empty.onset.is_cuda


def test_bad_windows_raise_on_cuda_too():
    x = torch.zeros((12, 2), device="cuda")
    with pytest.raises(RuntimeError, match=r"clip 0: offset window \[9, 12\]"):
        torch.ops.gamdss.reselect(
            x,
            torch.tensor([0]),
            torch.tensor([12]),
            torch.tensor([[2, 6, 9]]),
            torch.tensor([[2, 4, 4, 8, 9, 12]]),
            "l2",
        )

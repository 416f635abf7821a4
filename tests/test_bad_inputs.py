"""Every invalid annotation or argument raises a Python exception that names the clip and
the value; nothing crashes; empty batches and unusual memory layouts work."""

from __future__ import annotations

import math

import pytest
import torch

import gamdss
from gamdss.op.ops import frame_distances, reselect_windows
from gamdss.op.packing import keyframes, pack_clips
from support import device_params


def clips(n=3, t=20, dtype=torch.uint8):
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (t, 3, 4, 4), generator=g).to(dtype) for _ in range(n)]


@pytest.mark.parametrize(
    "onset, apex, offset, fragment",
    [
        ([0, 5, 1], [4, 3, 2], [6, 9, 3], "clip 1: onset=5, apex=3, offset=9"),
        ([0, 1, 1], [4, 3, 8], [6, 9, 7], "clip 2: onset=1, apex=8, offset=7"),
        ([-1, 1, 1], [4, 3, 2], [6, 9, 3], "clip 0: onset=-1"),
        ([0, 1, 1], [4, 3, 2], [6, 9, 20], "offset=20 violates 0 <= onset <= apex <= offset <= T-1 with T=20"),
    ],
)
def test_invalid_annotations_name_the_clip(onset, apex, offset, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        gamdss.reselect(clips(), onset, apex, offset)


def test_invalid_annotation_uses_clip_ids():
    with pytest.raises(ValueError, match=r"clip 1 \('sub01/EP02_01f'\)"):
        gamdss.reselect(clips(), [0, 5, 1], [4, 3, 2], [6, 9, 3], clip_ids=["a", "sub01/EP02_01f", "c"])


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        (dict(lam_rise=-0.1), ValueError, "lam_rise must be a finite number >= 0, got -0.1"),
        (dict(lam_fall=math.nan), ValueError, "lam_fall must be a finite number >= 0, got nan"),
        (dict(lam_rise="0.1"), TypeError, "lam_rise must be a number"),
        (dict(window="wide"), ValueError, "unknown window preset 'wide'"),
        (dict(distance="cosine"), ValueError, "unknown distance 'cosine'"),
    ],
)
def test_invalid_arguments(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        gamdss.reselect(clips(), [0, 1, 1], [4, 3, 2], [6, 9, 3], **kwargs)


def test_released_distance_needs_uint8():
    with pytest.raises(ValueError, match="needs uint8 frames, got torch.float32"):
        gamdss.reselect(clips(dtype=torch.float32), [0, 1, 1], [4, 3, 2], [6, 9, 3], distance="released_uint8")


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64])
def test_unsupported_frame_dtype(dtype):
    bad = [torch.zeros((10, 4), dtype=dtype)]
    with pytest.raises(TypeError, match=f"frames dtype {dtype} is not supported"):
        gamdss.reselect(bad, [0], [1], [2])


def test_non_integer_keyframes():
    with pytest.raises(TypeError, match=r"apex\[1\] = 3.5 is not an integer"):
        gamdss.reselect(clips(), [0, 1, 1], [4, 3.5, 2], [6, 9, 3])
    with pytest.raises(TypeError, match="onset must hold integers, got a torch.float32 tensor"):
        gamdss.reselect(clips(), torch.tensor([0.0, 1.0, 1.0]), [4, 3, 2], [6, 9, 3])


def test_wrong_number_of_keyframes():
    with pytest.raises(ValueError, match="offset has 2 values for a batch of 3 clips"):
        gamdss.reselect(clips(), [0, 1, 1], [4, 3, 2], [6, 9])


def test_mismatched_clips():
    c = clips()
    c[2] = c[2][:, :, :2]
    with pytest.raises(ValueError, match=r"clips\[2\] has frames \(3, 2, 4\)"):
        gamdss.reselect(c, [0, 1, 1], [4, 3, 2], [6, 9, 3])
    with pytest.raises(ValueError, match=r"clips\[1\] must be \[T, ...\] with T >= 1"):
        gamdss.reselect([c[0], c[0][:0]], [0, 0], [1, 0], [2, 0])


def test_padded_lengths_checked():
    x = torch.zeros((2, 10, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"lengths\[1\] = 11 is outside \[1, 10\]"):
        gamdss.reselect(x, [0, 0], [1, 1], [2, 2], lengths=[10, 11])
    with pytest.raises(ValueError, match="clip 1: onset=0, apex=1, offset=6 .* T=5"):
        gamdss.reselect(x, [0, 0], [1, 1], [2, 6], lengths=[10, 5])


def test_empty_batches():
    for empty in (torch.zeros((0, 7, 3, 4, 4), dtype=torch.uint8), torch.zeros((0, 0, 3, 4), dtype=torch.float32)):
        out = gamdss.reselect(empty, [], [], [], return_table=True)
        assert out.onset.shape == (0,) and out.onset.dtype == torch.int64
        assert out.rise_distance.shape == (0,) and out.rise_distance.dtype == torch.float64
        assert out.rise_table.shape == (0, 0, 0) and out.fall_table.shape == (0, 0)
    curves = gamdss.frame_distance_curves(torch.zeros((0, 4, 2), dtype=torch.uint8), [])
    assert curves.shape == (0, 0)


def low_level(windows, ann=(2, 6, 9), lengths=(12,), starts=(0,), table=(0, 0, 0), n=12):
    frames = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    return torch.ops.gamdss.reselect(
        frames, torch.tensor(starts), torch.tensor(lengths), torch.tensor([ann]), torch.tensor([windows]), "l2", *table
    )


@pytest.mark.parametrize(
    "windows, fragment",
    [
        ((2, 4, 4, 8, 9, 12), r"clip 0: offset window \[9, 12\] is not inside \[0, 11\]"),
        ((-1, 4, 4, 8, 9, 10), r"clip 0: onset window \[-1, 4\]"),
        ((2, 4, 8, 4, 9, 10), r"clip 0: apex window \[8, 4\] is not inside \[0, 11\] with lo <= hi"),
        (
            (6, 8, 2, 5, 9, 10),
            "clip 0: no rise pair with onset <= apex: onset window starts at 6 after the apex window ends at 5",
        ),
    ],
)
def test_op_rejects_bad_windows(windows, fragment):
    with pytest.raises(RuntimeError, match=fragment):
        low_level(windows)


def test_op_rejects_bad_layout_and_tables():
    w = (2, 4, 4, 8, 9, 10)
    with pytest.raises(RuntimeError, match=r"clip 0 spans frames \[5, 17\) but frames has 12 frames"):
        low_level(w, starts=(5,))
    with pytest.raises(RuntimeError, match="clip 0 has length 0"):
        low_level(w, lengths=(0,))
    with pytest.raises(RuntimeError, match=r"clip 0: annotation onset=7, apex=6, offset=9"):
        low_level(w, ann=(7, 6, 9))
    with pytest.raises(RuntimeError, match=r"table sizes \(2, 5, 2\) are smaller than clip 0's windows \(3, 5, 2\)"):
        low_level(w, table=(2, 5, 2))
    frames = torch.zeros((12, 2))
    with pytest.raises(RuntimeError, match="annotations must have shape"):
        torch.ops.gamdss.reselect(
            frames, torch.tensor([0]), torch.tensor([12]), torch.tensor([1, 2, 3]), torch.tensor([w]), "l2"
        )
    with pytest.raises(RuntimeError, match="starts must be int64"):
        torch.ops.gamdss.reselect(
            frames,
            torch.tensor([0], dtype=torch.int32),
            torch.tensor([12]),
            torch.tensor([[1, 2, 3]]),
            torch.tensor([w]),
            "l2",
        )
    with pytest.raises(RuntimeError, match="unknown distance 'L2'"):
        torch.ops.gamdss.reselect(
            frames, torch.tensor([0]), torch.tensor([12]), torch.tensor([[1, 2, 3]]), torch.tensor([w]), "L2"
        )
    with pytest.raises(RuntimeError, match="frames must be \\[N, ...\\]"):
        torch.ops.gamdss.reselect(
            torch.zeros(12), torch.tensor([0]), torch.tensor([12]), torch.tensor([[1, 2, 3]]), torch.tensor([w]), "l2"
        )
    with pytest.raises(RuntimeError, match="frames dtype Int is not supported"):
        torch.ops.gamdss.reselect(
            torch.zeros((12, 2), dtype=torch.int32),
            torch.tensor([0]),
            torch.tensor([12]),
            torch.tensor([[1, 2, 3]]),
            torch.tensor([w]),
            "l2",
        )


def test_frame_distances_rejects_bad_reference():
    packed = pack_clips(clips())
    with pytest.raises(RuntimeError, match=r"clip 2: reference frame 20 is outside \[0, 19\]"):
        frame_distances(packed, torch.tensor([0, 1, 20]))
    with pytest.raises(ValueError, match="clip 1: reference=-1 is outside"):
        gamdss.frame_distance_curves(clips(), [0, -1, 3])


@pytest.mark.parametrize("device", device_params())
def test_non_contiguous_and_channels_last_frames_give_the_same_result(device):
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (4, 30, 3, 8, 8), generator=g, dtype=torch.uint8)
    args = ([2, 0, 5, 1], [14, 10, 20, 15], [25, 22, 29, 28])
    want = gamdss.reselect(x, *args, lam_rise=0.3, lam_fall=0.3, return_table=True)
    variants = {
        "channels_last": x.reshape(120, 3, 8, 8).contiguous(memory_format=torch.channels_last).reshape(4, 30, 3, 8, 8),
        "strided_elements": torch.stack([x, x], dim=-1)[..., 1],
        "transposed_frames": x.transpose(3, 4).contiguous().transpose(3, 4),
        "frames_of_a_wider_buffer": torch.stack([x, 255 - x], dim=2)[:, :, 0],
    }
    for name, v in variants.items():
        assert torch.equal(v, x), name
        got = gamdss.reselect(v.to(device), *args, lam_rise=0.3, lam_fall=0.3, return_table=True)
        for field in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
            assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), (name, field)


def test_op_reads_frames_with_a_stride_along_dim0_without_copy():
    g = torch.Generator().manual_seed(9)
    big = torch.randint(0, 256, (20, 2, 3, 5), generator=g, dtype=torch.uint8)
    frames = big[:, 1]  # dense per frame, stride 30 elements between frames
    packed = pack_clips([frames])
    ann = keyframes([1], [8], [15], packed.lengths)
    w = torch.tensor([[1, 4, 5, 12, 15, 19]])
    got = reselect_windows(packed, ann, w)
    want = reselect_windows(pack_clips([frames.contiguous()]), ann, w)
    assert all(torch.equal(a, b) for a, b in zip(got[:6], want[:6]))


def test_meta_frames_give_shapes_only():
    frames = torch.zeros((12, 2), device="meta")
    out = torch.ops.gamdss.reselect(
        frames,
        torch.tensor([0]),
        torch.tensor([12]),
        torch.tensor([[1, 2, 3]]),
        torch.tensor([[1, 2, 2, 4, 3, 5]]),
        "l2",
        2,
        3,
        3,
    )
    assert [tuple(t.shape) for t in out] == [(1,), (1,), (1,), (1,), (1,), (1, 2, 3), (1, 3)]
    assert all(t.device.type == "meta" for t in out)


def test_an_index_tensor_on_the_meta_device_with_real_frames_is_refused():
    """The dispatcher follows the meta index tensor to the shape-only implementation, which must
    not hand back uninitialised tensors as if they were results."""
    frames = torch.randint(0, 256, (5, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    st, ln = torch.tensor([0]), torch.tensor([5])
    ann, win = torch.tensor([[0, 2, 4]]), torch.tensor([[0, 1, 1, 3, 3, 4]])
    with pytest.raises(RuntimeError, match="frames are on cpu but an index tensor is on the meta device"):
        torch.ops.gamdss.reselect(frames, st, ln, ann.to("meta"), win, "l2")
    with pytest.raises(RuntimeError, match="frames are on cpu but an index tensor is on the meta device"):
        torch.ops.gamdss.frame_distances(frames, st.to("meta"), ln, torch.tensor([0]), "l2", 5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_the_windows_wrapper_refuses_non_integer_indices(dtype):
    """Float keyframes are not truncated onto other frames (the op itself takes int64 only)."""
    packed = pack_clips(clips())
    ann = keyframes([1, 2, 3], [8, 9, 10], [15, 16, 17], packed.lengths)
    w = torch.tensor([[1, 3, 5, 10, 15, 19]] * 3)
    with pytest.raises(TypeError, match=f"annotations must hold integers, got a {dtype}"):
        reselect_windows(packed, ann.to(dtype), w)
    with pytest.raises(TypeError, match=f"windows must hold integers, got a {dtype}"):
        reselect_windows(packed, ann, w.to(dtype))
    with pytest.raises(TypeError, match=f"reference must hold integers, got a {dtype}"):
        frame_distances(packed, torch.tensor([0, 1, 2]).to(dtype))
    assert reselect_windows(packed, ann.to(torch.int32), w.to(torch.int16)).apex.tolist() == (
        reselect_windows(packed, ann, w).apex.tolist()
    )


def test_the_windows_wrapper_refuses_tables_over_the_limit(monkeypatch):
    import gamdss.op.ops as ops

    packed = pack_clips(clips())
    ann = keyframes([1, 2, 3], [8, 9, 10], [15, 16, 17], packed.lengths)
    w = torch.tensor([[1, 3, 5, 10, 15, 19]] * 3)  # 3 x 6 rise and 5 fall candidates per clip
    monkeypatch.setattr(ops, "MAX_TABLE_BYTES", 8 * 3 * (3 * 6 + 5) - 1)
    with pytest.raises(ValueError, match="return_table=True would allocate"):
        reselect_windows(packed, ann, w, return_table=True)
    assert reselect_windows(packed, ann, w).rise_table is None  # no table asked: no limit


def test_frames_requiring_grad_are_accepted():
    x = torch.rand((1, 12, 4), requires_grad=True)
    out = gamdss.reselect(x, [1], [5], [9], lam_rise=0.5)
    assert out.onset.shape == (1,)

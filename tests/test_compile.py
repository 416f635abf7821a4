"""The ops pass torch.library.opcheck and trace under torch.compile(fullgraph=True)."""

from __future__ import annotations

import pytest
import torch

import gamdss  # noqa: F401
from support import device_params


def samples(device: str):
    g = torch.Generator().manual_seed(0)
    frames_u8 = torch.randint(0, 256, (30, 3, 5, 5), generator=g, dtype=torch.uint8)
    starts = torch.tensor([0, 12])
    lengths = torch.tensor([12, 18])
    ann = torch.tensor([[1, 5, 9], [0, 8, 15]])
    # Equal window sizes with every onset <= every apex: the tables have no NaN, which
    # opcheck's eager-versus-traced comparison would count as a difference.
    win = torch.tensor([[1, 3, 3, 7, 9, 11], [0, 2, 6, 10, 13, 15]])
    for dtype in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
        frames = frames_u8.to(dtype).to(device)
        for distance in ("l2", "centered") + (("released_uint8",) if dtype == torch.uint8 else ()):
            yield (frames, starts, lengths, ann, win, distance, 0, 0, 0)
            yield (frames, starts, lengths, ann, win, distance, 3, 5, 3)


@pytest.mark.parametrize("device", device_params())
def test_opcheck_reselect(device):
    for args in samples(device):
        torch.library.opcheck(torch.ops.gamdss.reselect.default, args)


@pytest.mark.parametrize("device", device_params())
def test_opcheck_frame_distances(device):
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (30, 3, 5, 5), generator=g, dtype=torch.uint8).to(device)
    for dtype in (torch.uint8, torch.float32, torch.float64):
        # Equal lengths: no NaN padding in the output (see samples()).
        args = (frames.to(dtype), torch.tensor([0, 15]), torch.tensor([15, 15]), torch.tensor([3, 0]), "l2", 15)
        torch.library.opcheck(torch.ops.gamdss.frame_distances.default, args)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("device", device_params())
def test_torch_compile_fullgraph(device, backend):
    g = torch.Generator().manual_seed(2)
    frames = torch.rand((30, 3, 5, 5), generator=g).to(device)
    starts, lengths = torch.tensor([0, 12]), torch.tensor([12, 18])
    ann = torch.tensor([[1, 5, 9], [0, 8, 15]])
    win = torch.tensor([[1, 3, 3, 7, 9, 11], [0, 2, 6, 10, 13, 17]])

    def pipeline(x):
        x = x * 2.0 + 1.0  # something for the compiler to fuse around the op
        out = torch.ops.gamdss.reselect(x, starts, lengths, ann, win, "centered", 3, 5, 5)
        curves = torch.ops.gamdss.frame_distances(x, starts, lengths, out[0], "centered", 18)
        return out[0], out[1], out[2], out[3] * 2, curves

    torch._dynamo.reset()
    compiled = torch.compile(pipeline, fullgraph=True, backend=backend)
    for got, want in zip(compiled(frames), pipeline(frames)):
        torch.testing.assert_close(got, want, equal_nan=True)

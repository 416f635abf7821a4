"""Hypothesis strategies: random batches of clips with valid annotations."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
FRAME_SHAPES = ((1,), (5,), (3, 4, 4), (2, 3, 5), (3, 7, 9), (40, 41))
CONTENTS = ("random", "duplicates", "near_identical", "constant")


@dataclass
class Case:
    clips: list[torch.Tensor]
    onset: list[int]
    apex: list[int]
    offset: list[int]
    lam_rise: float
    lam_fall: float
    window: str
    distance: str
    as_padded: bool
    layout: str


def make_frames(gen: torch.Generator, n: int, shape: tuple[int, ...], dtype: torch.dtype, content: str) -> torch.Tensor:
    """``[n, *shape]`` frames of ``dtype``.

    random: uniform values; duplicates: drawn from a pool of 3 distinct frames (many exact
    ties); near_identical: values near 255 differing by about 1e-3 (floating) or by 0/1
    (uint8); constant: every frame equal (all distances 0).
    """
    if content == "duplicates":
        pool = make_frames(gen, 3, shape, dtype, "random")
        return pool[torch.randint(0, 3, (n,), generator=gen)]
    if content == "constant":
        return make_frames(gen, 1, shape, dtype, "random").expand(n, *shape).clone()
    if dtype == torch.uint8:
        if content == "near_identical":
            return (254 + torch.randint(0, 2, (n, *shape), generator=gen)).to(torch.uint8)
        return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
    if content == "near_identical":
        base = 250.0 + 5.0 * torch.rand(shape, generator=gen, dtype=torch.float64)
        x = base + 1e-3 * torch.randn((n, *shape), generator=gen, dtype=torch.float64)
    else:
        x = 255.0 * torch.rand((n, *shape), generator=gen, dtype=torch.float64)
    return x.to(dtype)


@st.composite
def cases(draw, dtypes=DTYPES, max_clips: int = 4, max_len: int = 24) -> Case:
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.sampled_from(FRAME_SHAPES))
    content = draw(st.sampled_from(CONTENTS))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    n_clips = draw(st.integers(0, max_clips))
    lengths = [draw(st.integers(1, max_len)) for _ in range(n_clips)]
    onset, apex, offset = [], [], []
    for t in lengths:
        o, a, f = sorted(draw(st.lists(st.integers(0, t - 1), min_size=3, max_size=3)))
        onset.append(o)
        apex.append(a)
        offset.append(f)
    clips = [make_frames(gen, t, shape, dtype, content) for t in lengths]
    distances = ["l2", "centered"] + (["released_uint8"] if dtype == torch.uint8 else [])
    layouts = ["contiguous", "strided"] + (["channels_last"] if len(shape) == 3 else [])
    return Case(
        clips=clips,
        onset=onset,
        apex=apex,
        offset=offset,
        lam_rise=draw(st.floats(0.0, 0.5)),
        lam_fall=draw(st.floats(0.0, 0.5)),
        window=draw(st.sampled_from(["paper", "released", "symmetric"])),
        distance=draw(st.sampled_from(distances)),
        as_padded=draw(st.booleans()) and n_clips > 0,
        layout=draw(st.sampled_from(layouts)),
    )


def padded(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T_max, ...]`` with garbage (the last frame repeated inverted) past each length."""
    t_max = max(c.shape[0] for c in clips)
    out = []
    for c in clips:
        pad = c[-1:].expand(t_max - c.shape[0], *c.shape[1:])
        out.append(torch.cat([c, 255 - pad if c.dtype == torch.uint8 else -pad]))
    return torch.stack(out), torch.tensor([c.shape[0] for c in clips])


def apply_layout(x: torch.Tensor, layout: str, frame_dims: int) -> torch.Tensor:
    """Same values, other memory layouts: channels-last frames, or a strided view (every
    other element of a larger buffer, so frames are not dense in memory)."""
    if layout == "channels_last" and frame_dims == 3:
        perm = list(range(x.dim() - 3)) + [x.dim() - 2, x.dim() - 1, x.dim() - 3]
        inv = [perm.index(i) for i in range(x.dim())]
        return x.permute(perm).contiguous().permute(inv)
    if layout == "strided":
        big = torch.stack([x, x], dim=-1)
        return big[..., 0]
    return x

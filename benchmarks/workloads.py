"""Benchmark workloads of keyframe reselection: definitions and builders.

Three workloads, each in uint8 and float32 (float32 frames hold the same values as the
uint8 frames, converted):

- ``casme2``: CASME II-like, 64 clips of 80 frames, apex-onset ~ 30, offset-apex ~ 25, lambda 0.1.
- ``samm``: SAMM-like, 32 clips of 120 frames, apex-onset ~ 35, offset-apex ~ 35, lambda 0.1.
- ``wide``: 16 clips of 200 frames, apex-onset ~ 60, offset-apex ~ 60, lambda 0.25.

Onsets and spans are drawn with a fixed seed, uniformly within ``jitter`` frames of the
means; frames are uniform random uint8. The environment variable ``GAMDSS_BENCH_SCALE``
picks the size: ``full`` (default; 3x224x224 frames) or ``small`` (a smoke test: at most 4
clips of 3x16x16 frames, same clip lengths and spans, so the windows keep their shape).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import torch

import gamdss.op.packing
import gamdss.op.windows

SCALES = ("full", "small")
DTYPES = {"uint8": torch.uint8, "float32": torch.float32}
SEED = 20240607


@dataclass(frozen=True)
class Workload:
    name: str
    clips: int
    frames: int  # T, every clip has T frames
    onset_mean: int  # mean annotated onset (clip-relative)
    rise_mean: int  # mean apex - onset
    fall_mean: int  # mean offset - apex
    lam: float  # lambda_rise = lambda_fall
    jitter: int = 3  # onset and spans are uniform in [mean - jitter, mean + jitter]
    frame_shape: tuple[int, ...] = (3, 224, 224)
    description: str = ""


WORKLOADS = (
    Workload(
        "casme2",
        clips=64,
        frames=80,
        onset_mean=10,
        rise_mean=30,
        fall_mean=25,
        lam=0.1,
        description="CASME II-like: 64 clips x 80 frames, apex-onset ~30, offset-apex ~25, lambda 0.1",
    ),
    Workload(
        "samm",
        clips=32,
        frames=120,
        onset_mean=15,
        rise_mean=35,
        fall_mean=35,
        lam=0.1,
        description="SAMM-like: 32 clips x 120 frames, apex-onset ~35, offset-apex ~35, lambda 0.1",
    ),
    Workload(
        "wide",
        clips=16,
        frames=200,
        onset_mean=20,
        rise_mean=60,
        fall_mean=60,
        lam=0.25,
        description="wide: 16 clips x 200 frames, apex-onset ~60, offset-apex ~60, lambda 0.25",
    ),
)
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}


def scale_from_env() -> str:
    scale = os.environ.get("GAMDSS_BENCH_SCALE", "full").strip().lower() or "full"
    if scale not in SCALES:
        raise ValueError(f"GAMDSS_BENCH_SCALE={scale!r}: expected one of {SCALES}")
    return scale


def scaled(workload: Workload, scale: str) -> Workload:
    """The workload at ``scale`` (``small`` keeps T and the spans, shrinks clips and frames)."""
    if scale == "full":
        return workload
    if scale == "small":
        return replace(workload, clips=min(workload.clips, 4), frame_shape=(3, 16, 16))
    raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")


@dataclass
class Case:
    """One built workload in one dtype, ready for every method.

    x: padded frames ``[B, T, *frame_shape]``; packed: ``gamdss.op.packing.pack_clips(x)`` (a
    view); ann: int64 ``[B, 3]`` (onset, apex, offset); win: int64 ``[B, 6]`` paper windows.
    ``expected`` is filled in by the harness with the op's selection (for the checks).
    """

    workload: Workload
    dtype_name: str
    x: torch.Tensor
    packed: gamdss.op.packing.PackedClips
    ann: torch.Tensor
    win: torch.Tensor
    expected: object = field(default=None, repr=False)

    @property
    def lam(self) -> float:
        return self.workload.lam

    @property
    def batch(self) -> int:
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def label(self) -> str:
        return f"{self.workload.name}-{self.dtype_name}"

    @property
    def frame_bytes(self) -> int:
        return self.x[0, 0].numel() * self.x.element_size()

    def subset(self, clips: int | None) -> Case:
        """The first ``clips`` clips (views; the whole case if ``clips`` is None or >= B)."""
        if clips is None or clips >= self.batch:
            return self
        x = self.x[:clips]
        packed = gamdss.op.packing.pack_clips(x, self.packed.lengths[:clips])
        exp = None if self.expected is None else type(self.expected)(*(t[:clips] for t in self.expected))
        return Case(self.workload, self.dtype_name, x, packed, self.ann[:clips], self.win[:clips], exp)

    def to(self, device: str | torch.device) -> Case:
        """The same case with frames on ``device`` (annotations and windows stay on the CPU)."""
        x = self.x.to(device)
        packed = gamdss.op.packing.pack_clips(x, self.packed.lengths)
        return Case(self.workload, self.dtype_name, x, packed, self.ann, self.win, self.expected)


def draw_annotations(workload: Workload, seed: int = SEED) -> torch.Tensor:
    """int64 ``[B, 3]`` (onset, apex, offset), seeded, jittered around the workload's means."""
    g = torch.Generator().manual_seed(seed + 1000 * WORKLOADS.index(WORKLOAD_BY_NAME[workload.name]))
    j = workload.jitter

    def draw(mean: int) -> torch.Tensor:
        return torch.randint(mean - j, mean + j + 1, (workload.clips,), generator=g, dtype=torch.int64)

    onset = draw(workload.onset_mean).clamp_min(0)
    apex = onset + draw(workload.rise_mean).clamp_min(0)
    offset = (apex + draw(workload.fall_mean).clamp_min(0)).clamp_max(workload.frames - 1)
    return torch.stack([onset, apex, offset], dim=1)


def draw_frames(workload: Workload, dtype: torch.dtype, seed: int = SEED) -> torch.Tensor:
    """Padded frames ``[B, T, *frame_shape]``: seeded uniform uint8, converted for float32."""
    g = torch.Generator().manual_seed(seed + 1 + 1000 * WORKLOADS.index(WORKLOAD_BY_NAME[workload.name]))
    shape = (workload.clips, workload.frames, *workload.frame_shape)
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    if dtype == torch.uint8:
        return x
    out = torch.empty(shape, dtype=dtype)
    out.copy_(x)
    return out


def build_case(
    workload: Workload | str, dtype_name: str, scale: str = "full", device: str | torch.device = "cpu"
) -> Case:
    """Build a workload at ``scale`` in ``dtype_name`` ("uint8" or "float32") on ``device``."""
    if isinstance(workload, str):
        workload = WORKLOAD_BY_NAME[workload]
    workload = scaled(workload, scale)
    x = draw_frames(workload, DTYPES[dtype_name])
    if torch.device(device).type != "cpu":
        x = x.to(device)
    packed = gamdss.op.packing.pack_clips(x)
    a = draw_annotations(workload)
    ann = gamdss.op.packing.keyframes(a[:, 0], a[:, 1], a[:, 2], packed.lengths)
    win = gamdss.op.windows.preset_windows(
        "paper", ann[:, 0], ann[:, 1], ann[:, 2], packed.lengths, workload.lam, workload.lam
    )
    return Case(workload, dtype_name, x, packed, ann, win)


def unique_candidate_frames(win: torch.Tensor) -> int:
    """Number of distinct candidate frames: the union of the onset, apex and offset windows
    of each clip, summed over clips."""
    total = 0
    for o_lo, o_hi, a_lo, a_hi, f_lo, f_hi in win.tolist():
        total += len(set(range(o_lo, o_hi + 1)) | set(range(a_lo, a_hi + 1)) | set(range(f_lo, f_hi + 1)))
    return total


def unique_candidate_bytes(case: Case) -> int:
    """Bytes of the unique candidate frames of ``case`` (what the op must read at least once)."""
    return unique_candidate_frames(case.win) * case.frame_bytes


def candidate_pairs(win: torch.Tensor) -> int:
    """Number of frame pairs the search scores: rise pairs (o <= a) plus offset candidates."""
    total = 0
    for o_lo, o_hi, a_lo, a_hi, f_lo, f_hi in win.tolist():
        total += sum(max(0, a_hi - max(a_lo, o) + 1) for o in range(o_lo, o_hi + 1))
        total += f_hi - f_lo + 1
    return total

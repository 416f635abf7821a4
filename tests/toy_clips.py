"""Small generated clips with known keyframes, for fast tests of the op.

Each clip is a static random texture on which a smooth blob brightens from the true onset
to the true apex and fades out by the true offset. They are not faces: the realistic
synthetic micro-expressions are :mod:`gamdss.data.synthetic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gamdss.data.synthetic.profile import intensity_profile


@dataclass(frozen=True)
class ToyClips:
    """frames uint8 ``[B, T, 3, H, W]``; true and annotated keyframes int64 ``[B, 3]``
    (onset, apex, offset), clip-relative."""

    frames: torch.Tensor
    truth: torch.Tensor
    annotated: torch.Tensor


def make_toy_clips(
    n_clips: int = 4,
    length: int = 60,
    size: int = 64,
    seed: int = 0,
    annotation_error: int = 3,
    amplitude: float = 12.0,
) -> ToyClips:
    """``n_clips`` clips of ``length`` frames of ``3 x size x size`` uint8.

    True onset in [5, 10], apex 15-25 frames later, offset 12-20 frames after the apex; the
    blob's brightness (peak ``amplitude`` grey levels) rises linearly to the apex and falls
    linearly to the offset. Annotations add integer errors in ``[-annotation_error,
    annotation_error]`` to the apex and offset (kept ordered). Deterministic from ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    frames, truth, annotated = [], [], []
    for _ in range(n_clips):
        onset = int(torch.randint(5, 11, (1,), generator=g))
        apex = onset + int(torch.randint(15, 26, (1,), generator=g))
        offset = min(length - 1, apex + int(torch.randint(12, 21, (1,), generator=g)))
        profile = torch.from_numpy(intensity_profile(length, onset, apex, offset, shape="linear")).float()
        cy, cx = (torch.rand(2, generator=g) * 0.5 + 0.25) * size
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 8) ** 2))
        texture = 60 + 120 * torch.rand((3, size, size), generator=g)
        clip = texture[None] + amplitude * profile[:, None, None, None] * blob[None, None]
        frames.append(clip.round().clamp(0, 255).to(torch.uint8))
        truth.append([onset, apex, offset])
        err = torch.randint(-annotation_error, annotation_error + 1, (2,), generator=g).tolist()
        a_apex = min(max(onset, apex + err[0]), length - 1)
        a_off = min(max(a_apex, offset + err[1]), length - 1)
        annotated.append([onset, a_apex, a_off])
    return ToyClips(torch.stack(frames), torch.tensor(truth), torch.tensor(annotated))

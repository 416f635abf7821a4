"""Synthetic micro-expression clips with known keyframes, and datasets of them.

A clip is a real face photograph (:mod:`.faces`) deformed by an action-unit field
(:mod:`.action_units`) whose strength follows an intensity profile (:mod:`.profile`) from the
true onset through the true apex to the true offset, filmed by a simulated camera
(:mod:`.camera`: head motion, illumination flicker, sensor noise, JPEG), with eye blinks
(:mod:`.blinks`). Everything is drawn from the seed: the same seed gives byte-identical
frames. Each confounder (flicker, blinks, rotation drift, scale drift) draws from its own random
stream, so switching one on changes nothing else about the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from tqdm.auto import tqdm

from gamdss.settings.yaml_io import YamlDataclass

from .action_units import CASME2_EMOTIONS, EMOTION_AUS, deformation_field
from .bias import BiasModel, get_bias
from .blinks import blink_closure, draw_blink, lid_colours
from .camera import add_sensor_noise, flicker_offsets, head_motion_path, jpeg_roundtrip, pose_drift_path
from .faces import FaceImage, make_face
from .profile import PROFILE_SHAPES, intensity_profile

_RANGES = ("rise_ms", "fall_ms", "pad_before_ms", "pad_after_ms", "amplitude_px", "blink_ms")


@dataclass(frozen=True)
class SyntheticConfig(YamlDataclass):
    """How synthetic clips are made. Ranges ``(low, high)`` are drawn uniformly per clip.

    Attributes:
        fps: frame rate (CASME II and SAMM: 200; CASME 60; MMEW 90; CAS(ME)^3 30).
        size: frame (H, W) in pixels.
        rise_ms: onset-to-apex duration range, ms (at least one frame).
        fall_ms: apex-to-offset duration range, ms (at least one frame).
        pad_before_ms, pad_after_ms: neutral frames before the onset and after the offset, ms
            (at least one frame each).
        amplitude_px: largest skin displacement at the apex, px ("micro": 0.5-3).
        profile: intensity shape, ``linear``, ``cosine`` or ``gamma`` (see :mod:`.profile`).
        rise_power, fall_power: asymmetry exponents of the profile's halves.
        noise_sd: sensor noise sd, grey levels (0: none).
        jpeg_quality: JPEG quality 1-100 applied to every frame, or None (no compression).
        head_motion_px: head wander, px after one second (random walk; 0: still head).
        flicker_gl: illumination flicker amplitude, grey levels (0: none).
        flicker_hz: light pulse frequency, Hz (100 for 50 Hz mains).
        head_rotation_deg: in-plane head rotation drift, degrees after one second (random walk).
        head_scale: scale drift (head towards/away from the camera), relative sd after one
            second (0.01: 1%).
        blink_probability: chance that a clip has one eye blink (0: never), starting anywhere
            from the first to the last frame (so also inside candidate windows).
        blink_ms: blink duration range (lids closing and reopening), ms.
    """

    fps: float = 200.0
    size: tuple[int, int] = (160, 160)
    rise_ms: tuple[float, float] = (50.0, 150.0)
    fall_ms: tuple[float, float] = (80.0, 250.0)
    pad_before_ms: tuple[float, float] = (30.0, 100.0)
    pad_after_ms: tuple[float, float] = (30.0, 100.0)
    amplitude_px: tuple[float, float] = (1.0, 2.5)
    profile: str = "cosine"
    rise_power: float = 1.0
    fall_power: float = 1.0
    noise_sd: float = 1.0
    jpeg_quality: int | None = 90
    head_motion_px: float = 0.2
    flicker_gl: float = 0.0
    flicker_hz: float = 100.0
    head_rotation_deg: float = 0.0
    head_scale: float = 0.0
    blink_probability: float = 0.0
    blink_ms: tuple[float, float] = (100.0, 150.0)

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"SyntheticConfig.{name}: {why}, got {getattr(self, name)!r}")

        size = tuple(int(v) for v in self.size)
        object.__setattr__(self, "size", size)
        if len(size) != 2 or min(size) < 16:
            fail("size", "must be (H, W) with both at least 16 px")
        for name in _RANGES:
            value = getattr(self, name)
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                fail(name, "must be a (low, high) pair of numbers")
            object.__setattr__(self, name, (lo, hi))
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
                fail(name, "must satisfy 0 <= low <= high")
        if not (np.isfinite(self.fps) and self.fps > 0):
            fail("fps", "must be > 0")
        if self.amplitude_px[0] <= 0:
            fail("amplitude_px", "must be > 0")
        if self.profile not in PROFILE_SHAPES:
            fail("profile", f"must be one of {PROFILE_SHAPES}")
        for name in ("rise_power", "fall_power"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                fail(name, "must be > 0")
        if not 0.0 <= self.blink_probability <= 1.0:
            fail("blink_probability", "must be in [0, 1]")
        if self.blink_ms[0] <= 0:
            fail("blink_ms", "must be > 0")
        for name in ("noise_sd", "head_motion_px", "flicker_gl", "flicker_hz", "head_rotation_deg", "head_scale"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                fail(name, "must be >= 0")
        if self.jpeg_quality is not None:
            object.__setattr__(self, "jpeg_quality", int(self.jpeg_quality))
            if not 1 <= self.jpeg_quality <= 100:
                fail("jpeg_quality", "must be in 1..100 or None")


@dataclass(frozen=True)
class SyntheticClip:
    """One generated clip.

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB (torch).
        truth: true (onset, apex, offset), clip-relative 0-based frame indices.
        emotion: generator emotion (see :data:`~.action_units.EMOTION_AUS`).
        aus: the action units animated.
        fps: frame rate.
        intensity: float64 ``[T]`` (numpy), expression intensity in [0, 1]; 1 only at the apex.
        peak_displacement_px: float64 ``[T]``, the largest skin displacement of each frame
            relative to the neutral face, px (head motion excluded): ``amplitude_px * intensity``.
        head_motion_px: float64 ``[T, 2]``, rigid face translation (dx, dy), px.
        flicker_gl: float64 ``[T]``, global brightness offset, grey levels.
        head_rotation_deg: float64 ``[T]``, in-plane rotation about the image centre, degrees.
        head_scale: float64 ``[T]``, scale about the image centre (1: none).
        blink_closure: float64 ``[T]``, eyelid closure in ``[0, 1]`` (0: open, no blink).
        amplitude_px: displacement at the apex, px.
        subject: subject number (face, see :mod:`.faces`); photo: its photograph.
        seed: the seed that made it; config: the config.
    """

    frames: torch.Tensor
    truth: tuple[int, int, int]
    emotion: str
    aus: tuple[str, ...]
    fps: float
    intensity: np.ndarray
    peak_displacement_px: np.ndarray
    head_motion_px: np.ndarray
    flicker_gl: np.ndarray
    amplitude_px: float
    subject: int
    photo: str
    seed: int
    config: SyntheticConfig = field(repr=False)
    head_rotation_deg: np.ndarray | None = field(default=None, repr=False)
    head_scale: np.ndarray | None = field(default=None, repr=False)
    blink_closure: np.ndarray | None = field(default=None, repr=False)

    @property
    def blink_frames(self) -> tuple[int, int] | None:
        """First and last frame with the lids moving (closure > 0), or None without a blink."""
        if self.blink_closure is None or not (self.blink_closure > 0).any():
            return None
        idx = np.flatnonzero(self.blink_closure > 0)
        return int(idx[0]), int(idx[-1])

    def confounders(self) -> dict[str, object]:
        """What was switched on for this clip, as plain values (for result tables and YAML)."""
        c = self.config
        return {
            "noise_sd": c.noise_sd,
            "jpeg_quality": c.jpeg_quality,
            "flicker_gl": c.flicker_gl,
            "head_motion_px": c.head_motion_px,
            "head_rotation_deg": c.head_rotation_deg,
            "head_scale": c.head_scale,
            "rise_power": c.rise_power,
            "fall_power": c.fall_power,
            "blink_frames": self.blink_frames,
        }

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def onset(self) -> int:
        """True onset, clip-relative 0-based frame index."""
        return self.truth[0]

    @property
    def apex(self) -> int:
        """True apex, clip-relative 0-based frame index."""
        return self.truth[1]

    @property
    def offset(self) -> int:
        """True offset, clip-relative 0-based frame index."""
        return self.truth[2]


@dataclass(frozen=True)
class SyntheticSample:
    """A clip of a synthetic dataset with its true and annotated keyframes.

    ``subject`` is the dataset's subject id (``"01"``...), ``subject_index`` the 0-based subject
    number (face), ``clip_id`` unique in the dataset; ``annotated`` the clip-relative keyframes
    the bias model ``bias`` produced from ``clip.truth``.
    """

    subject: str
    subject_index: int
    clip_id: str
    clip: SyntheticClip
    annotated: tuple[int, int, int]
    bias: str

    @property
    def truth(self) -> tuple[int, int, int]:
        """The clip's true (onset, apex, offset), clip-relative 0-based frame indices."""
        return self.clip.truth


_FLICKER_STREAM = 0xF11C
_POSE_STREAM = 0x9053
_SCALE_STREAM = 0x5CA1
_BLINK_STREAM = 0xB11C


@lru_cache(maxsize=64)
def _face(subject: int, size: tuple[int, int]) -> FaceImage:
    """``make_face``, cached: its arrays are made read-only, since every clip of the subject
    and size shares them (a write would change the clips made after it)."""
    face = make_face(subject, size)
    face.image.setflags(write=False)
    face.landmarks.setflags(write=False)
    return face


def _frames(ms: float, fps: float) -> int:
    return max(1, int(round(ms * fps / 1000.0)))


def render_frames(
    face: np.ndarray,
    field_px: torch.Tensor,
    displacement: np.ndarray,
    head: np.ndarray,
    angle_deg: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> torch.Tensor:
    """Warp ``face`` (uint8 ``[H, W, 3]``) once per frame: float32 ``[T, 3, H, W]``, grey levels.

    Frame t shows the face with skin at ``x`` moved to ``x + displacement[t] * field_px(x) +
    head[t]`` (backward warp with bicubic interpolation, border pixels repeated); with
    ``angle_deg`` / ``scale`` (``[T]``) the face is also rotated and scaled about the image
    centre, before the translation.
    """
    h, w = face.shape[:2]
    img = torch.from_numpy(face.astype(np.float32)).permute(2, 0, 1)[None]  # a copy: the face may be read-only
    t = len(displacement)
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, 2] (x, y)
    disp = torch.as_tensor(displacement, dtype=torch.float32)[:, None, None, None]
    shift = torch.as_tensor(head, dtype=torch.float32)[:, None, None, :]
    if angle_deg is None and scale is None:
        src = base[None] - disp * field_px[None] - shift  # [T, H, W, 2]
    else:
        centre = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float32)
        theta = torch.as_tensor(np.zeros(t) if angle_deg is None else np.deg2rad(angle_deg), dtype=torch.float32)
        s = torch.as_tensor(np.ones(t) if scale is None else scale, dtype=torch.float32)
        rel = base[None] - shift - centre  # [T, H, W, 2]: undo the translation, then the rotation and scale
        cos, sin = (torch.cos(theta) / s)[:, None, None], (torch.sin(theta) / s)[:, None, None]
        unrotated = torch.stack([cos * rel[..., 0] + sin * rel[..., 1], -sin * rel[..., 0] + cos * rel[..., 1]], -1)
        src = unrotated + centre - disp * field_px[None]
    grid = torch.empty_like(src)
    grid[..., 0] = src[..., 0] * (2.0 / w) - 1.0
    grid[..., 1] = src[..., 1] * (2.0 / h) - 1.0
    return torch.nn.functional.grid_sample(
        img.expand(t, -1, -1, -1), grid, mode="bicubic", padding_mode="border", align_corners=False
    )


def make_clip(config: SyntheticConfig, *, seed: int, subject: int = 0, emotion: str | None = None) -> SyntheticClip:
    """Generate one clip.

    Args:
        config: a :class:`SyntheticConfig`.
        seed: any integer >= 0; with ``subject`` it determines every draw (durations,
            amplitude, emotion if not given, head motion, flicker, noise).
        subject: subject number (which face; see :mod:`.faces`).
        emotion: one of :data:`~.action_units.EMOTION_AUS` (CASME II or SAMM vocabulary); drawn
            from CASME II's classes when None.

    Returns:
        a :class:`SyntheticClip`; ``truth`` satisfies ``1 <= onset < apex < offset <= T - 2``.
    """
    if not isinstance(config, SyntheticConfig):
        raise TypeError(f"make_clip: config must be a SyntheticConfig, got {type(config).__name__}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"make_clip: seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng([int(seed), int(subject)])
    if emotion is None:
        emotion = str(rng.choice(CASME2_EMOTIONS))
    emotion = emotion.lower()
    if emotion not in EMOTION_AUS:
        raise ValueError(f"make_clip: unknown emotion {emotion!r}; known: {', '.join(EMOTION_AUS)}")
    aus = EMOTION_AUS[emotion]
    fps = float(config.fps)
    rise, fall, pad_b, pad_a = (
        _frames(rng.uniform(*getattr(config, n)), fps) for n in ("rise_ms", "fall_ms", "pad_before_ms", "pad_after_ms")
    )
    amplitude = float(rng.uniform(*config.amplitude_px))
    onset = pad_b
    apex = onset + rise
    offset = apex + fall
    n = offset + pad_a + 1
    intensity = intensity_profile(
        n, onset, apex, offset, shape=config.profile, rise_power=config.rise_power, fall_power=config.fall_power
    )
    face = _face(int(subject), config.size)
    field_px = deformation_field(aus, face.landmarks, config.size)
    head = head_motion_path(n, fps, config.head_motion_px, rng)
    # Flicker has its own random stream, so a clip with flicker is the same clip (same motion,
    # same sensor noise) as without it, plus the flicker: conditions differ only by the flicker.
    flicker_rng = np.random.default_rng(np.random.SeedSequence([int(seed), _FLICKER_STREAM]))
    flicker = flicker_offsets(n, fps, config.flicker_gl, flicker_rng, light_hz=config.flicker_hz)
    angle, _ = pose_drift_path(
        n, fps, config.head_rotation_deg, 0.0, np.random.default_rng(np.random.SeedSequence([int(seed), _POSE_STREAM]))
    )
    _, scale = pose_drift_path(
        n, fps, 0.0, config.head_scale, np.random.default_rng(np.random.SeedSequence([int(seed), _SCALE_STREAM]))
    )
    drifting = config.head_rotation_deg > 0 or config.head_scale > 0
    closure = _blink(config, n, fps, seed)
    displacement = amplitude * intensity
    with torch.no_grad():
        video = render_frames(face.image, field_px, displacement, head, *((angle, scale) if drifting else (None, None)))
    video = video.permute(0, 2, 3, 1).contiguous().numpy()  # [T, H, W, 3] float32
    if closure.any():
        eyes = _moved_points(face.landmarks[:2], head, angle, scale, config.size)
        draw_blink(
            video, closure, eyes, face.interocular_px, lid_colours(face.image, face.landmarks[:2], face.interocular_px)
        )
    video += flicker.astype(np.float32)[:, None, None, None]
    add_sensor_noise(video, config.noise_sd, rng)
    frames = np.clip(np.rint(video), 0, 255).astype(np.uint8)
    frames = jpeg_roundtrip(frames, config.jpeg_quality)
    return SyntheticClip(
        frames=torch.from_numpy(frames),
        truth=(onset, apex, offset),
        emotion=emotion,
        aus=aus,
        fps=fps,
        intensity=intensity,
        peak_displacement_px=displacement,
        head_motion_px=head,
        flicker_gl=flicker,
        amplitude_px=amplitude,
        subject=int(subject),
        photo=face.photo,
        seed=int(seed),
        config=config,
        head_rotation_deg=angle,
        head_scale=scale,
        blink_closure=closure,
    )


def _blink(config: SyntheticConfig, n: int, fps: float, seed: int) -> np.ndarray:
    """Lid closure ``[T]`` of the clip's blink (zeros without one), from its own random stream."""
    if config.blink_probability <= 0:
        return np.zeros(n)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _BLINK_STREAM]))
    happens = rng.uniform() < config.blink_probability
    duration_s = rng.uniform(*config.blink_ms) / 1000.0
    start_s = rng.uniform(-0.5 * duration_s, (n - 1) / fps - 0.5 * duration_s)
    return blink_closure(n, fps, start_s, duration_s) if happens else np.zeros(n)


def _moved_points(
    points: np.ndarray, head: np.ndarray, angle_deg: np.ndarray, scale: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Where ``points`` (``[P, 2]`` (x, y) px of the still face) are in every frame: float64
    ``[T, P, 2]`` after the rotation and scale about the image centre and the translation."""
    h, w = size
    centre = np.array([w / 2.0, h / 2.0])
    rad = np.deg2rad(angle_deg)[:, None]
    rel = points[None] - centre  # [1, P, 2]
    x = np.cos(rad) * rel[..., 0] - np.sin(rad) * rel[..., 1]
    y = np.sin(rad) * rel[..., 0] + np.cos(rad) * rel[..., 1]
    return np.stack([x, y], -1) * scale[:, None, None] + centre + head[:, None, :]


def make_dataset(
    config: SyntheticConfig,
    *,
    n_subjects: int,
    clips_per_subject: int,
    seed: int,
    bias: str | BiasModel = "typical",
    emotions: Sequence[str] | None = None,
    progress: bool = True,
) -> list[SyntheticSample]:
    """A dataset of ``n_subjects * clips_per_subject`` clips with biased annotations.

    Subject ``i`` (id ``f"{i + 1:02d}"``) uses face ``i``; its clip ``j`` (id
    ``f"s{i + 1:02d}_{j + 1:02d}"``) shows emotion ``emotions[(i + j) % len(emotions)]``
    (balanced classes, CASME II's by default) and is made by :func:`make_clip` with a seed
    derived from ``(seed, i, j)``. The bias model (a preset name or a :class:`BiasModel`)
    annotates each clip with its own generator derived from ``(seed, i, j)``, so changing the
    bias model changes the annotations but not the clips.

    Raises:
        ValueError: non-positive counts, unknown emotion or bias preset.
    """
    if n_subjects < 1 or clips_per_subject < 1:
        raise ValueError(
            f"make_dataset: n_subjects and clips_per_subject must be >= 1, got {n_subjects} and {clips_per_subject}"
        )
    model = get_bias(bias)
    emotions = tuple(e.lower() for e in (emotions if emotions is not None else CASME2_EMOTIONS))
    if not emotions:
        raise ValueError("make_dataset: emotions is empty")
    for e in emotions:
        if e not in EMOTION_AUS:
            raise ValueError(f"make_dataset: unknown emotion {e!r}; known: {', '.join(EMOTION_AUS)}")

    samples = []
    bar = tqdm(
        total=n_subjects * clips_per_subject, desc="synthetic clips", unit="clip", disable=not progress, leave=False
    )
    with bar:
        for i in range(n_subjects):
            for j in range(clips_per_subject):
                clip_seed = int(np.random.SeedSequence([int(seed), i, j]).generate_state(1)[0])
                clip = make_clip(config, seed=clip_seed, subject=i, emotion=emotions[(i + j) % len(emotions)])
                rng = np.random.default_rng([int(seed), i, j, 1])
                annotated = model.annotate(clip.truth, clip.fps, rng, n_frames=len(clip))
                samples.append(
                    SyntheticSample(
                        subject=f"{i + 1:02d}",
                        subject_index=i,
                        clip_id=f"s{i + 1:02d}_{j + 1:02d}",
                        clip=clip,
                        annotated=annotated,
                        bias=model.name,
                    )
                )
                bar.update()
    return samples

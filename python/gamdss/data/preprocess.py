"""Face-crop every clip of a dataset into the frame cache (:mod:`gamdss.data.cache`).

For each :class:`~gamdss.data.records.ClipRecord`: read its frames with Pillow (grey,
palette and RGBA images become RGB; all frames of a clip must have one size), choose one face
box for the whole clip (:mod:`gamdss.data.face`), crop every frame with it and resize to
``size`` = ``(H, W)`` with Pillow's bilinear filter, which is antialiased when shrinking
(its support grows with the scale factor, so every source pixel under the box contributes, as
an area filter would; no aliasing from skipping pixels). The clip is written as uint8
``[T, H, W, 3]`` RGB and recorded in the manifest.

Runs are resumable: clips already in the cache, made with the same settings from the same
source files, are not redone. Clips are processed in parallel by a pool of processes (each
with its own MTCNN); only the main process writes the manifest. A clip that fails (no face,
unreadable image, frames of different sizes) is reported and does not stop the others.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gamdss import atomic, yaml_dataclass
from gamdss.devices import check_device
from gamdss.data.cache import MANIFEST, CacheEntry, CacheWriter, FrameCache, write_clip_file
from gamdss.data.face import (BOX_METHODS, DEFAULT_DETECT_FRAMES, DEFAULT_MARGIN, FaceBox, FaceDetector,
                              NoFaceError, choose_box)
from gamdss.data.records import ClipRecord

RESIZE_FILTER = "Pillow bilinear (antialiased)"
CONFIG_FILE = "preprocess.yaml"


class FrameReadError(ValueError):
    """A source image of a clip cannot be used (unreadable, unsupported mode, other size)."""


@dataclass
class PreprocessConfig:
    """Settings of a preprocessing run (saved as ``CACHE/preprocess.yaml``).

    ``size``: output ``(H, W)`` in pixels. ``box_method``: ``median`` or ``onset``
    (:mod:`gamdss.data.face`). ``margin``: added on each side of the face box, as a fraction
    of its longer side. ``detect_frames``: evenly spaced frames tried besides onset, apex and
    offset (``median`` only). ``min_face_size``: smallest face MTCNN looks for, in pixels.
    ``device``: where MTCNN runs. ``workers``: processes (``None``: min(4, CPU count)).
    ``full_frame_fallback``: use the whole frame for a clip without a face instead of failing.
    """

    size: tuple[int, int] = (224, 224)
    box_method: str = "median"
    margin: float = DEFAULT_MARGIN
    detect_frames: int = DEFAULT_DETECT_FRAMES
    min_face_size: int = 20
    device: str = "cpu"
    workers: int | None = None
    full_frame_fallback: bool = False

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in (self.size if isinstance(self.size, (tuple, list)) else (self.size, self.size)))
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (H, W) with positive sides, got {self.size!r}")
        self.size = size
        if self.box_method not in BOX_METHODS:
            raise ValueError(f"box_method must be one of {', '.join(BOX_METHODS)}; got {self.box_method!r}")
        if not (self.margin >= 0):
            raise ValueError(f"margin must be >= 0, got {self.margin!r}")
        if self.detect_frames < 0:
            raise ValueError(f"detect_frames must be >= 0, got {self.detect_frames!r}")
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {self.min_face_size!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")

    @property
    def num_workers(self) -> int:
        return self.workers if self.workers is not None else min(4, os.cpu_count() or 1)

    def header(self, dataset: str) -> dict[str, Any]:
        """The cache header: the settings that determine the cached pixels, plus provenance."""
        import importlib.metadata

        import gamdss

        return {"dataset": dataset, "size": list(self.size), "box_method": self.box_method,
                "margin": float(self.margin), "detect_frames": int(self.detect_frames),
                "min_face_size": int(self.min_face_size), "resize": RESIZE_FILTER,
                "detector": f"facenet-pytorch MTCNN {importlib.metadata.version('facenet-pytorch')}",
                "gamdss_version": gamdss.__version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def to_yaml(self, path: str | Path) -> Path:
        """Write the settings to ``path`` (atomically; replaces it: the cache's own record)."""
        return atomic.write_text(path, yaml_dataclass.dump(self))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PreprocessConfig":
        """Settings from a YAML file; unknown keys raise ``ValueError`` naming the file."""
        return yaml_dataclass.from_dict(cls, yaml_dataclass.read_mapping(path, "preprocess settings"), str(path))


@dataclass(frozen=True)
class ClipFailure:
    clip_id: str
    reason: str


@dataclass
class PreprocessReport:
    """What a run did. ``done``: clips written now; ``already_done``: clips found complete in
    the cache and left alone; ``failed``: clips not written, with the reason; ``full_frame``:
    the done clips without a face that were cached as full frames (``--full-frame-fallback``)."""

    cache: Path
    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: list[ClipFailure] = field(default_factory=list)
    full_frame: list[str] = field(default_factory=list)
    # Clips found in the cache whose annotation changed since (keyframes: the clip was redone
    # and is also in ``done``; labels or metadata only: its manifest entry was rewritten).
    updated: list[ClipFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"frame cache {self.cache}: {len(self.done)} clip(s) written, "
                 f"{len(self.already_done)} already done, {len(self.failed)} failed"]
        lines += [f"  annotation changed, updated {u.clip_id}: {u.reason}" for u in self.updated]
        if self.full_frame:
            lines.append(f"  full frame used (no face found): {', '.join(self.full_frame)}")
        lines += [f"  FAILED {f.clip_id}: {f.reason}" for f in self.failed]
        return "\n".join(lines)


def preprocess_clips(clips: Sequence[ClipRecord], out: str | Path, *, dataset: str,
                     size: int | tuple[int, int] = (224, 224), box_method: str = "median",
                     margin: float = DEFAULT_MARGIN, detect_frames: int = DEFAULT_DETECT_FRAMES,
                     min_face_size: int = 20, workers: int | None = None, device: str = "cpu",
                     full_frame_fallback: bool = False, overwrite: bool = False,
                     progress: bool = True) -> PreprocessReport:
    """Face-crop ``clips`` into the frame cache folder ``out``; returns what was done.

    ``size``: output ``(H, W)`` (an int means square). ``workers``: processes working on clips
    (default min(4, CPU count); 1 runs in this process; more start fresh ``spawn`` processes, so
    a script calling this needs the ``if __name__ == "__main__":`` guard). Clips already
    complete in ``out`` with the same settings and source files are skipped. ``overwrite=True`` redoes every
    given clip and replaces a cache made with other settings (without it, such a cache, or a
    non-empty folder that is not a cache, raises ``ValueError``).
    """
    config = PreprocessConfig(size=size, box_method=box_method, margin=margin, detect_frames=detect_frames,
                              min_face_size=min_face_size, device=device, workers=workers,
                              full_frame_fallback=full_frame_fallback)
    check_device(config.device)
    out = Path(out)
    ids = [c.clip_id for c in clips]
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dupes:
        raise ValueError(f"clip ids must be unique; repeated: {', '.join(dupes)}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file, not a folder")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} is not empty and holds no gamdss frame cache; choose an empty or new "
                         f"folder (or pass overwrite=True / --overwrite to write the cache there anyway)")

    header = config.header(dataset)
    if (out / MANIFEST).is_file():
        previous = FrameCache(out).header
        if all(previous.get(k) == v for k, v in header.items() if k not in ("created", "gamdss_version")):
            header["created"] = previous.get("created", header["created"])
    writer = CacheWriter(out, header, overwrite=overwrite, flush_seconds=5.0)
    config.to_yaml(out / CONFIG_FILE)

    report = PreprocessReport(cache=out)
    todo: list[ClipRecord] = []
    cached = {e.clip_id: e for e in writer.entries}
    pending_updates: list[CacheEntry] = []
    for clip in clips:
        if not overwrite and writer.completed(clip.clip_id):
            entry = cached[clip.clip_id]
            if entry.sources == [str(p) for p in clip.frame_paths] and entry.frame_numbers == list(clip.frame_numbers):
                fields = annotation_fields(clip)
                changed = sorted(k for k, v in fields.items() if getattr(entry, k) != v)
                if not changed:
                    report.already_done.append(clip.clip_id)
                    continue
                report.updated.append(ClipFailure(clip.clip_id, f"annotation changed: {', '.join(changed)}"))
                if any(k in KEYFRAME_FIELDS for k in changed):
                    todo.append(clip)  # the face box is detected on the keyframes: redo the pixels
                else:
                    pending_updates.append(dataclasses.replace(entry, **fields))
            else:
                report.failed.append(ClipFailure(clip.clip_id, (
                    f"clip {clip.clip_id}: the cache holds it made from other source frames "
                    f"({len(entry.sources)} frames {entry.frame_numbers[0]}-{entry.frame_numbers[-1]}, now "
                    f"{len(clip)} frames {clip.frame_numbers[0]}-{clip.frame_numbers[-1]}); pass "
                    f"overwrite=True (--overwrite) to redo it")))
            continue
        todo.append(clip)

    settings = _settings(config)
    from tqdm.auto import tqdm

    for entry in pending_updates:  # same pixels, new labels: only the manifest entry changes
        writer.add(entry)
    with writer, tqdm(total=len(clips), initial=len(clips) - len(todo), desc="preprocess", unit="clip",
                      disable=not progress) as bar:
        def finish(clip_id: str, result: CacheEntry | str) -> None:
            if isinstance(result, CacheEntry):
                writer.add(result)
                report.done.append(clip_id)
                if result.box_method == "full-frame":
                    report.full_frame.append(clip_id)
            else:
                report.failed.append(ClipFailure(clip_id, result))
            bar.update(1)

        if config.num_workers == 1 or len(todo) <= 1:
            for clip in todo:
                finish(clip.clip_id, _run_clip(clip, out, settings))
        else:
            _run_pool(todo, out, settings, config, finish)

    order = {clip_id: k for k, clip_id in enumerate(ids)}
    for name in ("done", "already_done", "full_frame"):
        getattr(report, name).sort(key=order.__getitem__)
    report.failed.sort(key=lambda f: order[f.clip_id])
    return report


def _run_pool(todo, out, settings, config, finish) -> None:
    import multiprocessing

    from concurrent.futures.process import BrokenProcessPool

    workers = min(config.num_workers, len(todo))
    threads = 1  # MTCNN's ops are tiny: processes, not threads, use the cores (see FaceDetector)
    # spawn, not fork: the parent may already run torch's thread pools, and CUDA needs it.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))
    try:
        futures = {pool.submit(_run_clip, clip, out, settings): clip.clip_id for clip in todo}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                result = f"clip {futures[future]}: the worker process died ({exc})"
            finish(futures[future], result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _settings(config: PreprocessConfig) -> dict[str, Any]:
    return {"size": config.size, "box_method": config.box_method, "margin": config.margin,
            "detect_frames": config.detect_frames, "min_face_size": config.min_face_size,
            "device": config.device, "full_frame_fallback": config.full_frame_fallback}


def _run_clip(clip: ClipRecord, out: Path, settings: dict[str, Any]) -> CacheEntry | str:
    """Process one clip; a per-clip error comes back as its message (so it never stops a run)."""
    try:
        return process_clip(clip, out, **settings)
    except Exception as exc:  # noqa: BLE001 - reported per clip, the run goes on
        message = str(exc)
        if clip.clip_id not in message:
            message = f"clip {clip.clip_id}: {message}"
        return f"{type(exc).__name__}: {message}"


_DETECTORS: dict[tuple[str, int], FaceDetector] = {}


def get_detector(device: str = "cpu", min_face_size: int = 20) -> FaceDetector:
    """This process's MTCNN for ``device`` (made on first use, then reused)."""
    key = (str(device), int(min_face_size))
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(device=device, min_face_size=min_face_size)
    return _DETECTORS[key]


def process_clip(clip: ClipRecord, out: str | Path, *, size: tuple[int, int] = (224, 224),
                 box_method: str = "median", margin: float = DEFAULT_MARGIN,
                 detect_frames: int = DEFAULT_DETECT_FRAMES, min_face_size: int = 20, device: str = "cpu",
                 full_frame_fallback: bool = False) -> CacheEntry:
    """Detect, crop, resize and write one clip's file under ``out``; returns its manifest
    entry (the caller records it). Raises :class:`NoFaceError` (unless ``full_frame_fallback``)
    or :class:`FrameReadError`."""
    paths = list(clip.frame_paths)
    if not paths:
        raise FrameReadError(f"clip {clip.clip_id}: it has no frames")
    expected = _image_size(paths[0], clip.clip_id)
    loaded: dict[int, Any] = {}  # frames read for detection, reused for cropping

    def load(i: int) -> np.ndarray:
        if i not in loaded:
            loaded[i] = read_frame(paths[i], clip.clip_id, expected)
        return np.asarray(loaded[i])

    height, width = size
    try:
        face = choose_box(get_detector(device, min_face_size), load, len(paths), clip.onset_index,
                          clip.apex_index, clip.offset_index, clip_id=clip.clip_id, method=box_method,
                          margin=margin, detect_frames=detect_frames, aspect=width / height,
                          frame_names=[_frame_name(clip, i) for i in range(len(paths))])
    except NoFaceError:
        if not full_frame_fallback:
            raise
        face = FaceBox(box=None, face_box=None, prob=None, method="full-frame", frames_tried=(),
                       frames_with_face=())

    frames = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        image = loaded.pop(i) if i in loaded else read_frame(path, clip.clip_id, expected)
        frames[i] = crop_resize(image, face.box, size)
    rel, digest = write_clip_file(out, clip.clip_id, frames)
    a = clip.annotation
    return CacheEntry(
        clip_id=a.clip_id, frame_numbers=[int(n) for n in clip.frame_numbers], file=rel,
        shape=list(frames.shape), sha256=digest, sources=[str(p) for p in paths],
        box=None if face.box is None else [int(v) for v in face.box], face_prob=face.prob,
        box_method=face.method, **annotation_fields(clip))


KEYFRAME_FIELDS = ("onset", "apex", "offset")


def annotation_fields(clip: ClipRecord) -> dict[str, Any]:
    """The cache-entry fields that come from the clip's annotation (not from its pixels)."""
    a = clip.annotation
    return dict(dataset=a.dataset, subject=a.subject, video=a.video, emotion=a.emotion,
                aus=[str(x) for x in a.aus], fps=float(a.fps), row=int(a.row), onset=int(a.onset),
                apex=int(a.apex), offset=int(a.offset), meta={str(k): str(v) for k, v in a.meta.items()},
                corrections=[{k: _jsonable(v) for k, v in asdict(c).items()} for c in a.corrections])


def read_frame(path: str | Path, clip_id: str, expected_size: tuple[int, int] | None = None):
    """Open one source image as an RGB ``PIL.Image`` (grey, palette, RGBA... converted).

    ``expected_size``: ``(W, H)`` that the image must have. Raises :class:`FrameReadError`
    naming the clip and file.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise FrameReadError(f"clip {clip_id}: {path} is a {img.mode} (16/32-bit) image; only "
                                     f"8-bit grey or colour frames are supported")
            rgb = img.convert("RGB")
    except FrameReadError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FrameReadError(f"clip {clip_id}: cannot read image {path} ({exc})") from exc
    if expected_size is not None and rgb.size != tuple(expected_size):
        raise FrameReadError(f"clip {clip_id}: {path} is {rgb.size[0]}x{rgb.size[1]} pixels but the clip's "
                             f"first frame is {expected_size[0]}x{expected_size[1]}; all frames of a clip "
                             f"must have one size")
    return rgb


def crop_resize(image, box: Sequence[int] | None, size: tuple[int, int]) -> np.ndarray:
    """Crop ``image`` (RGB ``PIL.Image``) to ``box`` ``(x0, y0, x1, y1)`` (``None``: whole frame)
    and resize to ``size`` = ``(H, W)``: uint8 ``[H, W, 3]``."""
    from PIL import Image

    height, width = size
    # crop() first, not resize(box=...): the latter lets pixels just outside the box into the
    # filter's support, so the result would depend on more than the box.
    region = image if box is None else image.crop(tuple(int(v) for v in box))
    return np.asarray(region.resize((width, height), Image.Resampling.BILINEAR))


def _image_size(path: Path, clip_id: str) -> tuple[int, int]:
    return read_frame(path, clip_id).size  # full decode: an unreadable first frame fails here


def _frame_name(clip: ClipRecord, i: int) -> str:
    return f"frame {clip.frame_numbers[i]} ({Path(clip.frame_paths[i]).name})"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

"""Write a synthetic dataset in the real layout of CASME II or SAMM.

The frames, folder names and annotation spreadsheet follow the dataset (through its reader's
own :class:`~gamdss.data.datasets.base.Dataset` layout and ``write_annotations``), so
``gamdss.data.scan_dataset(root, "casme2")`` and the rest of the toolkit read the result
exactly as they read the real dataset. The spreadsheet holds the ANNOTATED (biased)
keyframes; ``ground_truth.csv`` next to it holds the true ones.

CASME II::

    root/CASME2-coding-20190701.xlsx      Subject, Filename, -, OnsetFrame, ApexFrame, ...
    root/ground_truth.csv
    root/CASME2_RAW_selected/sub01/EP01_01/img1234.jpg ...

SAMM (grey frames, as the real dataset)::

    root/SAMM_Micro_FACS_Codes_v2.xlsx    notes block, header on row 14
    root/ground_truth.csv
    root/SAMM/006/006_1_1/006_05562.jpg ...

Frame numbers are absolute: each clip starts at a random frame number (CASME II 1-3000,
SAMM 1000-9000), and every generated frame (padding included) is written, so the readers'
margin around the annotation finds real neutral frames. Frames are re-encoded as JPEG
(quality ``jpeg_quality``) on top of the generator's own JPEG step, as a dataset's
distribution would.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from gamdss.data.datasets import get_dataset
from gamdss.data.records import AnnotationRecord
from gamdss.util import atomic

from .action_units import emotion_for_dataset
from .generator import SyntheticSample

LAYOUTS = ("casme2", "samm")
GROUND_TRUTH_FILE = "ground_truth.csv"
CONFIG_FILE = "synthetic_config.yaml"
_FIRST_FRAME_RANGE = {"casme2": (1, 3000), "samm": (1000, 9000)}
_SAMM_FIRST_SUBJECT = 6  # SAMM's subject numbers start at 006

GROUND_TRUTH_COLUMNS = (
    "clip_id",
    "subject",
    "video",
    "sample_id",
    "emotion",
    "generator_emotion",
    "aus",
    "photo",
    "fps",
    "bias",
    "first_frame",
    "last_frame",
    "true_onset",
    "true_apex",
    "true_offset",
    "annotated_onset",
    "annotated_apex",
    "annotated_offset",
    "amplitude_px",
    "seed",
)


@dataclass(frozen=True)
class GroundTruthRow:
    """One row of ``ground_truth.csv``: keyframes as dataset frame numbers (``first_frame`` is
    the number of the clip's first frame on disk, so clip-relative index = number - first_frame)."""

    clip_id: str
    subject: str
    video: str
    sample_id: str
    emotion: str
    generator_emotion: str
    aus: str
    photo: str
    fps: float
    bias: str
    first_frame: int
    last_frame: int
    true_onset: int
    true_apex: int
    true_offset: int
    annotated_onset: int
    annotated_apex: int
    annotated_offset: int
    amplitude_px: float
    seed: int

    @property
    def truth(self) -> tuple[int, int, int]:
        """True (onset, apex, offset), dataset frame numbers."""
        return self.true_onset, self.true_apex, self.true_offset

    @property
    def annotated(self) -> tuple[int, int, int]:
        """Annotated (onset, apex, offset), dataset frame numbers."""
        return self.annotated_onset, self.annotated_apex, self.annotated_offset


def read_ground_truth(path: str | Path) -> dict[str, GroundTruthRow]:
    """``ground_truth.csv`` (or a dataset root holding it) as clip id -> :class:`GroundTruthRow`.

    Raises:
        FileNotFoundError: no file; ValueError: a missing column or a bad value (with its row).
    """
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no ground-truth file {path}")
    types = GroundTruthRow.__annotations__
    out: dict[str, GroundTruthRow] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in GROUND_TRUTH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        for n, row in enumerate(reader, start=2):
            values = {}
            for c in GROUND_TRUTH_COLUMNS:
                kind = types[c]
                try:
                    values[c] = int(row[c]) if kind == "int" else float(row[c]) if kind == "float" else row[c]
                except ValueError:
                    raise ValueError(f"{path} row {n}: column {c!r} has {row[c]!r}, expected {kind}") from None
            out[values["clip_id"]] = GroundTruthRow(**values)
    return out


def _video_name(layout: str, subject_number: int, k: int) -> str:
    if layout == "casme2":
        return f"EP{k:02d}_01"
    return f"{subject_number:03d}_1_{k}"


def write_dataset(
    samples: Sequence[SyntheticSample],
    root: str | Path,
    layout: str = "casme2",
    *,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    frame_seed: int = 0,
    progress: bool = True,
) -> Path:
    """Lay ``samples`` out under ``root`` in the layout of ``layout`` (``casme2`` or ``samm``).

    Subjects are numbered from their ``subject_index`` (CASME II ``sub01``..., SAMM ``006``...);
    each subject's clips are named in order (CASME II ``EP01_01``..., SAMM ``006_1_1``...).
    Emotions are written in the dataset's vocabulary (see
    :func:`~.action_units.emotion_for_dataset`). Writes the frames, the annotation spreadsheet
    (annotated keyframes), ``ground_truth.csv`` and, when all samples share one config,
    ``synthetic_config.yaml``. Every file is written atomically.

    Args:
        samples: from :func:`~.generator.make_dataset` (their fps must be the dataset's, 200).
        root: output folder.
        overwrite: replace an existing non-empty ``root``'s annotation files and the clip
            folders being written (other files are left alone); otherwise refuse.
        jpeg_quality: quality of the written JPEG frames.
        frame_seed: seed of the clips' random first frame numbers.
        progress: show a progress bar.

    Returns:
        ``root``.

    Raises:
        FileExistsError: ``root`` is not empty and ``overwrite`` is false.
        ValueError: unknown layout, no samples, a sample at the wrong fps, duplicate clip ids.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"write_dataset: layout must be one of {LAYOUTS}, got {layout!r}")
    if not samples:
        raise ValueError("write_dataset: no samples")
    if not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"write_dataset: jpeg_quality must be in 1..100, got {jpeg_quality!r}")
    ds = get_dataset(layout)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"write_dataset: {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(
            f"write_dataset: {root} is not empty; pass overwrite=True to replace the synthetic dataset's files in it"
        )
    seen_ids: set[str] = set()
    for s in samples:
        if abs(s.clip.fps - ds.fps) > 1e-9:
            raise ValueError(
                f"write_dataset: clip {s.clip_id!r} was generated at {s.clip.fps:g} fps but {layout} "
                f"is {ds.fps:g} fps; generate with SyntheticConfig(fps={ds.fps:g})"
            )
        if s.clip_id in seen_ids:
            raise ValueError(f"write_dataset: duplicate clip id {s.clip_id!r}")
        seen_ids.add(s.clip_id)

    rng = np.random.default_rng(int(frame_seed))
    lo, hi = _FIRST_FRAME_RANGE[layout]
    counters: dict[int, int] = {}
    records: list[AnnotationRecord] = []
    truth_rows: list[list[object]] = []
    plans = []
    for row, s in enumerate(samples, start=2):
        number = s.subject_index + 1 if layout == "casme2" else s.subject_index + _SAMM_FIRST_SUBJECT
        subject = f"sub{number:02d}" if layout == "casme2" else f"{number:03d}"
        counters[number] = counters.get(number, 0) + 1
        video = _video_name(layout, number, counters[number])
        first = int(rng.integers(lo, hi + 1))
        o, a, f = (first + v for v in s.annotated)
        emotion = emotion_for_dataset(s.clip.emotion, layout)
        meta = {}
        if layout == "samm":
            meta = {"inducement_code": "1", "duration": str(f - o + 1), "micro": "Micro", "notes": "synthetic (gamdss)"}
        rec = AnnotationRecord(
            dataset=layout,
            subject=subject,
            clip_id=ds.clip_id(subject, video, o),
            video=video,
            onset=o,
            apex=a,
            offset=f,
            emotion=emotion,
            aus=tuple(s.clip.aus),
            fps=float(ds.fps),
            row=row,
            meta=meta,
        )
        records.append(rec)
        plans.append((s, rec, first))
        t_o, t_a, t_f = (first + v for v in s.truth)
        truth_rows.append(
            [
                rec.clip_id,
                subject,
                video,
                s.clip_id,
                emotion,
                s.clip.emotion,
                "+".join(s.clip.aus),
                s.clip.photo,
                f"{s.clip.fps:g}",
                s.bias,
                first,
                first + len(s.clip) - 1,
                t_o,
                t_a,
                t_f,
                o,
                a,
                f,
                f"{s.clip.amplitude_px:.6g}",
                s.clip.seed,
            ]
        )

    root.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    for s, rec, first in tqdm(plans, desc=f"writing {layout} clips", unit="clip", disable=not progress, leave=False):
        clip_dir = ds.clip_dir(root, rec)
        if clip_dir.exists():
            shutil.rmtree(clip_dir)  # only reached with overwrite=True: stale frames would join the clip
        clip_dir.mkdir(parents=True)
        frames = s.clip.frames.numpy()
        for t in range(frames.shape[0]):
            frame = frames[t]
            if layout == "samm":
                img = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            else:
                img = np.ascontiguousarray(frame[..., ::-1])  # OpenCV writes BGR
            ok, buf = cv2.imencode(".jpg", img, params)
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for clip {rec.clip_id} frame {first + t}")
            atomic.write_bytes(ds.frame_path(root, rec, first + t), buf.tobytes())

    ds.write_annotations(records, root / ds.annotation_names[0], overwrite=overwrite)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(GROUND_TRUTH_COLUMNS)
    writer.writerows(truth_rows)
    atomic.write_text(root / GROUND_TRUTH_FILE, buf.getvalue())
    configs = {s.clip.config for s in samples}
    if len(configs) == 1:
        configs.pop().save(root / CONFIG_FILE, overwrite=True)
    return root

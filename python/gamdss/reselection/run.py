"""Keyframe reselection over a whole frame cache.

:func:`reselect_cache` runs the method of a
:class:`~gamdss.settings.reselection.ReselectionSettings` (the paper's :func:`gamdss.reselect`
or the noise-aware :func:`gamdss.reselection.noise_aware.correct_keyframes`) on every clip of a
:class:`~gamdss.data.cache.FrameCache`, reading from the memory-mapped clip files only the
frames the method looks at. The max-distance op runs on
batches of clips under a byte limit; the noise-aware method runs clip by clip in a few
threads side by side (its work is mostly torch and OpenCV calls that release the GIL, and
each clip's result depends on that clip alone).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import torch
from tqdm.auto import tqdm

from gamdss.data.cache import CacheEntry, FrameCache
from gamdss.data.reselection_record import ClipReselection, annotated_indices
from gamdss.data.workers import default_workers
from gamdss.op.windows import preset_windows
from gamdss.reselection.clips import reselect_clips
from gamdss.reselection.noise_aware import frames_needed
from gamdss.settings.reselection import ReselectionSettings, preset

DEFAULT_MAX_BATCH_BYTES = 256 * 2**20


def _select_entries(cache: FrameCache, clip_ids: Sequence[str] | None) -> list[CacheEntry]:
    if clip_ids is None:
        return cache.entries
    if isinstance(clip_ids, str):
        raise TypeError("clip_ids must be a sequence of clip ids, not one string")
    wanted = set(clip_ids)
    missing = [c for c in clip_ids if c not in cache]
    if missing:
        raise KeyError(f"clip ids not in the cache {cache.root}: {missing}")
    return [e for e in cache.entries if e.clip_id in wanted]


def _spans(entries: list[CacheEntry], settings: ReselectionSettings) -> list[tuple[int, int]]:
    """First and last frame (inclusive, clip-relative) that each clip's reselection reads."""

    if not entries:
        return []
    ann = torch.tensor([annotated_indices(e) for e in entries], dtype=torch.int64)
    lengths = torch.tensor([e.num_frames for e in entries], dtype=torch.int64)
    for e, (o, a, f) in zip(entries, ann.tolist()):
        if not 0 <= o <= a <= f <= e.num_frames - 1:
            raise ValueError(
                f"clip {e.clip_id}: onset={o}, apex={a}, offset={f} violates "
                f"0 <= onset <= apex <= offset <= T-1 with T={e.num_frames}"
            )
    if settings.method == "noise_aware":
        return [frames_needed(o, a, f, e.fps, e.num_frames, settings) for e, (o, a, f) in zip(entries, ann.tolist())]
    win = preset_windows(
        settings.window, ann[:, 0], ann[:, 1], ann[:, 2], lengths, settings.lam_rise, settings.lam_fall
    )
    first = win[:, 0::2].amin(dim=1).tolist()
    last = win[:, 1::2].amax(dim=1).tolist()
    return list(zip(first, last))


def _batches(span_bytes: list[tuple[int, int]], limit: int) -> list[list[int]]:
    """Group consecutive clips so that each padded batch (clips x longest span x frame
    bytes) stays under ``limit``; a clip bigger than the limit forms a batch of its own.
    ``span_bytes`` holds (span length in frames, bytes per frame)."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, (n, frame_bytes) in enumerate(span_bytes):
        new_longest = max(longest, n)
        if current and (len(current) + 1) * new_longest * frame_bytes > limit:
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def reselect_cache(
    cache: FrameCache,
    settings: ReselectionSettings | None = None,
    *,
    clip_ids: Sequence[str] | None = None,
    device: str = "cpu",
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    workers: int | None = None,
    progress: bool = True,
) -> list[ClipReselection]:
    """Re-select the onset, apex and offset of every clip in ``cache`` (or of ``clip_ids``).

    ``settings``: a :class:`~gamdss.settings.reselection.ReselectionSettings` (default: the
    ``recommended`` preset). Clips are read from their memory-mapped files, only the frames
    the method looks at (uint8 ``[span, H, W, 3]``), and go to
    :func:`gamdss.reselection.clips.reselect_clips`:

    - ``max_distance`` runs :func:`gamdss.reselect` on ``device`` (``"cpu"``, ``"cuda"``...)
      in batches of at most ``max_batch_bytes`` bytes of frames (a clip alone larger than
      that is a batch of its own; clips of different frame sizes never share a batch);
    - ``noise_aware`` runs :func:`gamdss.reselection.noise_aware.correct_keyframes` (CPU) one
      clip at a time in ``workers`` threads (default
      :func:`gamdss.data.workers.default_workers`; 1 runs in the calling thread), with torch
      held to one intra-op thread meanwhile.

    Results come back in cache order; each is identical to reselecting that whole clip on its
    own, whatever the batches and ``workers``.

    Raises ``ValueError`` naming the clip when its annotation is not valid for its frames.
    """

    settings = preset("recommended") if settings is None else settings
    if not isinstance(settings, ReselectionSettings):
        raise TypeError(f"settings must be a ReselectionSettings, got {type(settings).__name__}")
    if int(max_batch_bytes) <= 0:
        raise ValueError(f"max_batch_bytes must be positive, got {max_batch_bytes}")
    if workers is not None:
        try:
            count = operator.index(workers)  # int or numpy integer
        except TypeError:
            count = 0
        if isinstance(workers, bool) or count < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        workers = count
    entries = _select_entries(cache, clip_ids)
    spans = _spans(entries, settings)
    results: list[ClipReselection | None] = [None] * len(entries)

    clip_by_clip = settings.method == "noise_aware"  # the method works on one clip at a time
    plan: list[list[int]] = []
    if clip_by_clip:
        plan = [[i] for i in range(len(entries))]
    else:
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, e in enumerate(entries):
            by_shape.setdefault(tuple(e.shape[1:]), []).append(i)
        for shape, members in by_shape.items():
            frame_bytes = int(np.prod(shape))
            sizes = [(spans[i][1] - spans[i][0] + 1, frame_bytes) for i in members]
            plan += [[members[j] for j in batch] for batch in _batches(sizes, int(max_batch_bytes))]

    def run(batch: list[int]) -> list[ClipReselection]:
        return _reselect_batch(cache, [entries[i] for i in batch], [spans[i] for i in batch], settings, device)

    bar = tqdm(total=len(entries), desc=f"reselect ({cache.root.name})", unit="clip", disable=not progress)

    def finish(batch: list[int], out: list[ClipReselection]) -> None:
        for i, result in zip(batch, out):
            results[i] = result
        bar.update(len(batch))

    try:
        threads = (workers or default_workers()) if clip_by_clip else 1
        _run_batches(plan, run, threads, finish)
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _run_batches(
    plan: list[list[int]],
    run: Callable[[list[int]], list[ClipReselection]],
    threads: int,
    finish: Callable[[list[int], list[ClipReselection]], None],
) -> None:
    """``finish(batch, run(batch))`` for every batch of ``plan``: in order in this thread when
    ``threads`` is 1 (or there is one batch), else as each ends, run in ``threads`` threads
    (``finish`` still runs in this thread). The first error (or Ctrl-C) cancels the batches
    not started, waits for those running and is raised.

    Meanwhile torch is held to one intra-op thread: the clips' own save-and-restore of the
    count then only ever sets 1, and no thread resizes torch's shared pool while another
    uses it. The count is process-wide, so two such runs from two threads at once would
    race on restoring it."""
    threads = min(threads, len(plan))
    if threads <= 1:
        for batch in plan:
            finish(batch, run(batch))
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gamdss-reselect")
    try:
        futures = {pool.submit(run, batch): batch for batch in plan}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    finally:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        finally:  # even when a second Ctrl-C interrupts the wait
            torch.set_num_threads(before)


def _padded_span_frames(
    cache: FrameCache, entries: list[CacheEntry], spans: list[tuple[int, int]]
) -> tuple[torch.Tensor, list[int]]:
    """uint8 torch ``[B, longest span, H, W, 3]`` and each clip's span length: every span read
    from its memory map straight into one buffer (the max-distance op packs a padded batch
    without a copy; a list of spans would be copied again; the noise-aware method takes views
    of it, one clip each). The frames past a span stay zero, and their pages are never
    touched."""

    lengths = [last - first + 1 for first, last in spans]
    frames = np.zeros((len(entries), max(lengths), *entries[0].shape[1:]), dtype=np.uint8)
    for b, (entry, (first, last)) in enumerate(zip(entries, spans)):
        frames[b, : lengths[b]] = cache.frames(entry)[first : last + 1]
    return torch.from_numpy(frames), lengths


def _reselect_batch(
    cache: FrameCache,
    entries: list[CacheEntry],
    spans: list[tuple[int, int]],
    settings: ReselectionSettings,
    device: str,
) -> list[ClipReselection]:
    """One batch through :func:`gamdss.reselection.clips.reselect_clips`, on the span frames only
    (annotations shifted into the span and the results shifted back)."""

    clips, lengths = _padded_span_frames(cache, entries, spans)  # a batch has one frame size
    ann = [[k - span[0] for k in annotated_indices(e)] for e, span in zip(entries, spans)]
    out = reselect_clips(
        clips,
        [a[0] for a in ann],
        [a[1] for a in ann],
        [a[2] for a in ann],
        [e.fps for e in entries],
        settings,
        lengths=lengths,
        clip_ids=[e.clip_id for e in entries],
        device=device,
    )
    rows = zip(
        entries,
        spans,
        out.keyframes.tolist(),
        out.confidence.tolist(),
        out.rise_distance.tolist(),
        out.fall_distance.tolist(),
    )
    return [
        ClipReselection(
            clip_id=e.clip_id,
            annotated=annotated_indices(e),
            reselected=tuple(int(k) + span[0] for k in picked),  # type: ignore[arg-type]
            rise_distance=float(rise),
            fall_distance=float(fall),
            confidence=tuple(float(c) for c in conf),
        )  # type: ignore[arg-type]
        for e, span, picked, conf, rise, fall in rows
    ]

"""Input-pipeline benchmark: keyframe samples per second delivered to the model.

::

    python benchmarks/pipeline.py                       # CPU: 224 px, workers 0 and 2, both inputs
    python benchmarks/pipeline.py --device cuda --workers 0 2 4
    python benchmarks/pipeline.py --reference           # also the per-sample path it replaced

What is timed: a DataLoader over :class:`gamdss.data.KeyframeDataset` (reading three uint8
keyframes per sample from a memory-mapped frame cache, plus two cached float16 flow fields for
flow input, and drawing the augmentation), the collate, and
:class:`gamdss.data.KeyframeTransform` on ``--device`` (resize when needed, normalise,
augment, batched), up to the model's motion and still inputs, synchronised. The data is a
synthetic frame cache (smooth random textures, ``--clips`` clips of ``--frames`` frames at
``--size`` px) in a temporary folder; the flow cache is computed first (``--flow``: Farneback,
the default, or TV-L1; timed separately: it is done once per clip and keyframe pair, not per
epoch).

``--reference``: the per-sample path the pipeline replaced (resize, normalise and augment
each sample in the DataLoader; flow by Farneback on every batch), for a before/after on the
same machine. The machine's load average is printed: on a shared machine other work lowers
every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402
from gamdss.data.batch_transform import augment_one, draw_augment, resize_frames  # noqa: E402
from gamdss.data.cache import CacheEntry, CacheWriter, file_stamp, write_clip_file  # noqa: E402
from gamdss.data.flow import FLOW_METHODS  # noqa: E402
from gamdss.data.flow_cache import FlowStore, flow_pairs  # noqa: E402
from gamdss.data.keyframes import KeyframeDataset, collate  # noqa: E402
from gamdss.data.samples import Sample  # noqa: E402
from gamdss.models.inputs import IMAGENET_MEAN, IMAGENET_STD, motion_inputs  # noqa: E402
from gamdss.util.seeds import derive_seed  # noqa: E402
from report import cpu_model  # noqa: E402

FLOW_LABELS = {"farneback": "Farneback", "tvl1": "TV-L1"}

EMOTIONS = ("happiness", "repression", "disgust", "surprise", "others")  # casme2-5's classes, in its order


def make_cache(root: Path, clips: int, frames: int, size: int, seed: int = 0) -> list[Sample]:
    """A CASME II-style frame cache of smooth random textures drifting by a pixel per frame
    (clip ``c``: subject ``c % 8 + 1``, emotion ``EMOTIONS[c % 5]``); its samples (casme2-5 labels)."""
    rng = np.random.default_rng(seed)
    writer = CacheWriter(root, {"dataset": "casme2", "size": [size, size], "note": "benchmarks/pipeline.py"})
    samples = []
    low = max(4, size // 16)
    for c in range(clips):
        base = torch.from_numpy(rng.random((1, 3, low, low), dtype=np.float32) * 255)
        big = torch.nn.functional.interpolate(base, size=(size + frames, size + frames), mode="bicubic")
        big = big.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
        clip = np.stack([big[t : t + size, t : t + size] for t in range(frames)])
        clip_id = f"sub{c % 8 + 1:02d}/EP{c:03d}"
        rel, digest = write_clip_file(root, clip_id, clip)
        onset, apex, offset = 1, frames // 2, frames - 2
        writer.add(
            CacheEntry(
                clip_id=clip_id,
                dataset="casme2",
                subject=f"{c % 8 + 1:02d}",
                video=f"EP{c:03d}",
                emotion=EMOTIONS[c % 5],
                aus=[],
                fps=200.0,
                row=c,
                frame_numbers=list(range(frames)),
                onset=onset,
                apex=apex,
                offset=offset,
                file=rel,
                shape=list(clip.shape),
                sha256=digest,
                sources=[],
                box=None,
                face_prob=None,
                box_method="full-frame",
                **file_stamp(root / rel),
            )
        )
        samples.append(
            Sample(
                key=f"casme2:{clip_id}",
                cache_index=0,
                clip_id=clip_id,
                dataset="casme2",
                subject=f"{c % 8 + 1:02d}",
                emotion=EMOTIONS[c % 5],
                label=c % 5,
                annotated=(onset, apex, offset),
                sha256=digest,
            )
        )
    writer.flush()
    return samples


class PerSampleReference(torch.utils.data.Dataset):
    """The per-sample path before the batched pipeline: each item resized, normalised and
    augmented in the DataLoader (difference: float [3, 3, S, S]; flow: uint8 [3, S, S, 3])."""

    def __init__(self, ds: KeyframeDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        s = self.ds.samples[i]
        clip = self.ds._clip(s)
        raw = torch.from_numpy(np.ascontiguousarray(clip[list(self.ds.keyframes(i))]))
        x = resize_frames(raw.permute(0, 3, 1, 2).float().div_(255.0), self.ds.image_size)
        gen = torch.Generator().manual_seed(derive_seed("augment", self.ds.seed, self.ds.epoch, s.key))
        prm = draw_augment(gen, self.ds.image_size)
        if self.ds.input_kind == "difference":
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            return augment_one((x - mean) / std, prm), s.label
        pixels = augment_one(x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8), prm)
        return pixels.permute(0, 2, 3, 1).contiguous(), s.label


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flow_cache_pairs(samples: list[Sample]) -> list[tuple[str, int, int]]:
    """(clip id, source, target) of every flow field the samples' flow input needs."""
    return sorted({(s.clip_id, src, dst) for s in samples for src, dst in flow_pairs(s.annotated)})


def run(
    ds,
    device,
    batch: int,
    batches: int,
    workers: int,
    reference: bool,
    transform: bool = True,
    flow: str = "farneback",
) -> float:
    """Samples per second over ``batches`` batches (after two warm-up batches). ``transform``
    False: the DataLoader alone (the CPU's share of the work when the transform runs on a GPU).
    ``flow``: the flow method the per-sample reference path computes on every batch."""
    warm = 2
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=batch * (batches + warm))
    loader = torch.utils.data.DataLoader(
        PerSampleReference(ds) if reference else ds,
        batch_size=batch,
        sampler=sampler,
        collate_fn=None if reference else collate,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    t0, n = None, 0
    for k, item in enumerate(loader):
        if k == warm:
            _sync(device)
            t0 = time.perf_counter()
        if not transform:
            rise = item[0].frames
        elif reference:
            frames = item[0].to(device, non_blocking=True)
            if ds.input_kind == "difference":
                rise, fall = motion_inputs(frames[:, 0], frames[:, 1], frames[:, 2])
            else:
                rise, fall = motion_inputs(frames[:, 0], frames[:, 1], frames[:, 2], kind="flow", flow_method=flow)
        else:
            x = ds.transform(item[0], device)
            rise, fall = x.motion()
        if k >= warm:
            n += rise.shape[0]
    _sync(device)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="where the batched transform runs (cpu, cuda, cuda:1)")
    ap.add_argument("--size", type=int, default=224, help="frame side, px (the cache is made at this size)")
    ap.add_argument("--clips", type=int, default=48, help="clips in the synthetic cache")
    ap.add_argument("--frames", type=int, default=24, help="frames per clip")
    ap.add_argument("--batch", type=int, default=64, help="batch size")
    ap.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to measure")
    ap.add_argument("--inputs", nargs="+", default=["difference", "flow"], choices=["difference", "flow"])
    ap.add_argument(
        "--flow",
        default="farneback",
        choices=list(FLOW_METHODS),
        help="the flow method of the flow cache and of flow input (tvl1 needs opencv-contrib)",
    )
    ap.add_argument("--reference", action="store_true", help="also time the per-sample path it replaced")
    ap.add_argument("--cache", type=Path, default=None, help="folder for the synthetic cache (default: temporary)")
    ap.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S", help="first wait up to S seconds for an idle machine"
    )
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.wait_quiet > 0:
        other = timing.wait_until_quiet(args.wait_quiet)
        print(f"- other processes' CPU share when starting: {other:.0%}" if other is not None else "")

    print(
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), torch {torch.__version__}, "
        f"torch.get_num_threads() = {torch.get_num_threads()}"
    )
    if device.type == "cuda":
        print(f"- GPU: {torch.cuda.get_device_name(device)}")
    print(f"- load average before: {os.getloadavg()[0]:.2f} (other work on the machine lowers every number)")
    print(
        f"- {args.size}x{args.size} px, batch {args.batch}, {args.batches} timed batches, augmentation on, "
        f"transform on {device}"
    )
    with tempfile.TemporaryDirectory(prefix="gamdss-pipeline-") as tmp:
        root = args.cache or Path(tmp) / "cache"
        samples = make_cache(root, args.clips, args.frames, args.size)
        print(f"- synthetic cache: {len(samples)} clips x {args.frames} frames")
        print()
        print("| input | path | workers | samples/s |")
        print("|---|---|---|---|")
        for kind in args.inputs:
            if kind == "flow":
                store = FlowStore(root, args.flow, size=args.size)
                pairs = flow_cache_pairs(samples)
                t0 = time.perf_counter()
                store.compute(pairs, workers=os.cpu_count(), progress=False)
                dt = time.perf_counter() - t0
                print(
                    f"| flow cache (once) | {FLOW_LABELS[args.flow]}, {os.cpu_count()} processes | - | "
                    f"{len(pairs) / 2 / dt:.3g} samples/s ({len(pairs) / dt:.3g} pairs/s; {len(pairs)} pairs in "
                    f"{dt:.1f} s, the processes' start included) |"
                )
            ds = KeyframeDataset(
                samples, [root], image_size=args.size, input_kind=kind, flow=args.flow, augment=True, seed=0
            )
            for w in args.workers:
                rate = run(ds, device, args.batch, args.batches, w, reference=False, transform=False)
                print(
                    f"| {kind} | DataLoader only (the CPU side when the transform runs on a GPU) | {w} | {rate:.0f} |"
                )
                rate = run(ds, device, args.batch, args.batches, w, reference=False)
                print(f"| {kind} | DataLoader + batched transform on {device.type} | {w} | {rate:.0f} |", flush=True)
                if args.reference:
                    batches = max(3, args.batches // 4)
                    rate = run(ds, device, args.batch, batches, w, reference=True, flow=args.flow)
                    print(f"| {kind} | per-sample path (before) | {w} | {rate:.0f} |", flush=True)
    print()
    print(f"- load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

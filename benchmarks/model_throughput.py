"""Training and inference throughput of a GAMDSS model on random inputs.

    python benchmarks/model_throughput.py [--model gamdss] [--batch 8] [--size 224]
        [--warmup 3] [--steps 5] [--threads 2] [--device cpu|cuda] [--amp]

Measures, in samples per second (one sample = one clip: its rise AND fall pass):

- ``forward``: eval mode, ``torch.no_grad()``, both phases;
- ``train``: train mode, forward of both phases + ``gamdss_loss`` + backward + AdamW step
  (lr 8e-4, weight decay 0.6 as in the released code).

Inputs are random tensors of the model's shapes (difference frames ``[B, 3, S, S]`` and
resting frames ``[B, 3, S, S]``), so no data loading is timed. The machine's load average
is printed with the numbers: on a shared machine other work lowers them.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from gamdss.models import build_model, gamdss_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(step, warmup: int, steps: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gamdss")
    parser.add_argument("--num-classes", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--only", choices=("forward", "train"), default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args.model, num_classes=args.num_classes, img_size=args.size).to(device)
    b, s = args.batch, args.size
    rise, fall, rise_still, fall_still = (
        torch.randn(b, c, s, s, device=device) for c in (model.in_chans, model.in_chans, 3, 3)
    )
    target = torch.randint(0, args.num_classes, (b,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=8e-4, weight_decay=0.6)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

    def forward_step():
        with torch.no_grad(), autocast:
            model(rise, fall, rise_still, fall_still)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = gamdss_loss(model(rise, fall, rise_still, fall_still), target)
        loss.backward()
        optimizer.step()

    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model}: {n_params:,} parameters; batch {b} x {s}x{s}, both phases; "
        f"device {device}, threads {torch.get_num_threads()}, amp {args.amp}"
    )
    results = {}
    for name, fn, train in (("forward", forward_step, False), ("train", train_step, True)):
        if args.only not in (None, name):
            continue
        model.train(train)
        times = _time_steps(fn, args.warmup, args.steps, device)
        mean = sum(times) / len(times)
        results[name] = b / mean
        print(
            f"{name:8s} {b / mean:8.2f} samples/s  ({mean:.3f} s/step, "
            f"min {min(times):.3f} s, {len(times)} timed steps after {args.warmup} warm-up)"
        )
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        print(f"load average (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")


if __name__ == "__main__":
    main()

"""``gamdss demo``: reselection on generated clips with known keyframes."""

from __future__ import annotations

import argparse


def _demo(args: argparse.Namespace) -> int:
    import torch

    import gamdss
    import gamdss_ext
    from gamdss.toy_clips import make_toy_clips

    info = gamdss_ext.build_info()
    print(f"gamdss {gamdss.__version__} on torch {info['torch_version']}; CUDA kernels compiled: "
          f"{info['cuda_kernels']} {' '.join(info['cuda_archs'])}; CPU kernel: {info['cpu_kernel']}")
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    print(f"GENERATED data (synthetic blobs with known keyframes, not real faces): {args.clips} clips "
          f"of {args.frames} frames, 3x{args.size}x{args.size} uint8, annotations off by up to "
          f"{args.error} frames; reselecting on {device} with window={args.window}, "
          f"lambda={args.lam}, distance={args.distance}.\n")
    toy = make_toy_clips(args.clips, args.frames, args.size, seed=args.seed, annotation_error=args.error)
    ann = toy.annotated
    out = gamdss.reselect(toy.frames.to(device), ann[:, 0], ann[:, 1], ann[:, 2], lam_rise=args.lam,
                          lam_fall=args.lam, window=args.window, distance=args.distance)
    header = f"{'clip':>4}  {'true (on, apex, off)':>21}  {'annotated':>15}  {'reselected':>15}  {'rise d':>9}  {'fall d':>9}"
    print(header)
    print("-" * len(header))
    for b in range(args.clips):
        tr = tuple(toy.truth[b].tolist())
        an = tuple(ann[b].tolist())
        rs = (int(out.onset[b]), int(out.apex[b]), int(out.offset[b]))
        print(f"{b:>4}  {str(tr):>21}  {str(an):>15}  {str(rs):>15}  {float(out.rise_distance[b]):9.1f}  "
              f"{float(out.fall_distance[b]):9.1f}")
    apex_err_before = (ann[:, 1] - toy.truth[:, 1]).abs().float().mean().item()
    apex_err_after = (out.apex.cpu() - toy.truth[:, 1]).abs().float().mean().item()
    print(f"\nmean |apex error|: annotated {apex_err_before:.2f} frames, reselected {apex_err_after:.2f} frames")
    return 0


def register(sub) -> None:
    demo = sub.add_parser("demo", help="reselect keyframes of generated clips and print them (no data needed)")
    demo.add_argument("--clips", type=int, default=6)
    demo.add_argument("--frames", type=int, default=60)
    demo.add_argument("--size", type=int, default=64)
    demo.add_argument("--error", type=int, default=3, help="largest annotation error in frames")
    demo.add_argument("--lam", type=float, default=0.2)
    demo.add_argument("--window", default="paper", choices=["paper", "released", "symmetric"])
    demo.add_argument("--distance", default="l2", choices=["l2", "centered", "released_uint8"])
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

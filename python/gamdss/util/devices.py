"""Checking a user's device argument before any work starts."""

from __future__ import annotations

import torch


def check_device(text: str, name: str = "device") -> str:
    """``text`` if it names a torch device this machine has (``cpu``, ``cuda``, ``cuda:N``);
    otherwise ``ValueError`` naming ``name`` (the argument or flag the user set)."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{name} {text!r} is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text}: CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"{name} {text!r}: only cpu and cuda are supported")
    return text


def resolve_device(text: str, name: str = "run.device") -> str:
    """The device to run on: ``auto`` gives ``cuda`` when CUDA is available, else ``cpu``; any
    other ``text`` is returned after :func:`check_device` (``ValueError`` naming ``name``)."""
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return check_device(text, name)

"""Seeds derived from names: the same text gives the same seed on every machine."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A seed in ``[0, 2**63)`` from the exact text of ``parts`` (sha256; same on every
    machine and Python version, unlike ``hash``)."""
    text = "\x1f".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1

"""The released code's tie order of the max-distance selection (docs/reselection.md, "Released
tie order"): ``ties="first_inserted"`` of the ``released`` preset.

The op breaks an exact tie toward the annotation; the released code keeps the first maximum in
the order its loop inserts the candidates. The two differ only on clips whose largest distance
is shared by several candidates, so:

1. the op computes every candidate's distance (its tables). For uint8 frames a distance is the
   square root of an exact integer (divided by ``D`` for ``centered``), a monotone function, so
   every exact maximum has the table's largest value;
2. the clips whose rise or fall table reaches its largest value more than once (every clip with
   an exact tie, and rarely one whose near-equal integers round alike) are recomputed by
   :func:`gamdss.op.reference.reselect_windows` with ``ties="first_inserted"``, in exact integer
   arithmetic; every other clip keeps the op's result, which both orders agree on;
3. floating frames all go to the reference: their distances are not exact, so a table cannot
   tell a tie.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from . import ops, reference
from .api import reselect_with
from .ops import MAX_TABLE_BYTES
from .packing import PackedClips
from .result import Reselection


def _chunks(windows: torch.Tensor, limit: int | None = None) -> Iterator[list[int]]:
    """Consecutive clip indices of int64 ``[B, 6]`` windows whose padded float64 tables (rise
    ``|O| x |A|`` and fall ``|F|``, each clip padded to the chunk's largest) fit in ``limit``
    bytes (default :data:`gamdss.op.ops.MAX_TABLE_BYTES`); a clip too large alone is a chunk alone."""
    limit = MAX_TABLE_BYTES if limit is None else limit
    sizes = (windows[:, 1::2] - windows[:, 0::2] + 1).tolist()
    chunk: list[int] = []
    n_o = n_a = n_f = 0
    for b, (o, a, f) in enumerate(sizes):
        grown = (max(n_o, o), max(n_a, a), max(n_f, f))
        if chunk and 8 * (len(chunk) + 1) * (grown[0] * grown[1] + grown[2]) > limit:
            yield chunk
            chunk, grown = [], (o, a, f)
        chunk.append(b)
        n_o, n_a, n_f = grown
    if chunk:
        yield chunk


def _max_is_shared(table: torch.Tensor) -> torch.Tensor:
    """bool ``[B]``: whether the largest non-NaN value of each row of ``table`` ``[B, ...]``
    occurs more than once."""
    flat = table.flatten(1).nan_to_num(nan=-torch.inf)
    if flat.shape[1] == 0:
        return torch.zeros(flat.shape[0], dtype=torch.bool, device=flat.device)
    return (flat == flat.amax(dim=1, keepdim=True)).sum(dim=1) > 1


def _pad_to(table: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    out = table.new_full(shape, float("nan"))
    out[tuple(slice(0, n) for n in table.shape)] = table
    return out


def _chunk_first_inserted(
    packed: PackedClips, annotations: torch.Tensor, windows: torch.Tensor, distance: str, return_table: bool
) -> Reselection:
    """One chunk of uint8 clips: the op for all, the reference again for the clips whose largest
    rise or fall distance occurs more than once (module docstring, steps 1-2)."""
    # chunks are sized by _chunks (a clip too large alone is a chunk alone): no second limit
    out = ops.reselect_windows(packed, annotations, windows, distance=distance, return_table=True, check_size=False)
    assert out.rise_table is not None and out.fall_table is not None
    tied = (_max_is_shared(out.rise_table) | _max_is_shared(out.fall_table)).nonzero().flatten().cpu()
    if len(tied):
        sub = PackedClips(packed.frames, packed.starts[tied], packed.lengths[tied])
        ref = reference.reselect_windows(
            sub, annotations[tied], windows[tied], distance=distance, return_table=True, ties="first_inserted"
        )
        assert ref.fall_table is not None
        at = tied.to(out.onset.device)
        fields = {}
        for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
            merged = getattr(out, name).clone()
            merged[at] = getattr(ref, name)
            fields[name] = merged
        # The fall table follows the chosen apex; the rise table is the same in both orders.
        fall_table = out.fall_table.clone()
        fall_table[at] = _pad_to(ref.fall_table, torch.Size((len(tied), out.fall_table.shape[1])))
        out = out._replace(**fields, fall_table=fall_table)
    return out if return_table else out._replace(rise_table=None, fall_table=None)


def reselect_windows(
    packed: PackedClips,
    annotations: torch.Tensor,
    windows: torch.Tensor,
    *,
    distance: str = "l2",
    return_table: bool = False,
) -> Reselection:
    """:func:`gamdss.op.ops.reselect_windows` with exact ties broken in the released code's
    loop order (:func:`gamdss.op.reference.rise_tiebreak`); same arguments, same result type."""
    if packed.frames.dtype != torch.uint8:
        return reference.reselect_windows(
            packed, annotations, windows, distance=distance, return_table=return_table, ties="first_inserted"
        )
    windows = windows.to("cpu", torch.int64)
    annotations = annotations.to("cpu", torch.int64)
    parts = [
        _chunk_first_inserted(
            PackedClips(packed.frames, packed.starts[idx], packed.lengths[idx]),
            annotations[idx],
            windows[idx],
            distance,
            return_table,
        )
        for idx in map(torch.tensor, _chunks(windows))
    ]
    if not parts:  # an empty batch
        return ops.reselect_windows(packed, annotations, windows, distance=distance, return_table=return_table)
    if len(parts) == 1:
        return parts[0]
    cat = {name: torch.cat([getattr(p, name) for p in parts]) for name in Reselection._fields[:6]}
    if not return_table:
        return Reselection(**cat)
    rise = [p.rise_table for p in parts]
    fall = [p.fall_table for p in parts]
    n_o = max(t.shape[1] for t in rise if t is not None)
    n_a = max(t.shape[2] for t in rise if t is not None)
    n_f = max(t.shape[1] for t in fall if t is not None)
    return Reselection(
        **cat,
        rise_table=torch.cat([_pad_to(t, torch.Size((t.shape[0], n_o, n_a))) for t in rise if t is not None]),
        fall_table=torch.cat([_pad_to(t, torch.Size((t.shape[0], n_f))) for t in fall if t is not None]),
    )


def reselect(
    clips,
    onset,
    apex,
    offset,
    *,
    lengths=None,
    lam_rise: float = 0.1,
    lam_fall: float = 0.1,
    window: str = "released",
    distance: str = "released_uint8",
    return_table: bool = False,
    clip_ids: Sequence[str] | None = None,
) -> Reselection:
    """:func:`gamdss.reselect` with exact ties broken in the released code's order (the
    ``released`` preset; the window must be ``released``, the loop this order comes from)."""
    if window != "released":
        raise ValueError(f"the released tie order is defined on window 'released' (its loop's windows), got {window!r}")
    return reselect_with(
        reselect_windows,
        clips,
        onset,
        apex,
        offset,
        lengths=lengths,
        lam_rise=lam_rise,
        lam_fall=lam_fall,
        window=window,
        distance=distance,
        return_table=return_table,
        clip_ids=clip_ids,
    )

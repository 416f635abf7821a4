"""The op against the reference over random batches (hypothesis): every dtype, distance,
preset, ragged batches, lambda in [0, 0.5], windows at clip edges, exact ties and
near-identical frames, both CPU inner kernels and CUDA when present. The contract is
docs/reselection.md, section "The max-distance op": **Ranges**, **Windows**, **Distances**
(exact for uint8, the float tolerance), **Selection** (ties, λ = 0 gives the annotation) and
**Output** (the tables, ragged batches); **Values** (NaN, inf, overflow) is test_frame_values.py's."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import gamdss
import gamdss_ext
from gamdss.op import reference
from gamdss.op.packing import keyframes, pack_clips
from gamdss.op.windows import preset_windows
from oracle import assert_matches_reference
from strategies import DTYPES, Case, apply_layout, cases, padded
from support import available_cpu_variants, devices

VARIANTS = available_cpu_variants()
SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_case(case: Case, device: str):
    frame_dims = case.clips[0].dim() - 1 if case.clips else 0
    if case.as_padded:
        x, lengths = padded(case.clips)
        clips = apply_layout(x, case.layout, frame_dims).to(device)
    else:
        clips = [apply_layout(c, case.layout, frame_dims).to(device) for c in case.clips]
        lengths = None
        if not clips:
            clips = torch.empty((0, 1, 3), dtype=torch.uint8, device=device)
    kwargs = dict(
        lengths=lengths,
        lam_rise=case.lam_rise,
        lam_fall=case.lam_fall,
        window=case.window,
        distance=case.distance,
        return_table=True,
    )
    got = gamdss.reselect(clips, case.onset, case.apex, case.offset, **kwargs)
    packed = pack_clips(clips, lengths)
    ann = keyframes(case.onset, case.apex, case.offset, packed.lengths)
    win = preset_windows(case.window, ann[:, 0], ann[:, 1], ann[:, 2], packed.lengths, case.lam_rise, case.lam_fall)
    assert torch.equal(got.windows, win)
    assert got.onset.device.type == device
    assert_matches_reference(got, packed, ann, win, case.distance)
    return got


@SETTINGS
@given(case=cases())
def test_op_matches_reference(case: Case):
    results = []
    for device in devices():
        variants = VARIANTS if device == "cpu" else [None]
        for variant in variants:
            if variant:
                gamdss_ext.set_cpu_kernel(variant)
            results.append(run_case(case, device))
    gamdss_ext.set_cpu_kernel("auto")
    # uint8 results are bit-identical across CPU kernels and CUDA (checked against the
    # reference above); floating results of the two CPU kernels agree exactly too, since
    # the summation order is fixed by the source.
    first = results[0]
    for other in results[1:]:
        if case.clips and case.clips[0].dtype == torch.uint8 or other.onset.device == first.onset.device:
            for name in ("onset", "apex", "offset"):
                assert torch.equal(getattr(first, name).cpu(), getattr(other, name).cpu())


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(dtypes=(torch.uint8, torch.float32, torch.float64)))
def test_frame_distances_match_reference(case: Case):
    clips = case.clips or torch.empty((0, 1, 3), dtype=torch.uint8)
    packed = pack_clips(clips)
    ref_frames = torch.tensor(case.onset, dtype=torch.int64)
    want = reference.frame_distances(packed, ref_frames, distance=case.distance)
    for device in devices():
        dev_packed = pack_clips([c.to(device) for c in case.clips]) if case.clips else packed
        got = gamdss.op.ops.frame_distances(dev_packed, ref_frames, distance=case.distance).cpu()
        assert got.shape == want.shape
        assert torch.equal(got.isnan(), want.isnan())
        if case.clips and case.clips[0].dtype == torch.uint8:
            assert torch.equal(got.nan_to_num(-1), want.nan_to_num(-1))
        else:
            m = ~want.isnan()
            scale = float(want[m].abs().max()) if bool(m.any()) else 1.0
            assert torch.allclose(got[m], want[m], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lambda_zero_returns_the_annotation(dtype):
    gen = torch.Generator().manual_seed(7)
    clips = [torch.rand((n, 3, 4, 4), generator=gen).mul(255).to(dtype) for n in (10, 17, 5)]
    out = gamdss.reselect(clips, [1, 0, 2], [4, 9, 2], [8, 16, 4], lam_rise=0.0, lam_fall=0.0)
    assert out.onset.tolist() == [1, 0, 2]
    assert out.apex.tolist() == [4, 9, 2]
    assert out.offset.tolist() == [8, 16, 4]


def test_thousands_of_uint8_cases_bit_identical_across_cpu_kernels():
    """Many random cases, quickly: all CPU variants against each other and the reference."""
    gen = torch.Generator().manual_seed(1234)
    n_cases = 0
    for trial in range(60):
        b = int(torch.randint(1, 40, (1,), generator=gen))
        t = int(torch.randint(2, 40, (1,), generator=gen))
        x = torch.randint(0, 256, (b, t, 3, 6, 5), generator=gen, dtype=torch.uint8)
        if trial % 3 == 0:
            x = x[:, :, :, :, :1].expand(b, t, 3, 6, 5).contiguous() // 2 * 2  # many ties
        ann = torch.sort(torch.randint(0, t, (b, 3), generator=gen), dim=1).values
        lam = float(torch.rand((), generator=gen)) * 0.5
        distance = ["l2", "centered", "released_uint8"][trial % 3]
        window = ["paper", "released", "symmetric"][(trial // 3) % 3]
        ref = reference.reselect(
            x,
            ann[:, 0],
            ann[:, 1],
            ann[:, 2],
            lam_rise=lam,
            lam_fall=lam,
            window=window,
            distance=distance,
            return_table=True,
        )
        for variant in VARIANTS:
            gamdss_ext.set_cpu_kernel(variant)
            got = gamdss.reselect(
                x,
                ann[:, 0],
                ann[:, 1],
                ann[:, 2],
                lam_rise=lam,
                lam_fall=lam,
                window=window,
                distance=distance,
                return_table=True,
            )
            for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
                assert torch.equal(getattr(got, name), getattr(ref, name)), (trial, variant, name)
            assert torch.equal(got.rise_table.nan_to_num(-1), ref.rise_table.nan_to_num(-1))
        n_cases += b
    assert n_cases > 1000

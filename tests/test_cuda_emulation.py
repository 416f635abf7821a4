"""The CUDA kernels, run without a GPU: csrc/cuda/*.cu compiled for the host by the C++ compiler
with tests/cuda_emulation/cuda_host_emulation.h (blocks one after another, the threads of a
block as cooperative fibers with real barriers, warp shuffles exchanged lane by lane, bounds-
and alignment-checked loads, guard pages after every buffer), driven through the same host
launch functions the torch launcher calls (csrc/cuda/launch.h), on random cases of every dtype
and distance, against the float64 / exact reference (docs/reselection.md).

uint8 results must be bit-identical to the reference; floating results hold to tests/oracle.py.
Independently of the reference, the curve kernel (frame_distances) and the selection kernels
(reselect) sum every pair in the same order, so for l2 and centered the tables of reselect must
equal the curves bit for bit.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from gamdss.op import reference
from gamdss.op.packing import PackedClips
from gamdss.op.result import Reselection
from gamdss.op.windows import preset_windows
from oracle import assert_matches_reference

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "tests" / "cuda_emulation"
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")

pytestmark = pytest.mark.skipif(
    CXX is None or sys.platform != "linux",
    reason="the host emulation of the CUDA kernels needs a C++20 compiler (g++/clang++) on Linux",
)

MAGIC = 0x47414D4453454D55
ELEM = {torch.uint8: 0, torch.float16: 1, torch.bfloat16: 2, torch.float32: 3, torch.float64: 4}
DIST = {"l2": 0, "centered": 1, "released_uint8": 2}
K_MAX_SLICE_CHUNKS = 4 * 256  # csrc/cuda/launch.h
FLAGS = ["-std=c++20", "-O1", "-ffp-contract=off", "-fno-fast-math", "-Wno-unknown-pragmas", "-pthread"]


def _compile(objects_dir: Path) -> Path:
    include = ["-I", str(EMU / "include"), "-I", str(ROOT / "csrc"), "-include", str(EMU / "cuda_host_emulation.h")]
    units = [
        (ROOT / "csrc/cuda/reselect_cuda.cu", ["-x", "c++"]),
        (ROOT / "csrc/cuda/frame_distances_cuda.cu", ["-x", "c++"]),
        (EMU / "driver.cpp", []),
        (EMU / "selftest.cpp", []),
    ]
    procs = []
    for src, lang in units:
        obj = objects_dir / (src.name + ".o")
        cmd = [CXX, *FLAGS, *include, *lang, "-c", str(src), "-o", str(obj)]
        procs.append((src, obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for src, _, p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            pytest.fail(f"compiling {src.relative_to(ROOT)} for the host emulation failed:\n{out[-6000:]}")
    exe = objects_dir / "emulated_kernels"
    objs = [str(o) for _, o, _ in procs]
    link = subprocess.run([CXX, *FLAGS, *objs, "-o", str(exe)], capture_output=True, text=True, timeout=300)
    if link.returncode != 0:
        pytest.fail(f"linking the host emulation failed:\n{link.stdout}{link.stderr}")
    return exe


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    return _compile(tmp_path_factory.mktemp("cuda_emulation"))


# ---------------------------------------------------------------------------------------------
# Cases.
@dataclass
class Case:
    op: str  # "reselect" or "frame_distances"
    storage: torch.Tensor  # [n, stride] contiguous; frames are storage[:, :numel]
    numel: int
    base_offset: int  # bytes past a 16-byte boundary
    distance: str
    starts: torch.Tensor
    lengths: torch.Tensor
    ann: torch.Tensor  # [B, 3]
    windows: torch.Tensor  # [B, 6]
    reference: torch.Tensor  # [B] (frame_distances)
    tables: tuple[int, int, int] = (0, 0, 0)
    max_length: int = 0

    @property
    def frames(self) -> torch.Tensor:
        return self.storage[:, : self.numel]

    @property
    def packed(self) -> PackedClips:
        return PackedClips(self.frames, self.starts, self.lengths)

    def encode(self) -> bytes:
        n, stride = self.storage.shape
        b = int(self.starts.shape[0])
        head = [MAGIC, 0 if self.op == "reselect" else 1, ELEM[self.storage.dtype], DIST[self.distance], n]
        head += [self.numel, stride, self.base_offset, b, *self.tables, self.max_length, 0, 0, 0]
        clips = []
        for i in range(b):
            o, a, f = self.ann[i].tolist()
            if self.op == "frame_distances":
                a = int(self.reference[i])
            clips += [int(self.starts[i]), int(self.lengths[i]), o, a, f, *self.windows[i].tolist()]
        flat = self.storage.reshape(-1)[: (n - 1) * stride + self.numel] if n else self.storage.reshape(-1)[:0]
        data = flat.contiguous().view(torch.uint8).numpy().tobytes()
        return struct.pack(f"<{16 + len(clips)}q", *head, *clips) + data


def _frames(g: torch.Generator, dtype: torch.dtype, n: int, numel: int, stride: int, ties: bool) -> torch.Tensor:
    """[n, stride] storage; columns past numel are padding that no kernel may read (huge values)."""
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (n, stride), generator=g, dtype=torch.int64)
    else:
        x = torch.randn((n, stride), generator=g, dtype=torch.float64) * 40 + 20
        if torch.rand((), generator=g) < 0.5:
            x = x.round()  # integer values: exact in every dtype, many equal sums
    if ties:  # frames drawn from three distinct ones: exact ties everywhere
        x = x[torch.randint(0, min(3, n), (n,), generator=g)]
    x[:, numel:] = 100 if dtype == torch.uint8 else 3e4
    return x.to(dtype).contiguous()


def _layout(g: torch.Generator, b: int, short: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """starts, lengths and the number of frames: packed back to back, padded [B, T_max] with
    shorter clips, or clips anywhere (overlapping) in a longer buffer."""
    choices = [1, 2, 3, 4, 6] if short else [1, 2, 3, 5, 8, 13, 21, 34]
    lengths = torch.tensor([choices[int(i)] for i in torch.randint(0, len(choices), (b,), generator=g)])
    kind = int(torch.randint(0, 3, (), generator=g))
    if kind == 0:
        starts = torch.cumsum(lengths, 0) - lengths
        n = int(lengths.sum())
    elif kind == 1:
        t_max = int(lengths.max()) + int(torch.randint(0, 3, (), generator=g))
        starts = torch.arange(b) * t_max
        n = b * t_max
    else:
        n = int(lengths.max()) + int(torch.randint(0, 12, (), generator=g))
        starts = torch.tensor([int(torch.randint(0, n - int(t) + 1, (), generator=g)) for t in lengths])
    return starts.to(torch.int64), lengths.to(torch.int64), n


def _windows(g: torch.Generator, ann: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A preset's windows at a random λ (0 included), or random valid windows."""
    if torch.rand((), generator=g) < 0.6:
        preset = ["paper", "released", "symmetric"][int(torch.randint(0, 3, (), generator=g))]
        lam = [0.0, 0.1, 0.5, 1.0, 3.0][int(torch.randint(0, 5, (), generator=g))]
        return preset_windows(preset, ann[:, 0], ann[:, 1], ann[:, 2], lengths, lam, lam)

    def span(lo_max: int, t: int) -> list[int]:
        lo = int(torch.randint(0, lo_max + 1, (), generator=g))
        return [lo, int(torch.randint(lo, t, (), generator=g))]

    rows = []
    for t in lengths.tolist():
        a = span(t - 1, t)
        o = span(a[1], t)  # o_lo <= a_hi
        rows.append(o + a + span(t - 1, t))
    return torch.tensor(rows, dtype=torch.int64)


def _stride_and_offset(g: torch.Generator, dtype: torch.dtype, numel: int) -> tuple[int, int]:
    es = torch.empty((), dtype=dtype).element_size()
    v = 16 // es
    kind = int(torch.randint(0, 4, (), generator=g))
    if kind == 0:
        return numel, 0  # dense
    if kind == 1:
        return -(-numel // v) * v, 0  # rows padded to 16 bytes: 16-byte loads
    if kind == 2:
        return numel + int(torch.randint(1, 9, (), generator=g)), 0
    return -(-numel // v) * v, es * int(torch.randint(1, v, (), generator=g)) if v > 1 else 0  # misaligned


def make_cases(seed: int, dtype: torch.dtype, distance: str, count: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    es = torch.empty((), dtype=dtype).element_size()
    v = 16 // es
    sizes = [1, 2, v - 1 or 1, v, v + 1, 3 * v + 2, 97, 1000, K_MAX_SLICE_CHUNKS * v + 3]  # last: two slices
    cases = []
    for i in range(count):
        numel = (
            sizes[i % len(sizes)] if i < len(sizes) else sizes[int(torch.randint(0, len(sizes) - 1, (), generator=g))]
        )
        big = numel > K_MAX_SLICE_CHUNKS * v
        b = int(torch.randint(1, 3 if big else 6, (), generator=g))
        starts, lengths, n = _layout(g, b, short=big)
        stride, offset = _stride_and_offset(g, dtype, numel)
        storage = _frames(g, dtype, n, numel, stride, ties=i % 3 == 0)
        ann = torch.stack([torch.sort(torch.randint(0, int(t), (3,), generator=g)).values for t in lengths])
        win = _windows(g, ann, lengths)
        ref = torch.tensor([int(torch.randint(0, int(t), (), generator=g)) for t in lengths], dtype=torch.int64)
        sizes_w = tuple(int(s) for s in (win[:, 1::2] - win[:, 0::2] + 1).amax(dim=0))
        mode = i % 4
        tables = (0, 0, 0) if mode == 1 else tuple(s + (2 if mode == 2 else 0) for s in sizes_w)
        max_length = int(lengths.max()) + (3 if mode == 3 else 0)
        for op in ("reselect", "frame_distances"):
            cases.append(Case(op, storage, numel, offset, distance, starts, lengths, ann, win, ref, tables, max_length))
    return cases


# ---------------------------------------------------------------------------------------------
# Running.
def run_driver(exe: Path, cases: list[Case], tmp: Path) -> list:
    cases_file, out_file = tmp / "cases.bin", tmp / "out.bin"
    cases_file.write_bytes(b"".join(c.encode() for c in cases))
    proc = subprocess.run([str(exe), str(cases_file), str(out_file)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"emulated kernels failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    raw = memoryview(out_file.read_bytes())
    pos = 0

    def take(n: int, dtype) -> torch.Tensor:
        nonlocal pos
        arr = np.frombuffer(raw, dtype=dtype, count=n, offset=pos).copy()
        pos += n * 8
        return torch.from_numpy(arr)

    results = []
    for c in cases:
        b = int(c.starts.shape[0])
        if c.op == "reselect":
            idx = [take(b, np.int64) for _ in range(3)]
            dist = [take(b, np.float64) for _ in range(2)]
            to, ta, tf = c.tables
            rise_t = fall_t = None
            if any(c.tables):
                rise_t = take(b * to * ta, np.float64).reshape(b, to, ta)
                fall_t = take(b * tf, np.float64).reshape(b, tf)
            results.append(Reselection(*idx, *dist, c.windows, rise_t, fall_t))
        else:
            results.append(take(b * c.max_length, np.float64).reshape(b, c.max_length))
    assert pos == len(raw), "the driver wrote more output than the cases ask for"
    return results


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN where NaN."""
    return (
        a.shape == b.shape and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(-1.0), b.nan_to_num(-1.0))
    )


def check_reselect(case: Case, got: Reselection) -> None:
    so, sa, sf = (int(s) for s in (case.windows[:, 1::2] - case.windows[:, 0::2] + 1).amax(dim=0))
    if got.rise_table is not None:
        # Table columns past the batch's largest windows are padding: NaN.
        assert got.rise_table[:, so:, :].isnan().all() and got.rise_table[:, :, sa:].isnan().all()
        assert got.fall_table[:, sf:].isnan().all()
        got = got._replace(
            rise_table=got.rise_table[:, :so, :sa].contiguous(), fall_table=got.fall_table[:, :sf].contiguous()
        )
    if case.storage.dtype == torch.uint8:
        ref = reference.reselect_windows(case.packed, case.ann, case.windows, distance=case.distance, return_table=True)
        for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
            assert torch.equal(getattr(got, name), getattr(ref, name)), (name, getattr(got, name), getattr(ref, name))
        if got.rise_table is not None:
            assert _same(got.rise_table, ref.rise_table) and _same(got.fall_table, ref.fall_table)
    else:
        assert_matches_reference(got, case.packed, case.ann, case.windows, case.distance)


def check_curve(case: Case, got: torch.Tensor) -> None:
    want = reference.frame_distances(case.packed, case.reference, distance=case.distance)
    pad = torch.full((want.shape[0], case.max_length - want.shape[1]), float("nan"), dtype=torch.float64)
    want = torch.cat([want, pad], dim=1)
    if case.storage.dtype == torch.uint8:
        assert _same(got, want)
    else:
        assert torch.equal(got.isnan(), want.isnan())
        m = ~want.isnan()
        scale = float(want[m].abs().max()) if m.any() else 0.0
        assert torch.allclose(got[m], want[m], rtol=1e-5, atol=1e-5 * scale + 1e-12)


def check_tables_equal_curves(case: Case, res: Reselection, curves_at_apex: torch.Tensor) -> None:
    """l2 / centered: d(a*, t) from the curve kernel equals, bit for bit, every table entry of
    reselect that pairs a* with t (rise: onset t, apex a*; fall: offset t)."""
    for b in range(int(case.starts.shape[0])):
        a = int(res.apex[b])
        o_lo, o_hi, a_lo, _, f_lo, f_hi = case.windows[b].tolist()
        for o in range(o_lo, min(o_hi, a) + 1):
            assert curves_at_apex[b, o].item() == res.rise_table[b, o - o_lo, a - a_lo].item(), (b, o, a)
        for k, f in enumerate(range(f_lo, f_hi + 1)):
            assert curves_at_apex[b, max(f, a)].item() == res.fall_table[b, k].item(), (b, f, a)
        assert curves_at_apex[b, int(res.onset[b])].item() == res.rise_distance[b].item()
        assert curves_at_apex[b, int(res.offset[b])].item() == res.fall_distance[b].item()


COMBOS = [(dt, d) for dt in ELEM for d in DIST if d != "released_uint8" or dt == torch.uint8]


@pytest.mark.parametrize("dtype, distance", COMBOS, ids=[f"{str(dt)[6:]}-{d}" for dt, d in COMBOS])
def test_emulated_cuda_kernels_match_the_reference(driver, tmp_path, dtype, distance):
    cases = make_cases(1000 + 17 * ELEM[dtype] + DIST[distance], dtype, distance, count=14)
    results = run_driver(driver, cases, tmp_path)
    for case, got in zip(cases, results):
        if case.op == "reselect":
            check_reselect(case, got)
        else:
            check_curve(case, got)
    if distance == "released_uint8":
        return  # the wrap-around depends on the direction of the pair: no symmetric check
    # Second pass: the curves from each clip's chosen apex, against reselect's tables.
    pairs = [(c, r) for c, r in zip(cases, results) if c.op == "reselect" and r.rise_table is not None]
    curve_cases = [
        Case(
            "frame_distances",
            c.storage,
            c.numel,
            c.base_offset,
            distance,
            c.starts,
            c.lengths,
            c.ann,
            c.windows,
            r.apex.clone(),
            max_length=int(c.lengths.max()),
        )
        for c, r in pairs
    ]
    curves = run_driver(driver, curve_cases, tmp_path)
    for (case, res), cur in zip(pairs, curves):
        check_tables_equal_curves(case, res, cur)


def tie_case(dtype: torch.dtype, distance: str) -> Case:
    """Clips built so that every tie rule decides: equal largest distances whose costs tie (the
    smaller onset, then the smaller apex, then the smaller offset wins), a larger index with a
    smaller cost, λ = 0 windows, a one-frame clip. Integer frame values: every sum is exact in
    every dtype, so the choice must equal the reference's exactly."""
    d = 7
    a_vec = torch.zeros(d)
    b_vec = torch.tensor([3.0, 0, 1, 2, 0, 5, 1])
    c_vec = torch.tensor([0.0, 4, 0, 0, 2, 0, 0])
    if distance == "centered":  # centered distances ignore a constant shift: keep shapes distinct
        b_vec, c_vec = b_vec * torch.arange(1, d + 1), c_vec * torch.arange(d, 0, -1)
    clips, ann, win = [], [], []

    def clip(t: int, special: dict[int, torch.Tensor], a3, w6):
        x = a_vec.repeat(t, 1)
        for i, v in special.items():
            x[i] = v
        clips.append(x)
        ann.append(a3)
        win.append(w6)

    clip(12, {3: b_vec, 5: b_vec, 9: c_vec, 11: c_vec}, [4, 8, 10], [2, 6, 6, 8, 9, 11])  # onset 3 vs 5, offset 9 vs 11
    clip(12, {7: b_vec, 9: b_vec}, [4, 8, 10], [3, 5, 6, 10, 10, 11])  # apex 7 vs 9
    clip(12, {2: b_vec, 5: b_vec}, [4, 8, 10], [1, 6, 8, 8, 10, 10])  # cost: onset 5 (cost 1) beats 2
    clip(10, {1: b_vec, 6: c_vec}, [2, 5, 7], [2, 2, 5, 5, 7, 7])  # λ = 0: the annotation
    clip(1, {}, [0, 0, 0], [0, 0, 0, 0, 0, 0])  # one frame
    clip(9, {4: b_vec, 5: b_vec}, [1, 6, 7], [0, 3, 4, 8, 2, 8])  # offsets before the apex become it
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.int64)
    storage = torch.cat(clips).to(dtype).contiguous()
    starts = torch.cumsum(lengths, 0) - lengths
    ann_t, win_t = torch.tensor(ann), torch.tensor(win)
    sizes = tuple(int(s) for s in (win_t[:, 1::2] - win_t[:, 0::2] + 1).amax(dim=0))
    return Case(
        "reselect",
        storage,
        d,
        0,
        distance,
        starts,
        lengths,
        ann_t,
        win_t,
        torch.zeros(6, dtype=torch.int64),
        sizes,
        int(lengths.max()),
    )


@pytest.mark.parametrize("dtype, distance", COMBOS, ids=[f"{str(dt)[6:]}-{d}" for dt, d in COMBOS])
def test_emulated_tie_rules_are_exact(driver, tmp_path, dtype, distance):
    case = tie_case(dtype, distance)
    (got,) = run_driver(driver, [case], tmp_path)
    ref = reference.reselect_windows(case.packed, case.ann, case.windows, distance=distance, return_table=True)
    for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
        assert torch.equal(getattr(got, name), getattr(ref, name)), (name, getattr(got, name), getattr(ref, name))
    assert _same(got.rise_table, ref.rise_table) and _same(got.fall_table, ref.fall_table)
    # The designed outcomes, so that the reference is not the only judge.
    assert got.onset.tolist()[:4] == [3, 4, 5, 2] and got.apex.tolist()[1:4] == [7, 8, 5]
    if distance != "released_uint8":
        assert got.offset.tolist()[0] == 9 and got.offset.tolist()[3] == 7


# ---------------------------------------------------------------------------------------------
# The emulation itself: it must catch what the GPU would get wrong or fault on.
def selftest(driver: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(driver), "--selftest", mode], capture_output=True, text=True, timeout=120)


def test_emulated_warp_intrinsics_and_barriers(driver):
    out = selftest(driver, "intrinsics")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_emulated_half_conversion_is_exact_for_every_bit_pattern(driver):
    out = selftest(driver, "half")
    assert out.returncode == 0, out.stderr
    got = torch.from_numpy(np.frombuffer(bytes.fromhex(out.stdout.strip()), dtype=np.uint32).astype(np.int64))
    want = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.float16).float().view(torch.int32)
    want = want.to(torch.int64) & 0xFFFFFFFF
    nan = want.view(torch.int64).bitwise_and(0x7F800000).eq(0x7F800000) & want.bitwise_and(0x7FFFFF).ne(0)
    assert torch.equal(got[~nan], want[~nan])
    assert (got[nan].bitwise_and(0x7F800000) == 0x7F800000).all() and (got[nan].bitwise_and(0x7FFFFF) != 0).all()


@pytest.mark.parametrize(
    "mode, message",
    [
        ("oob-load", "outside every device buffer"),
        ("misaligned-load", "misaligned"),
        ("oob-store", "out of bounds of device buffer 'out'"),
        ("divergent-barrier", "deadlock"),
        ("divergent-shuffle", "deadlock"),
    ],
)
def test_the_emulation_reports_faults(driver, mode, message):
    out = selftest(driver, mode)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr

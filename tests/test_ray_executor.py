"""Two LOSO folds through a local Ray instance give the same results files as the local executor."""

from __future__ import annotations

import json
import os

import pytest

from gamdss.train import load_config
from gamdss.train.executors import LocalExecutor, RayExecutor
from gamdss.train.loso import run_loso
from train_fixtures import make_toy_cache, toy_overrides

ray = pytest.importorskip("ray", reason="ray is not installed")


@pytest.fixture(scope="module")
def ray_instance():
    try:
        ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, log_to_driver=False)  # 0 GPUs on any machine
    except Exception as exc:  # noqa: BLE001 - any start failure means: cannot test here
        pytest.skip(f"a local Ray instance cannot start here: {exc}")
    yield
    ray.shutdown()


def test_ray_executor_writes_the_same_results_as_the_local_one(tmp_path, ray_instance):
    make_toy_cache(tmp_path / "cache")
    extra = ("optim.epochs=2", "run.folds=[casme2_sub01, casme2_sub02]")
    local_cfg = load_config("tiny-cpu", toy_overrides(tmp_path / "cache", tmp_path / "local", *extra))
    ray_cfg = load_config("tiny-cpu", toy_overrides(tmp_path / "cache", tmp_path / "ray", *extra, "run.executor=ray"))
    local = run_loso(local_cfg, progress=False, executor=LocalExecutor())
    remote = run_loso(ray_cfg, progress=False)  # run.executor=ray -> RayExecutor on the running instance
    assert remote["modes"] == local["modes"]
    for name in (
        "predictions.csv",
        "folds.csv",
        "table.md",
        "table.tex",
        "per_class_fused.csv",
        "plan.json",
        "reselection.csv",
    ):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text(), name
    local_folds = _fold_records(tmp_path / "local")
    ray_folds = _fold_records(tmp_path / "ray")
    assert all(r["pid"] != os.getpid() for r in ray_folds)  # they really ran in Ray workers
    volatile = ("seconds", "pid")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in ray_folds] == [
        {k: v for k, v in r.items() if k not in volatile} for r in local_folds
    ]


def _fold_records(out):
    return sorted((json.loads(p.read_text()) for p in (out / "folds").glob("*.json")), key=lambda r: r["subject"])


@pytest.mark.parametrize("cuda", [True, False])
def test_each_fold_asks_for_one_gpu_when_cuda_is_available(monkeypatch, cuda):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert RayExecutor().gpus_per_fold() == (1 if cuda else 0)
    assert RayExecutor(num_gpus_per_fold=0.5).gpus_per_fold() == 0.5


@pytest.mark.parametrize(("device", "gpus"), [("cpu", 0), ("cuda", 1), ("cuda:1", 1), ("auto", 1)])
def test_a_fold_asks_for_a_gpu_only_when_run_device_resolves_to_cuda(monkeypatch, device, gpus):
    import torch

    from gamdss.train.executors import make_executor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the driver has CUDA; the cluster may not
    cfg = load_config("tiny-cpu", [f"run.device={device}", "run.executor=ray"])
    assert make_executor(cfg).gpus_per_fold() == gpus


def test_gpu_folds_on_a_local_instance_without_gpus_are_refused_not_left_waiting(ray_instance):
    with pytest.raises(RuntimeError, match=r"asks Ray for 1 GPU .* local Ray instance has 0; set run\.device=cpu"):
        RayExecutor(num_gpus_per_fold=1).run(str, ["casme2_sub01"], lambda p, o: None)


def test_a_fold_that_asks_for_no_gpu_sees_none(ray_instance):
    """Ray leaves CUDA_VISIBLE_DEVICES alone for a task without GPUs: on a GPU node a
    run.device=auto fold resolved to cuda (a GPU Ray never reserved) while the driver, without
    CUDA, had decided cpu, and the next resume was refused for mixing devices."""
    import os

    seen = []  # os.getenv, not a function of this module: the workers cannot import the tests
    RayExecutor(num_gpus_per_fold=0).run(os.getenv, ["CUDA_VISIBLE_DEVICES"], lambda p, o: seen.append(o))
    assert seen == [""]

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

import gamdss_ext  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_cpu_kernel():
    yield
    gamdss_ext.set_cpu_kernel("auto")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module of small tensors: much faster, and on a busy machine
    two threads spinning against other processes are slower still (results do not depend on
    it). Restores the thread count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

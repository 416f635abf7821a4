import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

import gamdss_ext  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_cpu_kernel():
    yield
    gamdss_ext.set_cpu_kernel("auto")

"""Fixtures shared by every test folder."""

import contextlib
import os

import pytest
import torch


@contextlib.contextmanager
def _torch_threads(n: int):
    # Tiny nets on a shared 2-core machine: 2 OpenMP threads spin-wait against each other and run many
    # times slower than one. The previous setting is restored (library code never sets it).
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Run one test with a single torch thread."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """Run a whole test module with a single torch thread (request it from an autouse fixture)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="session", autouse=True)
def _frame_cache(tmp_path_factory):
    """Emulated MNIST5kEvents frames (the transfer recipe's disk cache) are made once per test session, in a
    temporary folder: the transfer tests and the demo test share them, and no run outside the tests sees them."""
    old = os.environ.get("SJ_CACHE_DIR")
    os.environ["SJ_CACHE_DIR"] = str(tmp_path_factory.mktemp("sj_cache"))
    yield
    if old is None:
        os.environ.pop("SJ_CACHE_DIR", None)
    else:
        os.environ["SJ_CACHE_DIR"] = old

"""Fixtures shared by every test folder."""

import contextlib

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

"""Fixtures shared by every test folder."""

import contextlib
import ctypes
import gc
import os
import sys
import tempfile

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
def _session_temp(tmp_path_factory):
    """The system temp folder of the whole test session is a fresh folder of pytest's: every default that
    lives there (the emulated-frame cache ``<system temp>/sj_cache`` of ``data.cache_dir``/``--cache-dir``
    left null) is made once per session and seen by no run outside the tests. Set for this process
    (``tempfile.tempdir``) and for the console scripts it starts (``TMPDIR``); restored afterwards."""
    folder = str(tmp_path_factory.mktemp("tmp"))
    old_dir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder
    yield folder
    tempfile.tempdir = old_dir
    if old_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = old_env


@pytest.fixture(scope="session")
def frame_cache(_session_temp) -> str:
    """The emulated MNIST5kEvents frame cache: the recipe's default folder, so tests that pass it
    (``data.cache_dir`` / ``--cache-dir``) and runs that leave it null (the demo test) share the frames."""
    return os.path.join(_session_temp, "sj_cache")


@pytest.fixture
def release_memory():
    """After the test, hand freed memory back to the system: glibc keeps it otherwise, so tests that build
    large models one after another (the packaged configs' first steps) would raise the process's peak
    config by config to several GB."""
    yield
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)

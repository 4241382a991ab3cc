import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _frame_cache(tmp_path_factory):
    """MNIST5kEvents frames are emulated once per test session into a temporary cache."""
    old = os.environ.get("SJ_CACHE_DIR")
    os.environ["SJ_CACHE_DIR"] = str(tmp_path_factory.mktemp("sj_cache"))
    yield
    if old is None:
        os.environ.pop("SJ_CACHE_DIR", None)
    else:
        os.environ["SJ_CACHE_DIR"] = old


@pytest.fixture
def one_thread():
    """Training tests run single-threaded: on a shared 2-core machine two intra-op threads spin-wait on
    each other and a step gets 5-10x slower. Restored afterwards (library code never sets it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

import os

import pytest


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

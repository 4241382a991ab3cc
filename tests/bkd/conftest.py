import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Every bkd test module trains tiny nets: single-threaded (see tests/conftest.py)."""
    yield

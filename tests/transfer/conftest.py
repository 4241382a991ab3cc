"""Fixtures of the transfer tests."""

import pytest


@pytest.fixture(scope="session")
def frame_cache(tmp_path_factory):
    """One emulated-frame cache folder (``data.cache_dir`` / ``--cache-dir``) for every transfer test."""
    return str(tmp_path_factory.mktemp("frames"))

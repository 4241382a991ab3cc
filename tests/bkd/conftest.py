import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny nets on a shared 2-core machine: 2 OpenMP threads spin-wait against each other and run many
    # times slower than one. Restored after each module so other packages' tests are unaffected.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

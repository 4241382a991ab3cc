import torch


def if_reference(u: torch.Tensor, v0: torch.Tensor):
    """Independent IF simulation in threshold units (soft reset, fire at H >= 1): spikes, H, v per step."""
    v = v0.clone()
    s_all, h_all, v_all = [], [], []
    for t in range(u.shape[0]):
        h = v + u[t]
        s = (h >= 1).to(u.dtype)
        v = h - s
        s_all.append(s)
        h_all.append(h)
        v_all.append(v)
    return torch.stack(s_all), torch.stack(h_all), torch.stack(v_all)


def spike_train_current(T=16, B=8, n_in=32, n_out=64, seed=0, p=0.3, scale=0.35):
    """Input current of one layer driven by random binary spike trains through random weights [T, B, n_out]."""
    g = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(T, B, n_in, generator=g, dtype=torch.float64) < p).to(torch.float64)
    w = torch.randn(n_in, n_out, generator=g, dtype=torch.float64) * scale
    return spikes @ w + 0.05


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Every calib test module runs tiny nets: single-threaded (see tests/conftest.py)."""
    yield

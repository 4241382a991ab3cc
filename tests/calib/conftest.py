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
from torch import nn  # noqa: E402

from sj_calib import QCFS  # noqa: E402


def trained_like(model, seed=0):
    """Give a random net realistic thresholds: lambda = 99th percentile of each pre-activation.

    Puts ``model`` in eval mode with random BN statistics; returns the pre-hooks that set each QCFS
    threshold on the next forward (remove them after one batch)."""
    torch.manual_seed(seed)
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)

    def set_threshold(mod, args):
        mod.threshold.data.fill_(float(args[0].flatten().quantile(0.99).clamp(min=1e-3)))

    return [m.register_forward_pre_hook(set_threshold) for m in model.modules() if isinstance(m, QCFS)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Every calib test module runs tiny nets: single-threaded (see tests/conftest.py)."""
    yield

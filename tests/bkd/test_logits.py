"""KD and WSLD against direct formulas (bkd.md section 1.3)."""

import math

import pytest
import torch
from sj_bkd.logits import kd_loss, wsld_loss


def _softmax(z):
    e = [math.exp(v - max(z)) for v in z]
    s = sum(e)
    return [v / s for v in e]


@pytest.mark.compat
def test_kd_matches_direct_formula():
    torch.manual_seed(0)
    zs, zt = torch.randn(5, 7), torch.randn(5, 7) * 3
    tau = 3.0
    want = 0.0
    for n in range(5):
        ps = _softmax((zs[n] / tau).tolist())
        pt = _softmax((zt[n] / tau).tolist())
        want += sum(pt[k] * (math.log(pt[k]) - math.log(ps[k])) for k in range(7))
    want = want / 5 * tau * tau
    assert kd_loss(zs, zt, tau=tau).item() == pytest.approx(want, rel=1e-5)
    assert kd_loss(zt, zt, tau=tau).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.compat
def test_wsld_matches_direct_formula_labels_and_soft():
    torch.manual_seed(1)
    zs, zt = torch.randn(6, 5), torch.randn(6, 5) * 2
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    tau, beta = 2.0, 0.7
    want = 0.0
    for n in range(6):
        pt = _softmax((zt[n] / tau).tolist())
        ls = [math.log(p) for p in _softmax((zs[n] / tau).tolist())]
        ce = -sum(pt[k] * ls[k] for k in range(5))
        ce_s = -math.log(_softmax(zs[n].tolist())[y[n]])
        ce_t = -math.log(_softmax(zt[n].tolist())[y[n]])
        w = 1 - math.exp(-max(ce_s / (ce_t + 1e-7), 0))
        want += w * ce
    want = beta * tau * tau * want / 6
    assert wsld_loss(zs, zt, y, tau=tau, beta=beta).item() == pytest.approx(want, rel=1e-5)
    soft = torch.nn.functional.one_hot(y, 5).float()
    assert wsld_loss(zs, zt, soft, tau=tau, beta=beta).item() == pytest.approx(want, rel=1e-5)


@pytest.mark.compat
def test_wsld_gradient_only_to_student():
    zs = torch.randn(4, 3, requires_grad=True)
    zt = torch.randn(4, 3, requires_grad=True)
    wsld_loss(zs, zt, torch.tensor([0, 1, 2, 0])).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    assert zt.grad is None


@pytest.mark.compat
def test_logit_errors():
    with pytest.raises(ValueError, match="z_t"):
        kd_loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="z_s"):
        kd_loss(torch.randn(2, 4, 3), torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="labels must lie"):
        wsld_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="batch"):
        wsld_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1, 2]))

import pytest
import torch
from sj_transfer.surrogate import QGateGrad, RectGrad, back_ei_gate_grad
from spikingjelly.activation_based import surrogate

pytestmark = pytest.mark.compat


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.sum().backward()
    return y.detach(), x.grad


def test_qgategrad_is_piecewise_quadratic_alpha2():
    x = torch.linspace(-1.5, 1.5, 601)
    q = QGateGrad()
    assert isinstance(q, surrogate.PiecewiseQuadratic) and q.alpha == 2.0
    yq, gq = _grad(q, x)
    yp, gp = _grad(surrogate.PiecewiseQuadratic(alpha=2.0), x)
    torch.testing.assert_close(yq, yp)
    torch.testing.assert_close(gq, gp)
    # and the formula itself: alpha - alpha^2 |x| on |x| <= 1/alpha, else 0
    expected = torch.where(x.abs() <= 0.5, 2.0 - 4.0 * x.abs(), torch.zeros_like(x))
    torch.testing.assert_close(gq, expected, atol=1e-6, rtol=0)
    assert torch.equal(yq, (x >= 0).float())


def test_rect_fallback_matches_formula():
    x = torch.linspace(-1.0, 1.0, 401)
    for fn in (RectGrad(1.0), back_ei_gate_grad(1.0)):
        y, g = _grad(fn, x)
        torch.testing.assert_close(g, (x.abs() < 0.5).float())
        assert torch.equal(y, (x >= 0).float())

import math

import pytest
import torch
import torch.nn.functional as F
from sj_transfer.cka import linear_cka
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.tet import tet_loss

pytestmark = pytest.mark.compat

T, B, K = 4, 6, 3


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(T, B, K, generator=g),
        torch.randn(T, B, K, generator=g),
        torch.randn(T, B, 5, 2, generator=g),
        torch.randn(T, B, 7, generator=g),
        torch.randint(0, K, (B,), generator=g),
    )


def test_init_and_hand_computed_value():
    loss = DomainTransferLoss(T)
    assert torch.allclose(loss.step_weights(), torch.full((T,), 1 / (1 + math.exp(-1))))
    os_, oe, fs, fe, y = _inputs()
    out = loss(os_, oe, fs, fe, y)
    w = torch.sigmoid(torch.ones(T))
    lam = 1e-3
    ls = le = ld = 0.0
    for t in range(T):
        ls += (1 - lam) * F.cross_entropy(os_[t], y) + lam * F.mse_loss(os_[t], torch.full_like(os_[t], 0.5))
        le += (1 - w[t]) * (
            (1 - lam) * F.cross_entropy(oe[t], y) + lam * F.mse_loss(oe[t], torch.full_like(oe[t], 0.5))
        )
        ld += w[t] * (1 - linear_cka(fs[t], fe[t]).abs())
    ls, le, ld = ls / T, le / T, ld / T
    assert out.static_loss.item() == pytest.approx(ls.item(), rel=1e-5)
    assert out.event_loss.item() == pytest.approx(le.item(), rel=1e-5)
    assert out.domain_loss.item() == pytest.approx(ld.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx((ls + le + 0.5 * ld).item(), rel=1e-5)
    logs = out.logs()
    assert set(logs) >= {"loss_static", "loss_event", "loss_domain", "cka", "w_0", f"w_{T - 1}"}


def test_gradient_reaches_coefficients_and_both_branches():
    loss = DomainTransferLoss(T)
    os_, oe, fs, fe, y = (t.requires_grad_(True) if t.is_floating_point() else t for t in _inputs(1))
    loss(os_, oe, fs, fe, y).loss.backward()
    for name, t in [
        ("coeff", loss.coefficients),
        ("static logits", os_),
        ("event logits", oe),
        ("fs", fs),
        ("fe", fe),
    ]:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, name
    # dL/dc_t = sigma'(c_t)/T * [alpha d_t - event TET term_t]
    os2, oe2, fs2, fe2, y2 = _inputs(1)
    c = torch.ones(T)
    sp = torch.sigmoid(c) * (1 - torch.sigmoid(c))
    d = torch.stack([1 - linear_cka(fs2[t], fe2[t]) for t in range(T)])
    e = torch.stack(
        [0.999 * F.cross_entropy(oe2[t], y2) + 1e-3 * (oe2[t] - 0.5).square().mean() for t in range(T)]
    )
    torch.testing.assert_close(loss.coefficients.grad, sp / T * (0.5 * d - e), rtol=1e-4, atol=1e-6)


def test_variants():
    os_, oe, fs, fe, y = _inputs(2)
    plain = DomainTransferLoss(T, regularization="none")
    out = plain(os_, oe, fs, fe, y)
    assert out.event_loss.item() == pytest.approx(tet_loss(oe, y).item(), rel=1e-6)
    assert not plain.coefficients.requires_grad
    fixed = DomainTransferLoss(T, regularization=0.25)
    assert fixed(os_, oe, fs, fe, y).event_loss.item() == pytest.approx(
        0.75 * tet_loss(oe, y).item(), rel=1e-6
    )
    no_tet = DomainTransferLoss(T, tet=False, domain_loss=False)
    o = no_tet(os_, oe, fs, fe, y)
    ref = F.cross_entropy(os_.mean(0), y) + F.cross_entropy(oe.mean(0), y)
    assert o.loss.item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValueError, match="regularization"):
        DomainTransferLoss(T, regularization=1.5)


def test_constant_features_no_nan():
    loss = DomainTransferLoss(T)
    os_, oe, fs, fe, y = _inputs(3)
    fs = torch.zeros_like(fs, requires_grad=True)  # e.g. a silent layer
    out = loss(os_, oe, fs, fe, y)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(fs.grad).all()
    assert out.cka.abs().sum().item() == 0.0


def test_last_partial_batch():
    loss = DomainTransferLoss(T)
    os_, oe, fs, fe, y = _inputs(4)
    out = loss(os_[:, :2], oe[:, :2], fs[:, :2], fe[:, :2], y[:2])  # batch smaller than usual
    assert torch.isfinite(out.loss)


def test_bad_input_errors():
    loss = DomainTransferLoss(T)
    os_, oe, fs, fe, y = _inputs(5)
    with pytest.raises(ValueError, match="T=4"):
        loss(os_, oe[:3], fs, fe, y)  # mismatched T
    with pytest.raises(ValueError, match="T=4"):
        loss(os_, oe, fs, fe[:3], y)
    with pytest.raises(ValueError, match="batch size"):
        loss(os_, oe[:, :5], fs, fe, y)  # mismatched batch
    with pytest.raises(ValueError, match="batch size"):
        loss(os_, oe, fs[:, :5], fe, y)
    with pytest.raises(ValueError, match="classes"):
        loss(os_, torch.randn(T, B, K + 1), fs, fe, y)  # class count
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        loss(os_, oe, fs[0], fe, y)  # features without time dimension [B, D, ...]
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        loss.domain_loss(torch.randn(B, 7), torch.randn(B, 7))
    with pytest.raises(TypeError, match="int64"):
        loss(os_, oe, fs, fe, y.float())


def test_empty_batch_is_an_error_not_nan():
    loss = DomainTransferLoss(T=4)
    z = torch.zeros
    with pytest.raises(
        ValueError,
        match=r"target: expected at least one sample \(B >= 1\), got an empty batch of shape \(0,\)",
    ):
        loss(z(4, 0, 10), z(4, 0, 10), z(4, 0, 8), z(4, 0, 8), z(0, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"static_features: expected at least one sample \(B >= 1 in \[T, B, \.\.\.\]\)"
    ):
        loss.domain_loss(z(4, 0, 8), z(4, 0, 8))
    out = loss(z(4, 1, 10), z(4, 1, 10), torch.randn(4, 1, 8), torch.randn(4, 1, 8), z(1, dtype=torch.long))
    assert torch.isfinite(out.loss)  # one sample is the smallest batch, and it is finite


def test_tap_without_store_v_seq_names_the_fix():
    """Issue 25: a tapped neuron built without store_v_seq=True has v_seq None: the error said only 'got NoneType'."""
    from spikingjelly.activation_based import functional, neuron

    tap = neuron.LIFNode(step_mode="m")
    x = torch.rand(2, 3, 5)
    tap(x)
    v_seq = getattr(tap, "v_seq", None)  # None on 2.x; 0.0.0.0.14 has no attribute until it stores one
    assert v_seq is None
    loss = DomainTransferLoss(T=2)
    logits, y = torch.zeros(2, 3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"static_features: .*got None.*store_v_seq=True"):
        loss(logits, logits, v_seq, torch.rand(2, 3, 5), y)
    tap.store_v_seq = True  # the fix the message names
    functional.reset_net(tap)
    tap(x)
    assert loss(logits, logits, tap.v_seq, torch.rand(2, 3, 5), y).loss.isfinite()

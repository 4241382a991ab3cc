import copy
import importlib

import pytest
import torch
from sj_transfer.models import SMALL_CFG, TransferVGGSNN
from sj_transfer.surrogate import QGateGrad, RectGrad, back_ei_gate_grad
from spikingjelly.activation_based import functional, surrogate


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.sum().backward()
    return y.detach(), x.grad


@pytest.mark.compat
def test_qgategrad_is_piecewise_quadratic_alpha2():
    x = torch.linspace(-1.5, 1.5, 601)
    q = QGateGrad()
    # SpikingJelly's own class (a subclass would lose 2.x's fused kernels), alpha 2
    assert type(q) is surrogate.PiecewiseQuadratic and q.alpha == 2.0 and q.spiking
    assert type(QGateGrad(4.0)) is surrogate.PiecewiseQuadratic and QGateGrad(4.0).alpha == 4.0
    yq, gq = _grad(q, x)
    yp, gp = _grad(surrogate.PiecewiseQuadratic(alpha=2.0), x)
    torch.testing.assert_close(yq, yp)
    torch.testing.assert_close(gq, gp)
    # and the formula itself: alpha - alpha^2 |x| on |x| <= 1/alpha, else 0 (boundaries exact: 1/alpha = 0.5)
    expected = torch.where(x.abs() <= 0.5, 2.0 - 4.0 * x.abs(), torch.zeros_like(x))
    torch.testing.assert_close(gq, expected, atol=1e-6, rtol=0)
    assert torch.equal(yq, (x >= 0).float())
    _, g = _grad(q, torch.tensor([-0.5, -0.25, 0.0, 0.25, 0.5, 0.75]))
    assert g.tolist() == [0.0, 1.0, 2.0, 1.0, 0.0, 0.0]


@pytest.mark.compat
def test_rect_fallback_matches_formula():
    x = torch.linspace(-1.0, 1.0, 401)
    for fn in (RectGrad(1.0), back_ei_gate_grad(1.0)):
        y, g = _grad(fn, x)
        torch.testing.assert_close(g, (x.abs() < 0.5).float())
        assert torch.equal(y, (x >= 0).float())


def _spikingjelly_2():
    """SpikingJelly 2.x's private decision function of its fused neuron kernels (absent on 0.0.0.0.14)."""
    try:
        return importlib.import_module("spikingjelly._ops.surrogate")
    except ImportError:
        pytest.skip("SpikingJelly 0.0.0.0.14 has no fused kernels to select")


def _every_network():
    """Every network whose neurons the plugins build, at small size."""
    from sj_bkd.models import STUDENTS, create_model
    from sj_calib.offset_spike import OffsetSpikeIF

    small = {"spikingformer_cml": dict(dim=32, depth=1, heads=2)}
    nets = {name: create_model(name, num_classes=10, **small.get(name, {})) for name in STUDENTS}
    for sg in ("qgategrad", "rect"):
        from sj_transfer.recipe import _surrogate

        nets[f"transfer_{sg}"] = TransferVGGSNN(
            10, image_size=16, cfg=list(SMALL_CFG), surrogate_function=_surrogate(sg)()
        )
    nets["calib_offset_spike_if"] = OffsetSpikeIF(1.0, rho=2)
    return nets


@pytest.mark.slow  # spawns worker processes / builds every network: over a second
def test_spikingjelly_recognises_every_surrogate_we_build():
    """SpikingJelly 2.x takes its fused neuron kernels only for its own surrogate classes with a Python-number
    alpha (``_surrogate_spec`` is not None); otherwise every neuron runs the Python reference loop."""
    ops = _spikingjelly_2()
    seen = set()
    for name, net in _every_network().items():
        for mod_name, m in net.named_modules():
            sg = getattr(m, "surrogate_function", None)
            if sg is None:
                continue
            where = f"{name}.{mod_name}: {type(sg).__module__}.{type(sg).__name__}"
            # only SpikingJelly's own classes: a subclass or a copy is never recognised
            assert type(sg).__module__ == surrogate.__name__, where
            seen.add(type(sg).__name__)
            if type(sg).__name__ in ops._SURROGATE_IDS:
                assert ops._surrogate_spec(sg) is not None, where
            else:  # SpikingJelly has no fused kernel for it: only Rect (N-Omniglot's back_ei_gate_grad)
                assert type(sg) is surrogate.Rect, where
    assert {"PiecewiseQuadratic", "ATan", "Sigmoid", "Rect"} <= seen
    assert ops._surrogate_spec(QGateGrad()) == (ops._SURROGATE_IDS["PiecewiseQuadratic"], 2.0)


def test_transfer_network_runs_spikingjelly_fused_lif_not_the_reference_loop(monkeypatch):
    """Issue 24 item 5: with a QGateGrad subclass every LIF fell back to the reference loop; now none does,
    with bit-identical spikes, potentials and gradients (same surrogate formula)."""
    _spikingjelly_2()
    reference = importlib.import_module("spikingjelly._ops.lif.reference")
    calls = []
    loop = reference.multi_step
    monkeypatch.setattr(reference, "multi_step", lambda *a, **k: calls.append(1) or loop(*a, **k))
    torch.manual_seed(0)
    net = TransferVGGSNN(10, image_size=16, cfg=list(SMALL_CFG))
    twin = copy.deepcopy(net)
    for m in twin.modules():  # the reference loop's numbers, for comparison
        if hasattr(m, "surrogate_function"):
            m.surrogate_function = _LoopPQ()
    x = torch.rand(3, 2, 2, 16, 16) * 2
    outs = []
    for n in (net, twin):
        calls.clear()
        functional.reset_net(n)
        logits, feat = n.forward_features(x, "event")
        (logits.sum() + feat.sum()).backward()
        outs.append(
            (
                len(calls),
                logits.detach(),
                feat.detach(),
                [p.grad for p in n.parameters() if p.grad is not None],
            )
        )
    assert outs[0][0] == 0 and outs[1][0] == 3  # fused: no reference call; the subclass: one per LIF layer
    assert torch.equal(outs[0][1], outs[1][1]) and torch.equal(outs[0][2], outs[1][2])
    assert len(outs[0][3]) == len(outs[1][3]) > 0
    assert all(torch.equal(a, b) for a, b in zip(outs[0][3], outs[1][3]))


class _LoopPQ(surrogate.PiecewiseQuadratic):
    """What QGateGrad was: a PiecewiseQuadratic subclass (alpha 2), which SpikingJelly does not recognise."""

    def __init__(self):
        super().__init__(alpha=2.0)

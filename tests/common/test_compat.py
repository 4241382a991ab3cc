import pytest
import torch
from spikingjelly.activation_based import functional, neuron

from sj_common import compat

pytestmark = pytest.mark.compat


def test_nodes_are_multistep_and_reset():
    node = compat.if_node(v_threshold=1.0)
    assert isinstance(node, neuron.IFNode) and node.step_mode == "m"
    x = torch.full((4, 2, 3), 0.6)
    out = node(x)
    # constant 0.6 into a reset-to-zero IF neuron: spikes at steps 2 and 4 (potential 1.2, 1.0 after 0.2 + 0.6 + 0.6 - 1)
    assert out[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    functional.reset_net(node)
    assert isinstance(node.v, float) and node.v == 0.0
    lif = compat.lif_node(tau=2.0)
    assert isinstance(lif, neuron.LIFNode) and lif.step_mode == "m"


def test_backend_choice_matches_line():
    if compat.LEGACY:
        assert compat.fastest_backend("cpu") == "torch"
        assert compat.if_node().backend == "torch"
        assert compat.op_counter() is None
    else:
        assert compat.fastest_backend("cpu") is None
        with pytest.raises(ValueError, match="backend='cupy'"):
            compat.if_node(backend="cupy")
        assert compat.op_counter() is not None


def test_set_fastest_backend_returns_net():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), compat.if_node())
    assert compat.set_fastest_backend(net, "cpu") is net


def test_initial_potential_is_kept_and_checked():
    node = compat.if_node(v_threshold=1.0, v_reset=None)
    x = torch.zeros(1, 2, 3)
    node(x)  # materialise the state so the shape check has something to compare with
    functional.reset_net(node)
    v0 = torch.full((2, 3), 0.95)
    node.v = torch.zeros(2, 3)
    compat.set_initial_potential(node, v0)
    out = node(torch.full((1, 2, 3), 0.1))
    assert out.sum().item() == 6.0  # 0.95 + 0.1 crosses the threshold everywhere
    with pytest.raises(ValueError, match=r"v: expected shape \(2, 3\)"):
        compat.set_initial_potential(node, torch.zeros(5))
    with pytest.raises(TypeError, match="v: expected a torch.Tensor"):
        compat.set_initial_potential(node, 0.5)


@pytest.mark.cuda
@pytest.mark.skipif(not compat.has_cupy(), reason="cupy is not installed")
@pytest.mark.skipif(not compat.LEGACY, reason="CuPy neurons exist on SpikingJelly 0.0.0.0.14 only")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")  # checked first
@pytest.mark.parametrize("kind", ["if", "lif"])
def test_cupy_neurons_match_torch_on_cuda(kind):
    """0.0.0.0.14's CuPy kernels: the backend the plugins pick on a GPU, with the torch backend's spikes
    and potentials (dyadic inputs: exact in both) and its surrogate gradients."""
    make = compat.if_node if kind == "if" else compat.lif_node
    assert make().backend == "cupy" and compat.fastest_backend("cuda") == "cupy"
    net = compat.set_fastest_backend(torch.nn.Sequential(make(backend="torch")).cuda(), "cuda")
    assert net[0].backend == "cupy"
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 12, (8, 4, 16), generator=g) / 8).cuda()
    w = torch.rand(8, 4, 16, generator=g).cuda()
    got = {}
    for backend in ("torch", "cupy"):
        node = make(backend=backend).cuda()
        xi = x.clone().requires_grad_(True)
        spikes = node(xi)
        (spikes * w).sum().backward()
        got[backend] = (spikes.detach(), node.v.detach(), xi.grad)
    assert torch.equal(got["cupy"][0], got["torch"][0]) and got["torch"][0].sum() > 0
    assert torch.equal(got["cupy"][1], got["torch"][1])
    torch.testing.assert_close(got["cupy"][2], got["torch"][2], rtol=1e-4, atol=1e-6)


class _WithCode(torch.nn.Module):
    def cuda_codes(self, y, x, dtype):
        return f"{y} = 1;"

    def cuda_code(self, x, y, dtype="fp32"):
        return f"{y} = 1;"


class _FakeNode(torch.nn.Module):
    """A 0.0.0.0.14-style neuron: ``backend`` among ``supported_backends`` (no cupy needed to set it)."""

    supported_backends = ("torch", "cupy")

    def __init__(self, surrogate_function=None, backend="torch", step_mode="m"):
        super().__init__()
        self.backend, self.step_mode = backend, step_mode
        if surrogate_function is not None:
            self.surrogate_function = surrogate_function


def test_cupy_only_for_surrogates_with_cuda_code(monkeypatch):
    """0.0.0.0.14's CuPy neurons need the surrogate's CUDA code: its PiecewiseQuadratic (sj_transfer's QGateGrad)
    and our RectGrad have none, so those neurons stay on torch instead of failing at the first training step."""
    from spikingjelly.activation_based import surrogate

    assert compat.has_cuda_code(None) and compat.has_cuda_code(_WithCode())
    assert not compat.has_cuda_code(compat.RectGrad())
    if compat.LEGACY:  # the line's own classes: some have CUDA code, some not
        assert compat.has_cuda_code(surrogate.ATan()) and compat.has_cuda_code(surrogate.Sigmoid())
        assert not compat.has_cuda_code(surrogate.PiecewiseQuadratic(alpha=2.0))
    # the choice, as on a 0.0.0.0.14 CUDA machine with cupy (fake neurons: no cupy needed here)
    monkeypatch.setattr(compat, "LEGACY", True)
    monkeypatch.setattr(compat, "has_cupy", lambda: True)
    net = torch.nn.Sequential(_FakeNode(_WithCode()), _FakeNode(compat.RectGrad()), _FakeNode())
    assert compat.set_fastest_backend(net, "cuda") is net
    assert [m.backend for m in net] == ["cupy", "torch", "cupy"]
    monkeypatch.setattr(compat, "fastest_backend", lambda device=None: "cupy")
    assert compat._node(_FakeNode, None, surrogate_function=_WithCode()).backend == "cupy"
    assert compat._node(_FakeNode, None).backend == "cupy"  # the neuron's default surrogate (Sigmoid)
    assert compat._node(_FakeNode, None, surrogate_function=compat.RectGrad()).backend == "torch"
    with pytest.raises(ValueError, match="backend='cupy': expected a surrogate_function with CuPy code"):
        compat._node(_FakeNode, "cupy", surrogate_function=compat.RectGrad())

"""Issue 24 (calib items): eval mode, firing rates of calibrated layers, shared activations, sync-free path."""

import copy

import pytest
import torch
from sj_calib.models import small_vgg
from sj_calib.sweep import latency, snn_sweep
from sj_common.metrics import firing_rates
from torch import nn

from sj_calib import (
    QCFS,
    OffsetSpikeIF,
    calibrate,
    convert,
    offset_spike_if_with_info,
    replace_maxpool_by_avgpool,
    replace_relu_by_qcfs,
    spiking_layers,
)

from .conftest import spike_train_current, trained_like


def _bn_net():
    """A small BN VGG with realistic thresholds: lambda = the 99th percentile of each pre-activation."""
    torch.manual_seed(0)
    model = small_vgg(width=4)
    hooks = trained_like(model)
    with torch.no_grad():
        model(torch.rand(4, 1, 28, 28))
    for h in hooks:
        h.remove()
    return model


@pytest.mark.compat
def test_converted_nets_are_in_eval_mode_and_train_keeps_the_body_in_eval():
    model = _bn_net()
    x = torch.rand(3, 1, 28, 28)
    plain = convert(model, T=2)
    assert not plain.training
    cos = calibrate(plain, rho=2)
    from_train_mode = calibrate(convert(model, T=2).train(), rho=2)
    for net in (plain, cos, from_train_mode):
        assert not net.training and not any(m.training for m in net.body.modules())
        with torch.no_grad():
            ref = net(x)
            bns = [m for m in net.body.modules() if isinstance(m, nn.BatchNorm2d)]
            stats = [m.running_mean.clone() for m in bns]
            net.train()  # a user's habit: the body must not switch BN to batch statistics over T*B
            assert net.training and not any(m.training for m in net.body.modules())
            assert torch.equal(net(x), ref)
            assert all(torch.equal(m.running_mean, s) for m, s in zip(bns, stats))
            assert net.eval() is net and not net.training
    with pytest.raises(ValueError, match="mode: expected a bool"):
        plain.train("yes")


@pytest.mark.compat
@pytest.mark.parametrize("T,rho", [(8, 4), (2, 4), (4, 0)])
def test_firing_rates_of_calibrated_layers_match_spikes_counted_by_hand(T, rho):
    net = calibrate(convert(_bn_net()), rho=rho)
    x_seq = torch.rand(max(T, rho), 3, 1, 28, 28)
    counted = {}

    def count(name):
        def fn(mod, args, out):  # spikes by hand: a nonzero output (theta > 0) is one spike
            counted[name] = (int((out != 0).sum()), out.numel())

        return fn

    layers = spiking_layers(net)
    handles = [m.register_forward_hook(count(n)) for n, m in layers]
    rates = firing_rates(net, x_seq)
    for h in handles:
        h.remove()
    assert list(rates) == [n for n, _ in layers]  # the calibrated layer is the unit, not its inner node
    for name, (spikes, total) in counted.items():
        assert 0 < spikes < total
        assert rates[name] == pytest.approx(spikes / total, rel=1e-6)
    assert all(isinstance(m, OffsetSpikeIF) and m.spike_scale == m.v_threshold for _, m in layers)


_SYNC_CALLS = ("nonzero", "item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


class _SyncCounter:
    """Counts calls of the tensor methods that read a device tensor back to the host (each a sync on CUDA)."""

    def __init__(self, monkeypatch):
        self.calls: dict[str, int] = {}
        for name in _SYNC_CALLS:
            orig = getattr(torch.Tensor, name)

            def wrapped(t, *a, _orig=orig, _name=name, **k):
                self.calls[_name] = self.calls.get(_name, 0) + 1
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapped)
        orig_nonzero = torch.nonzero

        def nonzero(*a, **k):
            self.calls["torch.nonzero"] = self.calls.get("torch.nonzero", 0) + 1
            return orig_nonzero(*a, **k)

        monkeypatch.setattr(torch, "nonzero", nonzero)


@pytest.mark.compat
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.35, 2.0])  # few neurons moved (gather) / most moved (whole replay)
@pytest.mark.parametrize(
    "shift,saturate,iterations",
    [("reference", "reference", 1), ("theta", "skip", 2), ("reference", "skip", 3)],
)
def test_sync_free_path_is_bit_identical_to_the_gather_path(dtype, scale, shift, saturate, iterations):
    x = spike_train_current(T=9, B=6, n_in=24, n_out=40, seed=3, scale=scale).to(dtype)
    opts = dict(shift=shift, saturate=saturate, iterations=iterations)
    a, ia = offset_spike_if_with_info(x, 0.75, 4, path="gather", **opts)
    b, ib = offset_spike_if_with_info(x, 0.75, 4, path="sync_free", **opts)
    assert bool(ia.lowered.any() or ia.raised.any())
    assert torch.equal(a, b)
    for f in ("v0", "lowered", "raised", "saturated", "offset_before", "offset_after"):
        assert torch.equal(getattr(ia, f), getattr(ib, f)), f


@pytest.mark.compat
def test_sync_free_network_makes_no_host_sync_and_matches_gather(monkeypatch):
    net = calibrate(convert(_bn_net()), rho=4, path="gather")
    fast = calibrate(net, rho=4, path="sync_free")
    assert net.path == "gather" and all(m.path == "sync_free" for m in fast.layers)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        ref = net(x, T=6)
        counter = _SyncCounter(monkeypatch)
        out = fast(x, T=6)
        assert counter.calls == {}  # no nonzero / item / bool / ... anywhere in the forward
        net(x, T=6)
        assert counter.calls.get("nonzero", 0) > 0  # the gather path does sync (the counter works)
        monkeypatch.undo()
        assert torch.equal(out, ref)
        # no host check on the sync-free path: a non-finite sample gets NaN outputs, the others are unchanged
        x[1, 0, 3, 3] = float("nan")
        y = fast(x, T=6)
        assert torch.isnan(y[:, 1]).all() and torch.equal(y[:, [0, 2]], ref[:, [0, 2]])
        seq = x.unsqueeze(0).repeat(6, 1, 1, 1, 1)
        seq[2:, 1] = 0.5  # the same sample as a [T, B, ...] sequence: NaN at step 0 only
        y = fast(seq)
        assert torch.isnan(y[:, 1]).all() and not torch.isnan(y[:, [0, 2]]).any()
        with pytest.raises(ValueError, match="x: expected finite values"):
            net(x, T=6)
    with pytest.raises(ValueError, match="path: expected one of"):
        calibrate(net, path="fast")
    with pytest.raises(ValueError, match="path: expected one of"):
        convert(_bn_net(), path="cuda")


class _TwiceBlock(nn.Module):
    """A block whose forward calls one activation twice (torchvision's BasicBlock pattern)."""

    def __init__(self, act: nn.Module, width: int = 6):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(width, width), nn.Linear(width, width), act

    def forward(self, x):
        return self.act(self.fc2(self.act(self.fc1(x))) + x)


class _TwoActsBlock(nn.Module):
    def __init__(self, block: _TwiceBlock):
        super().__init__()
        self.fc1, self.fc2, self.act, self.act_1 = block.fc1, block.fc2, block.act, copy.deepcopy(block.act)

    def forward(self, x):
        return self.act_1(self.fc2(self.act(self.fc1(x))) + x)


class _DynamicBlock(_TwiceBlock):
    def forward(self, x):  # data-dependent control flow: torch.fx cannot trace it
        if x.sum() > -1e30:
            return self.act(self.fc2(self.act(self.fc1(x))) + x)
        return x


@pytest.mark.compat
def test_each_use_of_a_shared_relu_gets_its_own_qcfs_and_spiking_layer():
    torch.manual_seed(0)
    relu = nn.ReLU()
    ann = nn.Sequential(nn.Linear(4, 6), relu, _TwiceBlock(nn.ReLU()), relu, nn.Linear(6, 3))
    replace_relu_by_qcfs(ann, L=4, init_threshold=1.0)
    qcfs = [m for m in ann.modules() if isinstance(m, QCFS)]
    assert len(qcfs) == 4 and len({id(m) for m in qcfs}) == 4  # Sequential key 3 and block call 2 untied
    assert type(ann[2]).__name__ == "_TwiceBlock" and isinstance(ann[2].act_1, QCFS)
    assert isinstance(ann[1], QCFS) and isinstance(ann[3], QCFS) and ann[1] is not ann[3]
    # an ANN trained with a shared QCFS converts to one spiking layer per use, same threshold, same output
    shared = nn.Sequential(nn.Linear(4, 6), QCFS(4, 1.0), _TwiceBlock(QCFS(4, 0.5)), nn.Linear(6, 3)).double()
    x = torch.rand(5, 4, dtype=torch.float64)
    snn = convert(shared, T=8)
    thresholds = [m.v_threshold for _, m in spiking_layers(snn)]
    assert thresholds == [1.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="model: its own forward"):
        replace_relu_by_qcfs(_TwiceBlock(nn.ReLU()))
    root = convert(_TwiceBlock(QCFS(4, 0.5), width=4).double(), T=8)  # a copy: the root may be rewritten
    assert len(spiking_layers(root)) == 2
    # untying changes no output: the same net written with two QCFS of equal threshold
    manual = _TwoActsBlock(shared[2])
    twin = nn.Sequential(shared[0], shared[1], manual, shared[3])
    with torch.no_grad():
        assert torch.equal(snn(x), convert(twin, T=8)(x))


@pytest.mark.compat
def test_sweep_depth_counts_every_spiking_call_of_torchvision_resnet18():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ann = replace_maxpool_by_avgpool(replace_relu_by_qcfs(torchvision.models.resnet18(num_classes=4), L=4))
    assert sum(isinstance(m, QCFS) for m in ann.modules()) == 17  # 1 stem + 8 blocks x 2
    cos = calibrate(convert(ann), rho=4)
    assert len(spiking_layers(cos)) == 17
    data = torch.utils.data.TensorDataset(torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))
    res = snn_sweep(cos, data, Ts=(4,), batch_size=2)
    assert res["D"] == 17
    assert latency([4], 4, res["D"])["streaming"] == [72]


@pytest.mark.compat
def test_depth_is_counted_from_the_forward_pass_when_a_layer_stays_shared():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(6, 6), QCFS(4, 1.0), _DynamicBlock(QCFS(4, 0.5)), nn.Linear(6, 3))
    with pytest.warns(UserWarning, match=r"2 \(_DynamicBlock\): could not trace"):
        cos = calibrate(convert(ann), rho=2)
    assert len(spiking_layers(cos)) == 2
    data = torch.utils.data.TensorDataset(torch.rand(3, 6), torch.tensor([0, 1, 2]))
    assert snn_sweep(cos, data, Ts=(2,), batch_size=3)["D"] == 3

"""sj_common.metrics: top-k accuracy, firing rates, synaptic operations and energy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sj_common.compat import if_node, op_counter
from sj_common.metrics import E_AC_PJ, E_MAC_PJ, firing_rates, synops_energy, topk_accuracy, topk_correct
from spikingjelly.activation_based import functional, layer
from torch import nn


@pytest.mark.compat
def test_topk_accuracy_known_values():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.5, 0.3, 0.2], [0.0, 0.1, 0.9]])
    target = torch.tensor([0, 0, 2, 2])
    assert topk_accuracy(logits, target, (1, 2)) == [50.0, 75.0]
    assert topk_correct(logits, target, (1, 2, 3)) == [2, 3, 4]
    # k larger than the number of classes is computed as k = C (everything correct)
    assert topk_accuracy(logits, target, (5,)) == [100.0]


@pytest.mark.compat
def test_topk_bad_inputs():
    with pytest.raises(ValueError, match=r"logits: expected a \[B, num_classes\]"):
        topk_accuracy(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="target: expected a \\[B\\] = \\[2\\]"):
        topk_accuracy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="class indices in \\[0, 2\\].*3 classes"):
        topk_accuracy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        topk_accuracy(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="topk"):
        topk_accuracy(torch.zeros(2, 3), torch.tensor([0, 1]), (0,))


class Fixed(nn.Module):
    """Two IF layers whose spike counts are known: threshold 1, constant inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a = if_node(v_threshold=1.0)
        self.b = if_node(v_threshold=1.0)

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.compat
def test_firing_rates_exact():
    net = Fixed()
    # input 0.5 every step: IF fires at steps 2 and 4 of 4 -> rate 0.5; layer b gets spikes of 1 -> fires
    # whenever its input is 1 (hard reset to 0): rate 0.5 too. Input 0 on half the neurons halves both.
    x = torch.zeros(4, 2, 6)
    x[:, :, :3] = 0.5
    rates = firing_rates(net, x)
    assert list(rates) == ["a", "b"]
    assert rates["a"] == pytest.approx(0.25)
    assert rates["b"] == pytest.approx(0.25)
    # reset before and after: calling twice gives the same answer
    assert firing_rates(net, x) == rates
    with pytest.raises(ValueError, match="neuron layer"):
        firing_rates(nn.Linear(3, 3), torch.zeros(2, 1, 3))
    with pytest.raises(TypeError, match="x_seq"):
        firing_rates(net, 3.0)


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, step_mode="m"),
        if_node(),
        layer.Flatten(step_mode="m"),
        layer.Linear(4 * 8 * 8, 10, step_mode="m"),
    )


@pytest.mark.compat
def test_hook_counter_exact_counts():
    net = nn.Sequential(layer.Linear(5, 3, step_mode="m"))
    x = torch.zeros(2, 1, 5)
    x[0, 0, :2] = 1.0  # 2 spikes x fan-out 3 = 6 synaptic events
    r = synops_energy(net, x, backend="hooks")
    assert (r["synops"], r["acs"], r["macs"]) == (6, 6, 0)
    assert r["energy_pj_total"] == pytest.approx(6 * E_AC_PJ)
    r = synops_energy(net, x + 0.5, backend="hooks")  # analog input: dense MACs
    assert (r["acs"], r["macs"]) == (0, 2 * 3 * 5)
    assert r["energy_pj_total"] == pytest.approx(30 * E_MAC_PJ)
    # conv: one spike in a corner of a 3x3 padded conv reaches 4 positions x 4 out channels
    conv = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, step_mode="m"))
    x = torch.zeros(1, 1, 1, 5, 5)
    x[..., 0, 0] = 1.0
    assert synops_energy(conv, x, backend="hooks")["acs"] == 16
    x[..., 2, 2] = 1.0  # an interior spike reaches 9 positions
    assert synops_energy(conv, x, backend="hooks")["acs"] == 16 + 36


@pytest.mark.skipif(op_counter() is None, reason="SpikingJelly's op_counter needs SpikingJelly 2.x")
def test_spikingjelly_op_counter_agrees_with_hooks():
    net = conv_net()
    x = (torch.rand(4, 2, 2, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    sj, hooks = synops_energy(net, x), synops_energy(net, x, backend="hooks")
    assert sj["backend"] == "spikingjelly" and sj["available"] and hooks["backend"] == "hooks"
    assert sj["synops"] == hooks["synops"] == sj["sj_synops_total"] > 0  # SpikingJelly's own SynOps agree
    assert sj["macs"] == hooks["macs"] == 0
    assert sj["energy_pj_total_incl_memory"] > sj["energy_pj_total"] > 0  # total adds memory traffic
    analog = torch.rand(4, 2, 2, 8, 8)
    assert synops_energy(net, analog)["macs"] == synops_energy(net, analog, backend="hooks")["macs"] > 0
    functional.reset_net(net)


def sew_add_block() -> nn.Module:
    """A SEW-ResNet ADD shortcut: two spike branches added (0/1/2), then a conv and a linear layer."""
    from spikingjelly.activation_based import layer as sj_layer

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = sj_layer.Conv2d(1, 2, 3, padding=1, step_mode="m")
            self.sa = if_node()
            self.b = sj_layer.Conv2d(1, 2, 3, padding=1, step_mode="m")
            self.sb = if_node()
            self.conv = sj_layer.Conv2d(2, 3, 3, padding=1, step_mode="m")
            self.fc = sj_layer.Linear(2 * 4 * 4, 5, step_mode="m")

        def forward(self, s):  # s: spikes [T, B, 1, 4, 4]
            add = self.sa(self.a(s)) + s.repeat(1, 1, 2, 1, 1)  # SEW ADD: spikes + identity spikes
            return self.conv(add).sum() + self.fc(add.flatten(2)).sum()

    torch.manual_seed(0)
    block = Block()
    for conv in (block.a, block.b):
        nn.init.constant_(conv.weight, 1.0)  # every neuron of branch a fires where s has a spike nearby
        nn.init.zeros_(conv.bias)
    return block


def test_sew_add_inputs_are_value_weighted_acs_and_batch_independent():
    """Issue 25: an input of 2 (a SEW ADD output) made the whole batch's layer dense MACs, so a sample's
    count depended on its batch; now an input k counts k synaptic events, in both backends."""
    block = sew_add_block()
    s = torch.zeros(1, 2, 1, 4, 4)
    s[0, 0, 0, 1, 1] = 1.0  # sample 0: one spike -> branch a fires around it, the ADD holds a 2 there
    s[0, 1, 0, 3, 3] = 0.0  # sample 1: silent
    one = synops_energy(block, s[:, :1], backend="hooks")
    assert one["macs"] == 0  # no dense MACs: the 2s are two events
    # by hand: the ADD output (channels a + identity) of sample 0
    add = block.sa(block.a(s[:, :1])) + s[:, :1].repeat(1, 1, 2, 1, 1)
    functional.reset_net(block)
    assert add.max() == 2 and set(add.unique().tolist()) == {0.0, 1.0, 2.0}
    ones = torch.ones(1, 1, 3, 3)
    reach = (
        F.conv2d(add[0].sum(1, keepdim=True), ones, padding=1).sum() * 3
    )  # events x reached outputs x C_out
    expected = (
        9 * 2 + int(reach) + int(add.sum()) * 5
    )  # branch a's conv (1 spike: 9 outputs x 2) + conv + linear
    assert one["acs"] == expected
    both = synops_energy(block, s, backend="hooks")
    silent = synops_energy(block, s[:, 1:], backend="hooks")
    assert both["acs"] == one["acs"] + silent["acs"] and both["macs"] == 0  # additive over samples
    if op_counter() is not None:
        sj = synops_energy(block, s)
        assert (sj["acs"], sj["macs"], sj["energy_pj_total"]) == (both["acs"], 0, both["energy_pj_total"])
        assert sj["sj_macs_total"] > 0  # SpikingJelly's own counter: the ADD output as dense MACs


@pytest.mark.skipif(op_counter() is None, reason="SpikingJelly's op_counter needs SpikingJelly 2.x")
def test_backends_agree_on_a_spiking_vgg():
    """Issue 25: on one VGG the backends reported 2.05e6 vs 4.96e5 ACs per sample: the spikingjelly one also
    counted neuron updates, BatchNorm and pooling additions (and BatchNorm MACs). Same scope now."""
    from sj_common.models import small_spiking_vgg

    torch.manual_seed(0)
    net = small_spiking_vgg(cfg=(8, "M", 16, "M"), in_channels=2, num_classes=10, pool_size=2).eval()
    for x in (
        (torch.rand(2, 3, 2, 16, 16) > 0.8).float(),  # binary
        torch.randint(0, 3, (2, 3, 2, 16, 16)).float(),  # event counts
        torch.rand(2, 3, 2, 16, 16),  # analog: the first layer is dense MACs
    ):
        sj, hooks = synops_energy(net, x, backend="spikingjelly"), synops_energy(net, x, backend="hooks")
        for key in ("acs", "macs", "synops", "energy_pj_total", "acs_per_sample", "energy_pj_per_sample"):
            assert sj[key] == hooks[key], key
        assert sj["acs"] + sj["macs"] > 0
    binary = (torch.rand(2, 3, 2, 16, 16) > 0.8).float()
    sj = synops_energy(net, binary)
    assert sj["sj_synops_total"] == sj["acs"] < sj["sj_acs_total"]  # its wider scope stays visible under sj_*


@pytest.mark.compat
def test_synops_energy_bad_inputs_and_legacy_line():
    net = conv_net()
    with pytest.raises(ValueError, match="backend"):
        synops_energy(net, torch.zeros(1, 1, 2, 8, 8), backend="fast")
    with pytest.raises(TypeError, match="x: expected a tensor"):
        synops_energy(net, None)
    if op_counter() is None:  # SpikingJelly 0.0.0.0.14: auto falls back to the hook counter
        assert synops_energy(net, torch.zeros(1, 1, 2, 8, 8))["backend"] == "hooks"
        with pytest.raises(RuntimeError, match="op_counter is not available"):
            synops_energy(net, torch.zeros(1, 1, 2, 8, 8), backend="spikingjelly")

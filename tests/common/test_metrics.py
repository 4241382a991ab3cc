"""sj_common.metrics: top-k accuracy, firing rates, synaptic operations and energy."""

from __future__ import annotations

import pytest
import torch
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
    assert sj["backend"] == "spikingjelly" and sj["available"]
    assert sj["synops"] == hooks["synops"] > 0
    assert sj["macs"] == hooks["macs"] == 0
    assert sj["energy_pj_total_incl_memory"] > sj["energy_pj_total"] > 0  # total adds memory traffic
    analog = torch.rand(4, 2, 2, 8, 8)
    assert synops_energy(net, analog)["macs"] == synops_energy(net, analog, backend="hooks")["macs"] > 0
    functional.reset_net(net)


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

"""Feature taps on SpikingJelly and torchvision models."""

import pytest
import torch
import torchvision
from sj_bkd.taps import FeatureTap, resolve_layer
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet
from torch import nn


@pytest.mark.compat
def test_tap_sew_resnet_layer4_multistep():
    net = sew_resnet.sew_resnet18(
        cnf="ADD",
        spiking_neuron=neuron.IFNode,
        surrogate_function=surrogate.ATan(),
        detach_reset=True,
        num_classes=10,
    )
    functional.set_step_mode(net, "m")
    with FeatureTap(net, "layer4") as tap, FeatureTap(net, "layer3.1.sn2") as tap3:
        out = net(torch.rand(2, 1, 3, 64, 64))
        feat = tap.pop()
        assert feat.shape == (2, 1, 512, 2, 2) and out.shape == (2, 1, 10)
        assert tap3.pop().shape == (2, 1, 256, 4, 4)
        with pytest.raises(RuntimeError, match="did not run"):
            tap.pop()  # no stale feature
    functional.reset_net(net)


@pytest.mark.compat
def test_tap_torchvision_resnet_and_errors():
    net = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    tap = FeatureTap(net, "layer4", detach=True)
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    f = tap.pop()
    assert f.shape == (1, 512, 2, 2) and f.min() >= 0  # after the block's final ReLU
    tap.remove()
    with pytest.raises(KeyError, match="layer4") as e:
        FeatureTap(net, "layer5")
    assert "close matches" in str(e.value) and "ResNet" in str(e.value)
    with pytest.raises(KeyError, match="top-level"):
        resolve_layer(net, "zzzz")
    with pytest.raises(ValueError, match="non-empty"):
        resolve_layer(net, "")


def _multistep_student():
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1), neuron.IFNode(), layer.AdaptiveAvgPool2d(1), layer.Flatten(), layer.Linear(4, 3)
    )  # fmt: skip
    functional.set_step_mode(net, "m")
    return net


def test_second_step_without_reset_names_reset_net():
    """Issue 25: a multi-step student stepped twice without reset_net failed in backward with torch's
    'backward through the graph a second time ... retain_graph=True'; the tap's check names the fix."""
    net = _multistep_student()
    tap = FeatureTap(net, "1")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.rand(2, 3, 1, 6, 6)
    for _ in range(2):  # with a reset after each step: fine
        net(x).sum().backward()
        opt.step()
        tap.pop()
        functional.reset_net(net)
    net(x).sum().backward()  # forgot the reset this time
    with pytest.raises(RuntimeError, match=r"'1' still holds its state 'v'.*functional\.reset_net\(model\)"):
        net(x)
    with torch.no_grad():  # no graph in the state: no error (and evaluation after reset_net is untouched)
        functional.reset_net(net)
        net(x)
        net(x)
    tap.remove()  # the check goes with the tap
    functional.reset_net(net)
    net(x).sum().backward()
    net(x)


def test_reset_check_can_be_turned_off_and_skips_single_step():
    net = _multistep_student()
    FeatureTap(net, "1", check_reset=False)
    x = torch.rand(2, 3, 1, 6, 6)
    net(x).sum().backward()
    net(x)  # no check
    functional.reset_net(net)
    functional.set_step_mode(net, "s")  # stepped once per time step: the state is meant to carry over
    FeatureTap(net, "1")
    net(x[0]).sum()
    net(x[1]).sum().backward()

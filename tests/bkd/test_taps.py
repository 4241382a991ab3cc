"""Feature taps on SpikingJelly and torchvision models."""

import pytest
import torch
import torchvision
from sj_bkd.taps import FeatureTap, resolve_layer
from spikingjelly.activation_based import functional, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet


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

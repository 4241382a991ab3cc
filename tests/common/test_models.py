import pytest
import torch
from sj_common.models import small_spiking_vgg
from spikingjelly.activation_based import functional

pytestmark = pytest.mark.compat


def test_small_vgg_shapes_and_reset():
    torch.manual_seed(0)
    net = small_spiking_vgg(cfg=(8, "M", 16, "M"), in_channels=2, num_classes=10)
    x = (torch.rand(4, 3, 2, 34, 34) > 0.8).float()
    y1 = net(x)
    assert y1.shape == (4, 3, 10)
    functional.reset_net(net)
    y2 = net(x)
    assert torch.allclose(y1, y2)  # same input after reset -> same output
    y3 = net(x)  # without reset the neurons carry their state: the output changes
    assert not torch.allclose(y2, y3)
    y1.sum().backward()
    assert net.features[0].weight.grad is not None


def test_small_vgg_rejects_bad_input():
    net = small_spiking_vgg(cfg=(8, "M"), in_channels=2, num_classes=3)
    with pytest.raises(ValueError, match=r"x: expected \[T, B, 2, H, W\]"):
        net(torch.zeros(3, 2, 34, 34))
    with pytest.raises(ValueError, match="neuron: expected"):
        small_spiking_vgg(neuron="izhikevich")


def test_pool_size_sets_classifier_width():
    net = small_spiking_vgg(cfg=(8, "M", 16), in_channels=1, num_classes=4, pool_size=3)
    assert net.classifier[-1].in_features == 16 * 9
    assert net(torch.rand(2, 5, 1, 20, 20)).shape == (2, 5, 4)

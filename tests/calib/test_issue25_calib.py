"""Issue 25 (calib traps): the init_threshold warning, max pooling in convert() and calibrate() alike,
SpikingJelly's layer.Dropout."""

import warnings

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from spikingjelly.activation_based.model.spiking_vgg import SpikingVGG
from torch import nn

from sj_calib import (
    QCFS,
    ConversionWarning,
    UnsupportedModuleError,
    calibrate,
    convert,
    replace_maxpool_by_avgpool,
    spiking_layers,
)

pytestmark = pytest.mark.compat


def _agreeing(n_agree: int, n: int = 10) -> torch.Tensor:
    """Samples [n, 2] for ``QCFS(L=1, lambda=1)`` as the whole net (logits = activations): [3/4, 1/4] gives
    argmax 0 in the QCFS ANN (1, 0) and in the float twin; [1/8, 1/4] gives 0 in the ANN (0, 0: first of a
    tie) but 1 in the twin. Dyadic values: no rounding decides."""
    x = torch.tensor([[0.75, 0.25]]).repeat(n, 1)
    x[n_agree:] = torch.tensor([0.125, 0.25])
    return x


@pytest.mark.parametrize("n_agree,warns", [(10, False), (9, False), (8, True), (0, True)])
def test_convert_warns_below_90_percent_agreement_with_the_float_twin(n_agree, warns):
    ann = nn.Sequential(QCFS(L=1, init_threshold=1.0))
    x = _agreeing(n_agree)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snn = convert(ann, sample_ndim=2, example_input=x)
    assert snn.conversion_check["agreement"] == n_agree / 10 and snn.conversion_check["samples"] == 10
    hits = [w for w in caught if issubclass(w.category, ConversionWarning)]
    assert len(hits) == int(warns)
    if warns:
        assert f"{10 * n_agree:.1f}% of example_input" in str(hits[0].message)
        assert "init_threshold" in str(hits[0].message)
    assert convert(ann, sample_ndim=2).conversion_check is None  # no example_input: no check


def _linear_net(threshold, L=16):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 64), QCFS(L, threshold), nn.Linear(64, 10)).eval()
    return net


def test_a_threshold_far_above_the_activations_warns_and_a_fitted_one_does_not():
    x = torch.randn(200, 20)
    with torch.no_grad():
        p99 = float(_linear_net(1.0)[0](x).flatten().quantile(0.99))
    with pytest.warns(ConversionWarning, match=r"'1': lambda 40 > p99"):
        convert(_linear_net(40.0, L=4), example_input=x)  # lambda 40: every neuron silent below z = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        snn = convert(_linear_net(p99), example_input=x)
    assert snn.conversion_check["agreement"] >= 0.9
    assert snn.conversion_check["layers"]["1"]["threshold"] == pytest.approx(p99)
    with pytest.raises(ValueError, match="example_input: expected a static batch"):
        convert(_linear_net(p99), example_input=torch.zeros(3))


def _pool_ann():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), QCFS(4, 1.0), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)
    )


def _pool_snn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        neuron.IFNode(v_reset=None),
        layer.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 3),
    )


def test_convert_and_calibrate_agree_on_max_pooling():
    messages = []
    for fn, net, arg in ((convert, _pool_ann(), "ann"), (calibrate, _pool_snn(), "snn")):
        with pytest.raises(
            UnsupportedModuleError, match=rf"^{arg}: cannot convert 1 module\(s\): 2 \(MaxPool2d\)\."
        ) as e:
            fn(net)
        assert e.value.modules == [("2", "MaxPool2d")]
        messages.append(str(e.value).split(". ", 1)[1])
        kept = fn(net, maxpool="keep")
        assert kept(torch.rand(4, 2, 1, 8, 8)).shape == (4, 2, 3)
    assert messages[0] == messages[1] and "maxpool='keep'" in messages[0]
    with pytest.raises(ValueError, match="maxpool: expected 'error' or 'keep'"):
        calibrate(_pool_snn(), maxpool="yes")


def test_spikingjelly_dropout_is_identity_in_conversion_and_calibration():
    torch.manual_seed(0)
    # the classifier of SpikingJelly's spiking_vgg11_bn, on SpikingVGG.make_layers features (small widths)
    features = SpikingVGG.make_layers([4, "M", 8, "M"], batch_norm=True, neuron=QCFS, L=4, init_threshold=1.0)
    ann = nn.Sequential(
        replace_maxpool_by_avgpool(features),
        layer.Flatten(),
        layer.Linear(8 * 8 * 8, 16),
        QCFS(4, 1.0),
        layer.Dropout(),
        layer.Linear(16, 16),
        QCFS(4, 1.0),
        layer.Dropout2d(),
        layer.Linear(16, 5),
    ).eval()
    x = torch.rand(2, 3, 32, 32)
    snn = convert(ann, T=4)
    assert not any(isinstance(m, layer.Dropout) for m in snn.modules()) and len(spiking_layers(snn)) == 4
    with torch.no_grad():
        assert snn(x).shape == (4, 2, 5)
        twin = nn.Sequential(*[m for m in ann if not isinstance(m, layer.Dropout)])
        assert torch.equal(snn(x), convert(twin, T=4)(x))
    sj = nn.Sequential(nn.Linear(6, 6), neuron.IFNode(v_reset=None), layer.Dropout(0.5), nn.Linear(6, 2))
    cos = calibrate(sj, rho=2, T=2)
    assert not any(isinstance(m, layer.Dropout) for m in cos.modules())
    assert cos(torch.rand(3, 6)).shape == (2, 3, 2)

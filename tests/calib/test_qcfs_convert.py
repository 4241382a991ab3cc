"""QCFS activation, conversion, calibrate() on our nets and on SpikingJelly's ann2snn output."""

import copy

import pytest
import torch
from sj_calib.models import resnet20, small_vgg
from spikingjelly.activation_based import functional, neuron
from torch import nn

from sj_calib import (
    QCFS,
    SpikingNet,
    UnsupportedModuleError,
    calibrate,
    convert,
    fold_batchnorm,
    offset_histogram,
    preflight,
    replace_maxpool_by_avgpool,
    replace_relu_by_qcfs,
    spiking_layers,
)

from .conftest import trained_like


@pytest.mark.compat
def test_qcfs_forward_and_gradients():
    q = QCFS(L=4, init_threshold=2.0).double()
    z = torch.tensor([-0.5, -0.2, 0.1, 0.3, 0.9, 1.3, 2.2, 2.5, 3.0], dtype=torch.float64, requires_grad=True)
    h = q(z)
    lam, L = 2.0, 4
    expected = lam * torch.clamp(torch.floor(z.detach() * L / lam + 0.5) / L, 0, 1)
    assert torch.allclose(h, expected)
    h.sum().backward()
    qv = torch.floor(z.detach() * L / lam + 0.5) / L
    inside = (qv >= 0) & (qv <= 1)
    assert torch.equal(z.grad, inside.double())
    dlam = torch.where(inside, qv - z.detach() / lam, torch.where(qv > 1, 1.0, 0.0)).sum()
    assert torch.allclose(q.threshold.grad, dlam.reshape(1))


@pytest.mark.compat
def test_swap_helpers():
    m = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Sequential(nn.ReLU(), nn.LeakyReLU())
    )
    replace_maxpool_by_avgpool(replace_relu_by_qcfs(m, L=8))
    assert isinstance(m[1], QCFS) and m[1].L == 8 and isinstance(m[3][0], QCFS)
    assert isinstance(m[2], nn.AvgPool2d) and isinstance(m[3][1], nn.LeakyReLU)
    with pytest.raises(ValueError, match="L"):
        QCFS(L=0)


@pytest.mark.compat
def test_preflight_lists_every_unsupported_module():
    m = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.GELU(), nn.LayerNorm(3)
    )
    bad = preflight(m)
    assert [n for n, _ in bad] == ["1", "2", "4", "5"]
    with pytest.raises(UnsupportedModuleError, match=r"1 \(ReLU\).*2 \(MaxPool2d\).*4 \(GELU\)"):
        convert(m)
    assert [n for n, _ in preflight(m, maxpool="keep")] == ["1", "4", "5"]
    with pytest.raises(ValueError, match="no QCFS"):
        convert(nn.Sequential(nn.Linear(3, 3)))


@pytest.mark.compat
@pytest.mark.parametrize(
    "factory,shape", [(lambda: small_vgg(width=8), (2, 1, 28, 28)), (lambda: resnet20(10), (1, 3, 16, 16))]
)
def test_large_T_approaches_ann(factory, shape):
    model = factory()
    hooks = trained_like(model)
    x = torch.rand(*shape)
    with torch.no_grad():
        model(x)  # set thresholds
        for h in hooks:
            h.remove()
        fine = copy.deepcopy(model)
        for m in fine.modules():
            if isinstance(m, QCFS):
                m.L = 4096  # the T -> infinity limit of an IF neuron is the un-quantized clip
        ann = fine(x)
        snn = convert(model)
        err = [(snn(x, T=T).mean(0) - ann).norm() / ann.norm() for T in (4, 16, 128)]
    assert err[2] < err[1] < err[0] and err[2] < 0.08


@pytest.mark.compat
def test_convert_fold_bn_and_time_dimension():
    model = small_vgg(width=8)
    hooks = trained_like(model)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        model(x)
        [h.remove() for h in hooks]
        a = convert(model, T=6)
        b = convert(model, T=6, fold_bn=True)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in b.modules()) == 0
        ya, yb = a(x), b(x)
        assert ya.shape == (6, 3, 10)
        assert (ya - yb).abs().max() < 1e-4
        # static input == explicit repeated sequence
        assert torch.allclose(a(x.unsqueeze(0).repeat(6, 1, 1, 1, 1)), ya)
        with pytest.raises(ValueError, match="without a time dimension"):
            convert(model)(x)
        with pytest.raises(ValueError, match="T"):
            a(x, T=0)
        with pytest.raises(ValueError, match=r"\[T, B"):
            a(x[0])
    assert model[1].threshold.requires_grad  # the ANN is untouched
    assert fold_batchnorm(copy.deepcopy(model).eval()) == ["0.1", "2.1", "5.1"]


@pytest.mark.compat
def test_calibrated_net_causal_and_reset_free():
    model = small_vgg(width=8).double()  # float64: batch-size dependent BLAS rounding cannot flip a spike
    hooks = trained_like(model, seed=1)
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        model(x)
        [h.remove() for h in hooks]
        cos = calibrate(convert(model), rho=4)
        assert all(m.rho == 4 for _, m in spiking_layers(cos))
        long = cos(x, T=12)
        one = cos(x, T=1)  # T < rho: simulates rho steps, reads the first
        assert one.shape[0] == 1 and torch.equal(one, long[:1])
        functional.reset_net(cos)
        again = cos(x, T=12)
        assert torch.equal(again, long)
        with pytest.raises(ValueError, match="shorter than rho"):
            cos(x.unsqueeze(0).repeat(2, 1, 1, 1, 1), T=None)
        with pytest.raises(ValueError, match="rho"):
            calibrate(cos, rho=-1)
        hist = offset_histogram(cos, x, T=6)
        assert list(hist) == [n for n, _ in spiking_layers(cos.body)]
        for h in hist.values():
            assert sum(h["before"]) == sum(h["after"]) > 0 and sum(h["before"]) % x.shape[0] == 0
            assert h["after"][0] >= h["before"][0]
        assert hist[next(iter(hist))]["before"][1:] == [0, 0, 0]  # first layer: constant input, no offsets
        with pytest.raises(ValueError, match="rho = 0"):
            offset_histogram(convert(model), x, T=6)


@pytest.mark.compat
def test_calibrate_rejects_nets_without_soft_if():
    with pytest.raises(ValueError, match="no SpikingJelly IFNode"):
        calibrate(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="hard reset"):
        calibrate(nn.Sequential(nn.Linear(2, 2), neuron.IFNode(v_reset=0.0)))
    with pytest.raises(ValueError, match="IF neurons only"):
        calibrate(nn.Sequential(nn.Linear(2, 2), neuron.IFNode(v_reset=None), neuron.LIFNode()))


def test_calibrate_spikingjelly_ann2snn_output():
    from spikingjelly.activation_based import ann2snn

    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 14 * 14, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    data = [(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long)) for _ in range(2)]
    sj = ann2snn.Converter(ann2snn.RateCodingRecipe(data, mode="Max")).convert(ann)
    cos = calibrate(sj, rho=4, T=64)
    plain = calibrate(sj, rho=0, T=64)
    assert isinstance(cos, SpikingNet) and len(spiking_layers(cos)) == 2
    x = data[0][0][:4]
    with torch.no_grad():
        ref = ann(x)
        for net in (cos, plain):
            y = net(x).mean(0)
            assert y.shape == (4, 10)
            assert (y - ref).norm() / ref.norm() < 0.1
        assert cos(x, T=4).shape == (4, 4, 10)


@pytest.mark.compat
def test_torchvision_resnet_converts():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ann = replace_maxpool_by_avgpool(replace_relu_by_qcfs(torchvision.models.resnet18(num_classes=10), L=4))
    hooks = trained_like(ann)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ann(x)
        [h.remove() for h in hooks]
        cos = calibrate(convert(ann), rho=2)
        y = cos(x, T=3)  # torch.flatten(x, 1) and the shared block ReLU run on the [T*B, ...] stream
    assert y.shape == (3, 2, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_image_is_refused(value):
    # issue #10: an all-NaN image gave a confident prediction (IF neurons never fire on NaN, the biases decide)
    model = small_vgg(width=4).eval()
    x = torch.rand(2, 1, 28, 28)
    x[1] = value
    for net in (convert(model, T=4), calibrate(convert(model), rho=4, T=4)):
        with torch.no_grad():
            assert torch.isfinite(net(x[:1])).all()
            with pytest.raises(ValueError, match=r"x: expected finite values.*first at index \(1, 0, 0, 0\)"):
                net(x)
            with pytest.raises(ValueError, match=r"x: expected finite values"):
                net(x.unsqueeze(0).expand(4, *x.shape))


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 0.0])
def test_non_finite_or_non_positive_thresholds_are_refused(bad):
    model = small_vgg(width=4).eval()
    model[1].threshold.data.fill_(bad)
    with pytest.raises(ValueError, match=r"ann: QCFS '1' threshold: expected a positive finite number, got"):
        convert(model)
    sj = nn.Sequential(nn.Linear(2, 2), neuron.IFNode(v_reset=None, v_threshold=bad))
    with pytest.raises(ValueError, match=r"snn: neuron '1' v_threshold: expected a positive finite number"):
        calibrate(sj)

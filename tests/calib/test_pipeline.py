"""Configs, sweep accounting and calibration on a (quickly) trained MNIST-5k QCFS net (the CLI: test_cli.py)."""

import pytest
import torch
from sj_calib.recipe import RECIPE
from sj_calib.sweep import latency, snn_sweep
from sj_common.config import UsageError, available_configs
from sj_common.data import Subset

from sj_calib import QCFS, calibrate, convert, preflight

PAPER_ROWS = {"cifar100_vgg16", "cifar100_resnet20", "imagenet_vgg16", "imagenet_resnet34", "cifar10_vgg16"}


@pytest.mark.parametrize("name", sorted(PAPER_ROWS | {"mnist5k"}))
def test_every_config_loads_and_builds(name):
    assert name in available_configs("sj_calib")
    raw, _ = RECIPE.load_raw(name)
    for key in ("T", "rho", "shift", "saturate", "iterations", "fold_bn"):
        assert key in raw["calib"], key
    cfg = RECIPE.config(name)
    tc = cfg.train
    assert tc.optimizer == "sgd" and tc.weight_decay == 5e-4
    with torch.device("meta"):  # ImageNet VGG-16 has 138 M parameters: no memory needed to check it
        model = RECIPE.build_model(cfg)
    qs = [m for m in model.modules() if isinstance(m, QCFS)]
    assert qs and all(q.L == cfg.model.kwargs["L"] for q in qs)
    assert preflight(model) == []
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert last.out_features == cfg.model.kwargs["num_classes"]
    if name in PAPER_ROWS:
        assert cfg.model.kwargs["L"] == cfg.calib.rho == (8 if "imagenet" in name else 4)
        assert tc.lr in (0.02, 0.1) and cfg.model.init_threshold == 8.0


def test_real_data_config_needs_root():
    with pytest.raises(UsageError, match="data-root"):
        RECIPE.build_data(RECIPE.config("cifar100_vgg16"))


def test_latency_accounting():
    lat = latency([1, 2, 4, 8], rho=4, D=15, iterations=2)
    assert lat["per_layer_work"] == [9, 10, 12, 16]
    assert lat["streaming"] == [121, 122, 124, 128]


def _tiny_qcfs_cnn():
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(1, 8, 5, 2, 2), nn.BatchNorm2d(8), QCFS(4, 2.0),
        nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), QCFS(4, 2.0),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 9, 10),
    )  # fmt: skip
    return net


@pytest.fixture(scope="module")
def trained():
    """A tiny QCFS CNN trained for a few seconds on 1,500 MNIST-5k images, and 300 test images."""
    torch.manual_seed(0)
    ann = _tiny_qcfs_cnn()
    data = RECIPE.build_data(RECIPE.config("mnist5k"))
    train, test = data.train, data.test
    xs = torch.as_tensor(train.images[:1500]).float().div(255).unsqueeze(1)
    ys = torch.as_tensor(train.targets[:1500])
    opt = torch.optim.Adam(ann.parameters(), lr=5e-3)
    for _ in range(3):
        for i in range(0, 1500, 50):
            loss = torch.nn.functional.cross_entropy(ann(xs[i : i + 50]), ys[i : i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ann.eval(), Subset(test, range(300))


def test_calibration_does_not_lower_accuracy(trained):
    ann, test = trained
    plain = snn_sweep(convert(ann), test, (1, 2, 4), batch_size=300)
    cos = snn_sweep(calibrate(convert(ann), rho=4), test, (1, 2, 4), batch_size=300)
    x = torch.stack([test[i][0] for i in range(len(test))])
    with torch.no_grad():
        ann_acc = float((ann(x).argmax(1).numpy() == test.targets).mean() * 100)
    assert ann_acc > 80, "fixture net must be trained"
    for a_plain, a_cos in zip(plain["acc"], cos["acc"]):
        assert a_cos >= a_plain - 1.0
    assert abs(cos["acc"][2] - ann_acc) <= 3.0
    # accounting: neuron updates include rho; calibrated offsets shrink
    assert cos["neuron_updates"][0] == pytest.approx(plain["neuron_updates"][0] * 5)
    hist = cos["offset_histogram"]
    assert hist and all(sum(h["before"]) == sum(h["after"]) for h in hist.values())
    assert sum(h["after"][0] for h in hist.values()) > sum(h["before"][0] for h in hist.values())
    assert plain["offset_histogram"] == {}

"""The reference's N-Omniglot and CEP-DVS networks and configs (issue 20): TransferSCNN (one shared head, no BN,
node1 membrane tap, Rect surrogate) and TransferResNet18 (pre-activation, analog tap, two heads), the
run_omni.sh / run_aba.sh settings with the learning-rate scaling made explicit, a first training step of
each config, and (slow) each reader reached through ``sj-transfer train`` on synthetic roots."""

from __future__ import annotations

import json

import pytest
import torch
from sj_common.engine.loop import _optimizer
from sj_common.recipe import Data
from sj_transfer.recipe import RECIPE
from sj_transfer.resnet import TransferResNet18
from sj_transfer.scnn import TransferSCNN
from spikingjelly.activation_based import functional, surrogate

from tests.common.event_files import make_cep_root, make_nomniglot_root, make_omniglot_root
from tests.console import script


def test_scnn_shapes_shared_head_tap_and_init():
    torch.manual_seed(0)
    net = TransferSCNN(1623)
    assert (
        isinstance(net.node1.surrogate_function, surrogate.Rect) and net.node1.surrogate_function.alpha == 1.0
    )
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.bias) for c in convs] == [
        (2, 15, (5, 5), None),
        (15, 40, (5, 5), None),
    ]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(640, 300), (300, 1623)]
    assert all(float(m.weight.detach().abs().max()) <= 0.1 for m in linears)  # U(-0.1, 0.1)
    x = torch.rand(3, 2, 2, 28, 28) * 3
    functional.reset_net(net)
    logits, tap = net.forward_features(x, "static")
    assert logits.shape == (3, 2, 1623) and tap.shape == (3, 2, 300)
    functional.reset_net(net)
    assert torch.equal(net(x, "event"), logits)  # one head for both domains
    with pytest.raises(ValueError, match=r"x: expected \[T, B, 2, 28, 28\], got \(3, 2, 2, 32, 32\)"):
        net(torch.zeros(3, 2, 2, 32, 32))


def test_resnet18_shapes_two_heads_analog_tap():
    torch.manual_seed(0)
    net = TransferResNet18(20, image_size=48, bn_per_step=True)
    x = torch.rand(2, 2, 2, 48, 48)
    functional.reset_net(net)
    logits, tap = net.forward_features(x, "event")
    assert logits.shape == (2, 2, 20) and tap.shape == (2, 2, 512)
    assert bool((tap < 0).any())  # analog (BN output pooled), not spikes or a membrane after reset
    functional.reset_net(net)
    assert not torch.equal(net(x, "static"), logits)  # two heads
    blocks = [m for m in net.features if hasattr(m, "shortcut")]
    assert len(blocks) == 8 and [b.shortcut is not None for b in blocks] == [False, False] + [True, False] * 3
    with pytest.raises(ValueError, match="built with static_head=False"):
        TransferResNet18(20, static_head=False)(x, "static")


def _lr(cfg, model):
    return _optimizer(list(model.parameters()), cfg.train).param_groups[0]["lr"]


def test_configs_follow_the_reference_scripts_and_take_a_first_step():
    n = RECIPE.config("nomniglot")
    d, t, m = n.data, n.train, n.method
    assert (d.T, d.size, t.batch_size, t.epochs, d.num_classes, d.resize, d.frame_norm) == (
        12, 28, 16, 50, 1623, "sum", "max",
    )  # fmt: skip
    assert (t.scheduler, t.lr_step_epochs, t.lr_gamma, t.warmup_epochs, m.tet, m.regularization) == (
        "step", 40, 0.1, 5, False, "none",
    )  # fmt: skip
    assert (n.model.arch, n.model.shared_head, n.model.surrogate) == ("scnn", True, "rect")
    c = RECIPE.config("cepdvs")
    d, t, m = c.data, c.train, c.method
    assert (d.T, d.size, t.batch_size, t.epochs, d.num_classes, d.dvs_augment) == (6, 48, 120, 200, 20, True)
    assert (c.model.arch, c.model.shared_head, m.tet, t.scheduler) == ("resnet18", False, True, "cosine")
    for name, k, lr in (("nomniglot", 1623, 1.2 * 16 / 1024), ("cepdvs", 20, 5e-3 * 120 / 1024)):
        cfg = RECIPE.config(name, {"data.T": 2})
        model = RECIPE.build_model(cfg, Data(None, None, None, num_classes=k, sequence_input=True))
        assert _lr(cfg, model) == pytest.approx(lr, rel=1e-12)  # the reference's lr * batch / 1024
        # one training step of the two-branch model on random frames, T = 2, batch 2
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        x = torch.rand(2, 2, 2, cfg.data.size, cfg.data.size)
        out = model(x, x.flip(0), torch.tensor([0, 1]))
        out.loss.backward()
        opt.step()
        assert torch.isfinite(out.loss) and out.event_logits.shape == (2, 2, k)
    assert _lr(n, model) != _lr(RECIPE.config("nomniglot", {"train.lr_reference_batch": None}), model)


def test_model_arch_and_head_must_agree():
    with pytest.raises(Exception, match="shared_head: arch 'scnn' has one head"):
        RECIPE.config("nomniglot", {"model.shared_head": False})
    with pytest.raises(Exception, match="arch: expected one of"):
        RECIPE.config("cepdvs", {"model.arch": "resnet50"})
    with pytest.raises(Exception, match="resize: expected 'bilinear' or 'sum'"):
        RECIPE.config("cepdvs", {"data.resize": "area"})


LAYOUT = {"background": {"B_script": 2, "A_script": 1}, "evaluation": {"Z_script": 1}}
TINY = [
    "--epochs",
    "1",
    "--max-steps-per-epoch",
    "1",
    "--batch-size",
    "4",
    "--no-tensorboard",
    "--no-progress",
]


@pytest.mark.slow
def test_sj_transfer_train_nomniglot_on_a_synthetic_root(tmp_path):
    pytest.importorskip("aedat")
    make_nomniglot_root(tmp_path / "nomniglot", LAYOUT, compression="lz4")
    make_omniglot_root(tmp_path / "omniglot", LAYOUT)
    args = ["train", "--config", "nomniglot", "--data-root", str(tmp_path), *TINY, "--T", "4"]
    r = script("sj-transfer", *args, "--set", "data.num_classes=null", "--out", str(tmp_path / "run"))
    assert r.code == 0, r.err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (
        res["method"] == "transfer" and res["num_train_events"] == 4 * 15 - 4
    )  # 4 classes, 10% val held out
    assert 0.0 <= res["test_acc1"] <= 100.0


@pytest.mark.slow
def test_sj_transfer_train_cepdvs_on_a_synthetic_root(tmp_path):
    make_cep_root(tmp_path / "cepdvs", per_class=4)
    args = ["train", "--config", "cepdvs", "--data-root", str(tmp_path), *TINY, "--T", "2"]
    sets = ["--set", "data.val_fraction=0.5", "--set", "data.size=16", "--set", "data.crop_padding=1"]
    r = script("sj-transfer", *args, *sets, "--out", str(tmp_path / "run"))
    assert r.code == 0, r.err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["method"] == "transfer" and res["num_train_events"] == 20  # 2 train per class, 1 of them val

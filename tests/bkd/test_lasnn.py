"""The lasnn baseline (spec bkd.md 1.4): the KDSNN aligned MSE summed over several stage pairs."""

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sj_bkd.distill import DistillationModel, distill_step
from sj_bkd.head import ALPHA_CNN, AlignedMSEHead, LayerwiseMSEHead
from sj_bkd.models import create_model
from sj_bkd.recipe import RECIPE, build_distillation_model
from sj_common.config import ConfigError
from sj_common.recipe import Data
from spikingjelly.activation_based import functional

# sew_tiny (width 8): layer1 [T, B, 8, 14, 14], layer2 [T, B, 16, 7, 7];
# cnn_tiny (width 16): features.6 (ReLU) [B, 32, 14, 14], features.10 (ReLU) [B, 64, 7, 7]
S_LAYERS, T_LAYERS = ["layer1", "layer2"], ["features.6", "features.10"]


class _Ctx:
    train = True

    class config:
        label_smoothing = 0.0


def _direct(head, students, teachers):
    """sum_k alpha * SSE(A_k(mean_t F_s,k), F_t,k) / B, written out (1x1 conv as F.conv2d)."""
    total = torch.zeros(())
    for stage, fs_seq, ft in zip(head.stages, students, teachers):
        fs = fs_seq.mean(0)
        if isinstance(stage.align, nn.Conv2d):
            fs = F.conv2d(fs, stage.align.weight, stage.align.bias)
        total = total + head.alpha * ((fs - ft) ** 2).sum() / fs.shape[0]
    return total


def _tiny_pair(seed=0):
    torch.manual_seed(seed)
    return create_model("sew_tiny", num_classes=10), create_model("cnn_tiny", num_classes=10)


@pytest.mark.compat
def test_loss_equals_sum_over_stages():
    torch.manual_seed(0)
    head = LayerwiseMSEHead([4, 6, 8], [6, 6, 12])
    assert head.alpha == ALPHA_CNN
    assert [type(s.align) for s in head.stages] == [nn.Conv2d, nn.Identity, nn.Conv2d]
    students = [torch.randn(3, 2, 4, 8, 8), torch.randn(3, 2, 6, 4, 4), torch.randn(3, 2, 8, 2, 2)]
    teachers = [torch.randn(2, 6, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 12, 2, 2)]
    got = head(students, teachers)
    torch.testing.assert_close(got, _direct(head, students, teachers), rtol=1e-5, atol=1e-8)
    assert got.dtype == torch.float32 and got.dim() == 0
    parts = head.stage_losses(students, teachers)
    assert len(parts) == 3 and all(p > 0 for p in parts)
    torch.testing.assert_close(sum(parts), got)
    # already time-averaged inputs give the same loss
    torch.testing.assert_close(head([s.mean(0) for s in students], teachers, multistep=False), got)
    # one stage = the kdsnn head with the same align conv
    one = LayerwiseMSEHead([4], [6], alpha=1e-3)
    kdsnn = AlignedMSEHead(4, 6, alpha=1e-3)
    kdsnn.load_state_dict(one.stages[0].state_dict())
    torch.testing.assert_close(one(students[:1], teachers[:1]), kdsnn(students[0], teachers[0]))


@pytest.mark.compat
def test_align_convs_registered_trained_and_teacher_untouched():
    torch.manual_seed(1)
    head = LayerwiseMSEHead([3, 5], [4, 7])
    # the reference kept them in a Python list (spec 5.3 item 18): here they are real parameters
    aligns = [s.align for s in head.stages]
    assert all(isinstance(a, nn.Conv2d) for a in aligns)
    params = {id(p) for p in head.parameters()}
    assert all(id(a.weight) in params and id(a.bias) in params for a in aligns)
    assert {"stages.0.align.weight", "stages.1.align.bias"} <= set(head.state_dict())
    student = nn.Conv2d(2, 3, 3, padding=1)
    teacher = nn.Conv2d(2, 4, 3, padding=1)
    x = torch.randn(2, 3, 2, 6, 6)  # [T, B, C, H, W]
    f1 = student(x.flatten(0, 1)).reshape(2, 3, 3, 6, 6)
    f2 = torch.cat([f1, f1[:, :, :2]], 2)[..., ::2, ::2]  # a second, 5-channel 3x3 stage
    t1 = teacher(x[0])  # not under no_grad on purpose: the head must detach it
    t2 = torch.randn(3, 7, 3, 3, requires_grad=True)
    head([f1, f2], [t1, t2]).backward()
    for a in aligns:
        assert a.weight.grad is not None and a.weight.grad.abs().sum() > 0
        assert a.bias.grad is not None and a.bias.grad.abs().sum() > 0
    assert student.weight.grad.abs().sum() > 0
    assert teacher.weight.grad is None and t2.grad is None


@pytest.mark.compat
def test_head_clear_errors():
    with pytest.raises(ValueError, match=r"teacher_channels: expected 2 entries .* got 3"):
        LayerwiseMSEHead([4, 8], [4, 8, 16])
    with pytest.raises(ValueError, match="student_channels: expected a non-empty list"):
        LayerwiseMSEHead(4, 8)
    head = LayerwiseMSEHead([4, 8], [4, 16])
    s = [torch.randn(2, 3, 4, 8, 8), torch.randn(2, 3, 8, 4, 4)]
    t = [torch.randn(3, 4, 8, 8), torch.randn(3, 16, 4, 4)]
    with pytest.raises(ValueError, match="teachers: expected 2 stage features .* got 1"):
        head(s, t[:1])
    with pytest.raises(ValueError, match="students: expected a list"):
        head(s[0], t)
    with pytest.raises(
        ValueError, match=r"stage 1: teacher: spatial size \(8, 8\) does not match the student's \(4, 4\)"
    ):
        head(s, [t[0], torch.randn(3, 16, 8, 8)])
    with pytest.raises(ValueError, match="stage 0: student: expected 4 channels"):
        head([torch.randn(2, 3, 5, 8, 8), s[1]], t)


@pytest.mark.compat
def test_wrapper_lasnn_forward_backward():
    student, teacher = _tiny_pair()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    m = DistillationModel(
        student,
        teacher,
        T=2,
        mode="lasnn",
        student_layers=S_LAYERS,
        teacher_layers=T_LAYERS,
        example_input=x,
        alpha=1e-3,
    )
    assert isinstance(m.head, LayerwiseMSEHead) and m.head.alpha == 1e-3
    assert m.head.student_channels == [8, 16] and m.head.teacher_channels == [32, 64]
    assert m.student_tap is None and [t.name for t in m.teacher_taps] == T_LAYERS
    # every align conv is a parameter of the trained module (so in the optimizer and under DDP)
    params = {id(p) for p in m.parameters()}
    aligns = [s.align for s in m.head.stages]
    assert all(id(a.weight) in params and id(a.bias) in params for a in aligns)
    assert not any(k.startswith("teacher") for k in m.state_dict())
    m.train()
    out = distill_step(m, (x, y), _Ctx)
    assert set(out.logs) == {"ce", "lasnn"} and out.logs["lasnn"] > 0
    out.loss.backward()
    for a in aligns:
        assert a.weight.grad is not None and a.weight.grad.abs().sum() > 0
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    functional.reset_net(m)
    m.eval()
    assert set(m(x)) == {"logits", "per_step"}  # head dropped at test time


@pytest.mark.compat
def test_wrapper_lasnn_clear_errors():
    s, t = _tiny_pair()
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"teacher_layers: expected 2 layer names .* got 1"):
        DistillationModel(
            s, t, T=2, mode="lasnn", student_layers=S_LAYERS, teacher_layers=T_LAYERS[:1], example_input=x
        )
    with pytest.raises(
        ValueError,
        match=r"teacher_layers: stage 1 \('layer2' -> 'features.6'\): expected the student's spatial size "
        r"\(7, 7\), got \(14, 14\)",
    ):
        DistillationModel(
            s,
            t,
            T=2,
            mode="lasnn",
            student_layers=S_LAYERS,
            teacher_layers=["features.6", "features.6"],
            example_input=x,
        )
    with pytest.raises(ValueError, match="student_layers: expected a non-empty list of layer names"):
        DistillationModel(s, t, T=2, mode="lasnn", student_layers="layer2", teacher_layers=T_LAYERS)
    with pytest.raises(ValueError, match="only mode='lasnn'"):
        DistillationModel(s, t, T=2, mode="kdsnn", student_layers=S_LAYERS, teacher_layers=T_LAYERS)
    with pytest.raises(ValueError, match="teacher_kind"):
        DistillationModel(
            s, t, T=2, mode="lasnn", student_layers=S_LAYERS, teacher_layers=T_LAYERS, teacher_kind="vit"
        )
    with pytest.raises(KeyError, match="layer9"):
        DistillationModel(s, t, T=2, mode="lasnn", student_layers=["layer9"], teacher_layers=["features"])


def _mnist_cfg(**overrides):
    # width 8 models: layer1 [8, 14, 14] / features.6 [16, 14, 14], layer2 [16, 7, 7] / features.10 [32, 7, 7]
    sets = {"data.T": 2, "distill.mode": "lasnn", "student.layers": S_LAYERS, "teacher.layers": T_LAYERS}
    return RECIPE.config("mnist5k", {**sets, **overrides})


@pytest.mark.compat
def test_recipe_layers_keys(tmp_path):
    weights = tmp_path / "t.pt"
    torch.save(create_model("cnn_tiny", num_classes=10, width=8).state_dict(), weights)
    data = Data(train=[(torch.rand(1, 28, 28), 0)], val=None, test=None, num_classes=10)
    cfg = _mnist_cfg()
    m = build_distillation_model(cfg, data, weights)
    assert m.mode == "lasnn" and m.head.student_channels == [8, 16] and m.head.teacher_channels == [16, 32]
    assert m.head.alpha == cfg.distill.alpha
    # without the lists: the single layer pair, with a warning
    cfg = _mnist_cfg(**{"student.layers": None, "teacher.layers": None})
    with pytest.warns(UserWarning, match="student.layers/teacher.layers"):
        m1 = build_distillation_model(cfg, data, weights)
    assert m1.head.student_channels == [16] and m1.head.teacher_channels == [32]
    cfg = _mnist_cfg(**{"teacher.layers": None})
    with pytest.raises(ValueError, match="teacher.layers: mode 'lasnn' needs both"):
        build_distillation_model(cfg, data, weights)
    # the other modes ignore `layers` (a lasnn config still runs --mode bkd)
    cfg = _mnist_cfg(**{"distill.mode": "bkd"})
    assert build_distillation_model(cfg, data, weights).head.student_channels == 16


def test_packaged_config_and_cli_mode():
    cfg = RECIPE.config("imagenet_sew18_r18_lasnn")
    assert cfg.distill.mode == "lasnn" and cfg.distill.alpha == 7e-5
    assert (cfg.student.name, cfg.teacher.name) == ("sew_resnet18", "resnet18")
    stages = ["layer1", "layer2", "layer3", "layer4"]
    assert cfg.student.layers == stages and cfg.teacher.layers == stages
    sibling = RECIPE.config("imagenet_sew18_r18_bkd", out=cfg.train.out.rsplit("/", 1)[0])
    assert cfg.train == sibling.train and cfg.data == sibling.data
    assert RECIPE.config("mnist5k", {"distill.mode": "lasnn"}).distill.mode == "lasnn"
    with pytest.raises(ConfigError, match="distill.mode"):
        RECIPE.config("mnist5k", {"distill.mode": "lasnn2"})


def test_cli_train_mode_lasnn_one_step(tmp_path):
    weights = tmp_path / "t.pt"
    torch.save(create_model("cnn_tiny", num_classes=10, width=8).state_dict(), weights)
    out = tmp_path / "run"
    sets = {
        "data.train_subset": 32,
        "data.T": 2,
        "data.val_subset": 20,
        "data.test_subset": 20,
        "student.layers": json.dumps(S_LAYERS),
        "teacher.layers": json.dumps(T_LAYERS),
    }
    args = ["train", "--config", "mnist5k", "--mode", "lasnn", "--teacher-weights", str(weights)]
    args += ["--out", str(out), "--epochs", "1", "--max-steps-per-epoch", "1", "--no-progress"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    from sj_bkd.cli import main

    assert main(args) == 0
    res = json.loads((out / "student" / "results.json").read_text())
    assert "train_lasnn" in res["history"][0]
    assert 0 <= res["test_acc1"] <= 100

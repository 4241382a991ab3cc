"""The model factory, the CML Spikingformer student and the training wrapper."""

import pytest
import torch
from sj_bkd.distill import DistillationModel, distill_step, student_input
from sj_bkd.models import STUDENTS, create_model, load_weights
from sj_bkd.taps import FeatureTap
from spikingjelly.activation_based import functional


@pytest.mark.compat
@pytest.mark.parametrize(
    "name,kw,shape,feat",
    [
        ("sew_tiny", {}, (2, 3, 1, 28, 28), (2, 3, 16, 7, 7)),
        ("sew_resnet18", {"in_channels": 2}, (2, 1, 2, 32, 32), (2, 1, 512, 1, 1)),
        (
            "spikingformer_cml",
            {"dim": 32, "depth": 1, "heads": 4, "pool_stages": (2, 3)},
            (2, 2, 3, 32, 32),
            (2, 2, 32, 8, 8),
        ),
    ],
)
def test_students_multistep_and_taps(name, kw, shape, feat):
    net = create_model(name, num_classes=7, **kw)
    tap = FeatureTap(net, STUDENTS[name][1])
    out = net(torch.rand(*shape))
    assert out.shape == (shape[0], shape[1], 7)
    assert tap.pop().shape == feat
    out.sum().backward()
    functional.reset_net(net)
    with torch.no_grad():  # reset_net makes runs independent
        a = net(torch.rand(*shape) * 0 + 0.5)
        functional.reset_net(net)
        b = net(torch.rand(*shape) * 0 + 0.5)
    torch.testing.assert_close(a, b)


def test_spikingformer_8_384_size_and_head_check():
    net = create_model("spikingformer_cml", num_classes=1000, dim=384, depth=8, heads=8)
    n = sum(p.numel() for p in net.parameters()) / 1e6
    assert abs(n - 16.81) < 0.05, n  # spec section 4: 16.81 M
    with pytest.raises(ValueError, match="16 heads"):
        create_model("spikingformer_cml", num_classes=10, dim=256, heads=12)


@pytest.mark.compat
def test_teacher_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher-weights"):
        create_model("resnet18", num_classes=10, require_weights=True)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        create_model("cnn_tiny", num_classes=10, weights=tmp_path / "missing.pt")
    t = create_model("cnn_tiny", num_classes=10, frozen=False)
    torch.save({"model": {f"module.{k}": v for k, v in t.state_dict().items()}}, tmp_path / "t.pt")
    t2 = create_model("cnn_tiny", num_classes=10, weights=tmp_path / "t.pt")
    assert not t2.training and not any(p.requires_grad for p in t2.parameters())
    torch.testing.assert_close(t2.fc.weight, t.fc.weight)
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(create_model("cnn_tiny", num_classes=5), tmp_path / "t.pt")
    with pytest.raises(KeyError, match="unknown model"):
        create_model("resnet9000", num_classes=10)


@pytest.mark.compat
def test_wrapper_gradients_teacher_frozen_and_hidden():
    torch.manual_seed(0)
    teacher = create_model("cnn_tiny", num_classes=10)
    student = create_model("sew_tiny", num_classes=10)
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    m = DistillationModel(
        student, teacher, T=2, mode="mixed", student_layer="layer2", teacher_layer="features", example_input=x
    )
    assert m.head.student_channels == 16 and m.head.teacher_channels == 64
    assert not any(k.startswith("teacher") for k in m.state_dict())
    assert all(p is not q for p in m.parameters() for q in teacher.parameters())
    m.train()
    assert not teacher.training
    before = {k: v.clone() for k, v in teacher.state_dict().items()}

    class Ctx:
        train = True

        class config:
            label_smoothing = 0.0

    out = distill_step(m, (x, y), Ctx)
    assert set(out.logs) == {"ce", "bkd", "wsld"} and out.loss > out.logs["ce"]
    out.loss.backward()
    assert all(p.grad is not None for p in m.head.parameters())
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    for k, v in teacher.state_dict().items():  # BN statistics untouched
        torch.testing.assert_close(v, before[k])
    functional.reset_net(m)
    m.eval()
    assert set(m(x)) == {"logits", "per_step"}  # head dropped at test time


@pytest.mark.compat
def test_wrapper_errors_and_input():
    assert student_input(torch.rand(3, 1, 5, 5), 4, False).shape == (4, 3, 1, 5, 5)
    assert student_input(torch.rand(3, 6, 2, 5, 5), 4, True).shape == (6, 3, 2, 5, 5)
    with pytest.raises(ValueError, match="images"):
        student_input(torch.rand(3, 6, 2, 5, 5), 4, False)
    s, t = create_model("sew_tiny", num_classes=10), create_model("cnn_tiny", num_classes=10)
    with pytest.raises(ValueError, match="mode"):
        DistillationModel(s, t, T=2, mode="magic")
    with pytest.raises(KeyError, match="layer9"):
        DistillationModel(s, t, T=2, mode="bkd", student_layer="layer9", teacher_layer="features")
    with pytest.raises(ValueError, match="spatial"):
        DistillationModel(
            s,
            t,
            T=2,
            mode="bkd",
            student_layer="layer1",
            teacher_layer="features",
            example_input=torch.rand(2, 1, 28, 28),
        )


@pytest.mark.slow
def test_vit_teacher_pre_logits_tap():
    pytest.importorskip("timm")
    t = create_model("vit_small_patch16_224", num_classes=10, img_size=32)
    tap = FeatureTap(t, "pre_logits", detach=True)
    z = t(torch.rand(2, 3, 32, 32))
    assert z.shape == (2, 10) and tap.pop().shape == (2, 384)


def test_vit_teacher_without_timm_is_clear(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "timm":
            raise ImportError("no timm")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.setattr("importlib.import_module", lambda n: fake(n))
    with pytest.raises(ImportError, match=r"sj-bkd\[vit\]"):
        create_model("vit_small_patch16_224", num_classes=10)

"""A spiking teacher (``teacher_T``, the CIFAR10-DVS rows) and the layouts channel inference accepts.

The tapped feature of an SNN teacher is multi-step ``[T', B, C, H, W]``: it is averaged over the
teacher's time steps, as its logits are, before the head sees it (issue 24 item 1: the head was built
from the wrong axis and then refused the 5-D feature on the first step).
"""

import pytest
import torch
import torch.nn as nn
from sj_bkd.distill import DistillationModel, distill_step
from sj_bkd.models import create_model
from spikingjelly.activation_based import functional, layer

from tests.bkd.test_lasnn import _Ctx

B, T, T_TEACHER = 2, 2, 3


def _frames(t, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, t, 1, 28, 28, generator=g) > 0.7).float()  # event frames [B, T, C, H, W]


def _spiking_pair(mode="bkd"):
    torch.manual_seed(0)
    student = create_model("sew_tiny", num_classes=10, width=8)
    teacher = create_model("sew_tiny", num_classes=10, width=4)  # layer2: [T', B, 8, 7, 7]
    return DistillationModel(
        student,
        teacher,
        T=T,
        mode=mode,
        student_layer="layer2",
        teacher_layer="layer2",
        example_input=_frames(T, 0),
        sequence_input=True,
        teacher_T=T_TEACHER,
    )


def test_spiking_teacher_feature_is_averaged_over_its_time_steps():
    m = _spiking_pair("mixed")
    # the teacher's width (8 channels), not a spatial size read from [T', B, C, H, W]
    assert (m.head.student_channels, m.head.teacher_channels) == (16, 8)
    x, x_t, y = _frames(T, 1), _frames(T_TEACHER, 2), torch.tensor([3, 7])
    m.train()
    out = distill_step(m, (x, x_t, y), _Ctx)
    assert set(out.logs) == {"ce", "bkd", "wsld"} and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in m.head.parameters())
    functional.reset_net(m.student)

    # the bkd term is the head on the teacher's feature averaged over its T' steps (same mask)
    fs_seen, ft_seen = {}, {}
    hs = m.student_tap.module.register_forward_hook(lambda mod, i, o: fs_seen.setdefault("f", o))
    ht = m.teacher_tap.module.register_forward_hook(lambda mod, i, o: ft_seen.setdefault("f", o))
    mask = torch.ones(B, 8)
    mask[0, 3] = 0.0
    m.head.make_mask = lambda b, device, generator=None: mask.reshape(B, 8, 1, 1)
    with torch.no_grad():
        got = m(x, y, x_t)["losses"]["bkd"]
    hs.remove()
    ht.remove()
    assert ft_seen["f"].shape == (T_TEACHER, B, 8, 7, 7)
    want = m.head(fs_seen["f"], ft_seen["f"].mean(0), mask=mask)
    torch.testing.assert_close(got, want)


def test_teacher_logits_and_kd_modes_with_a_spiking_teacher():
    m = _spiking_pair("kdsnn")
    x, x_t, y = _frames(T, 1), _frames(T_TEACHER, 2), torch.tensor([0, 1])
    m.train()
    out = m(x, y, x_t)
    assert out["teacher_logits"].shape == (B, 10) and out["losses"]["kdsnn"].dim() == 0


class _Flat(nn.Module):
    """A student whose tapped layer folds time into the batch: ``[T*B, C, H, W]``."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):  # [T, B, 1, H, W]
        t, b = x.shape[:2]
        f = self.body(x.flatten(0, 1))
        return self.fc(f.mean((2, 3))).reshape(t, b, 10)


def test_channel_inference_refuses_layouts_it_does_not_understand():
    torch.manual_seed(0)
    teacher = create_model("cnn_tiny", num_classes=10, width=4)  # features: [B, 16, 7, 7]
    x = torch.rand(B, 1, 28, 28)
    # a student map flattened over time [T*B, C, H, W]: it used to read W as the channel count
    with pytest.raises(ValueError, match=r"student_layer: .*\[T, B, C, H, W\].*T=2, B=2.*\(4, 4, 28, 28\)"):
        DistillationModel(
            _Flat(), teacher, T=T, mode="bkd", student_layer="body", teacher_layer="features", example_input=x
        )
    # a student's logits [T, B, K] are not a feature either
    student = create_model("sew_tiny", num_classes=10)
    with pytest.raises(ValueError, match=r"student_layer: .*got shape \(2, 2, 10\)"):
        DistillationModel(
            student, teacher, T=T, mode="bkd", student_layer="fc", teacher_layer="features", example_input=x
        )
    # a CNN teacher's map where teacher_kind='vit' expects the pre-logits vector [B, D]
    with pytest.raises(
        ValueError, match=r"teacher_layer: .*'vit' expects a vector \[B, D\].*\(2, 16, 7, 7\)"
    ):
        DistillationModel(
            student,
            teacher,
            T=T,
            mode="bkd",
            student_layer="layer2",
            teacher_layer="features",
            teacher_kind="vit",
            example_input=x,
        )
    # a multi-step teacher feature where a static one is expected (an SNN teacher without teacher_T)
    with pytest.raises(ValueError, match=r"teacher_layer: .*got shape \(3, 2, 4, 28, 28\)"):
        DistillationModel(
            student, _Steps(), T=T, mode="bkd", student_layer="layer2", teacher_layer="body", example_input=x
        )


class _Steps(nn.Module):
    """A teacher whose tapped layer is multi-step ``[3, B, C, H, W]`` on a static input."""

    def __init__(self):
        super().__init__()
        self.body = layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1))
        self.fc = nn.Linear(4, 10)

    def forward(self, x):  # [B, 1, H, W]
        return self.fc(self.body(x.unsqueeze(0).expand(3, *x.shape)).mean((0, 3, 4)))

"""BlurredDistillationHead against the spec's formula (bkd.md section 1.2)."""

import pytest
import torch
import torch.nn as nn
from sj_bkd.head import ALPHA_CNN, ALPHA_VIT, AlignedMSEHead, BlurredDistillationHead


def _direct(head, fs_seq, ft, mask, vit=False):
    fs = fs_seq.mean(0)
    s = head.align(fs) if not isinstance(head.align, nn.Identity) else fs
    m = mask.reshape(mask.shape[0], -1, 1, 1)
    g = head.generation
    y = g[2](torch.relu(g[0](s * m)))
    if vit:
        y = y.mean((2, 3))
    return head.alpha * ((y - ft) ** 2).sum() / fs.shape[0]


@pytest.mark.compat
def test_loss_equals_formula_cnn_fixed_mask():
    torch.manual_seed(0)
    head = BlurredDistillationHead(6, 10)
    assert head.alpha == ALPHA_CNN and isinstance(head.align, nn.Conv2d)
    fs = torch.randn(4, 3, 6, 5, 5)  # [T, B, C_s, H, W]
    ft = torch.randn(3, 10, 5, 5)
    mask = (torch.rand(3, 10) > 0.3).float()
    got = head(fs, ft, mask=mask)
    want = _direct(head, fs, ft, mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)
    assert got.dtype == torch.float32 and got.dim() == 0
    # a different mask gives a different loss: the mask is really applied
    assert not torch.isclose(head(fs, ft, mask=torch.ones(3, 10)), got)


@pytest.mark.compat
def test_identity_align_when_channels_equal_and_vit_pooling():
    torch.manual_seed(1)
    head = BlurredDistillationHead(8, 8, teacher_kind="vit")
    assert isinstance(head.align, nn.Identity) and head.alpha == ALPHA_VIT
    fs = torch.randn(2, 4, 8, 3, 3)
    ft = torch.randn(4, 8)  # pre-logits vector
    mask = (torch.rand(4, 8) > 0.5).float()
    torch.testing.assert_close(head(fs, ft, mask=mask), _direct(head, fs, ft, mask, vit=True))


@pytest.mark.compat
def test_token_inputs_equal_map_inputs():
    torch.manual_seed(2)
    head = BlurredDistillationHead(6, 4)
    maps = torch.randn(2, 3, 6, 4, 4)  # [T, B, C, H, W]
    tokens = maps.flatten(3).transpose(2, 3)  # [T, B, N=16, D=6]
    ft = torch.randn(3, 4, 4, 4)
    ft_tokens = ft.flatten(2).transpose(1, 2)  # [B, 16, 4]
    mask = (torch.rand(3, 4) > 0.2).float()
    ref = head(maps, ft, mask=mask)
    torch.testing.assert_close(head(tokens, ft, mask=mask), ref)
    torch.testing.assert_close(head(tokens, ft_tokens, mask=mask), ref)
    torch.testing.assert_close(head(maps.mean(0), ft, mask=mask, multistep=False), ref)
    with pytest.raises(ValueError, match="square grid"):
        head(torch.randn(2, 3, 17, 6), ft)


@pytest.mark.compat
def test_mask_ratio_and_freshness():
    head = BlurredDistillationHead(4, 64, lam=0.15)
    torch.manual_seed(3)
    masks = torch.stack([head.make_mask(32, "cpu") for _ in range(50)])
    assert masks.shape == (50, 32, 64, 1, 1)
    dropped = 1 - masks.mean().item()
    assert abs(dropped - 0.15) < 0.01, dropped
    assert not torch.equal(masks[0], masks[1])  # fresh per call
    assert set(masks.unique().tolist()) <= {0.0, 1.0}  # no rescaling
    # whole channels per sample: the mask is constant over H, W when applied
    fs = torch.ones(1, 2, 4, 3, 3)
    s = head.align(fs.mean(0))
    m = head.make_mask(2, "cpu")
    blurred = s * m
    for b in range(2):
        for c in range(64):
            vals = blurred[b, c].flatten()
            assert torch.all(vals == vals[0])


@pytest.mark.compat
def test_mask_used_in_forward_zeroes_channels(monkeypatch):
    """With lam close to 1 almost every channel is zeroed, so the generator sees (almost) only zeros."""
    torch.manual_seed(4)
    head = BlurredDistillationHead(4, 4, lam=0.999999)
    fs = torch.randn(2, 3, 4, 5, 5) * 10
    ft = torch.zeros(3, 4, 5, 5)
    zero_in = head(fs, ft, mask=torch.zeros(3, 4))
    torch.testing.assert_close(head(fs, ft), zero_in)


@pytest.mark.compat
def test_gradients_reach_student_and_head_never_teacher():
    torch.manual_seed(5)
    student = nn.Conv2d(3, 6, 3, padding=1)
    teacher = nn.Conv2d(3, 8, 3, padding=1)
    head = BlurredDistillationHead(6, 8, use_clip=True)
    x = torch.randn(2, 4, 3, 5, 5)
    fs = student(x.flatten(0, 1)).reshape(2, 4, 6, 5, 5)
    ft = teacher(x[0])  # not under no_grad on purpose: the head must detach it
    head(fs, ft).backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    for p in head.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert teacher.weight.grad is None


@pytest.mark.compat
def test_use_clip_rescales_teacher():
    torch.manual_seed(6)
    head = BlurredDistillationHead(4, 4, use_clip=True)
    fs = torch.rand(2, 2, 4, 3, 3)
    ft = torch.rand(2, 4, 3, 3) * 100
    mask = torch.ones(2, 4)
    s = fs.mean(0)
    ft_clip = ft * (s.max() / ft.max())
    g = head.generation
    want = head.alpha * ((g[2](torch.relu(g[0](s))) - ft_clip) ** 2).sum() / 2
    torch.testing.assert_close(head(fs, ft, mask=mask), want)


@pytest.mark.compat
def test_clear_errors():
    head = BlurredDistillationHead(4, 8)
    with pytest.raises(ValueError, match="spatial size"):
        head(torch.randn(2, 3, 4, 7, 7), torch.randn(3, 8, 14, 14))
    with pytest.raises(ValueError, match="student_channels"):
        head(torch.randn(2, 3, 5, 7, 7), torch.randn(3, 8, 7, 7))
    with pytest.raises(ValueError, match="teacher_channels"):
        head(torch.randn(2, 3, 4, 7, 7), torch.randn(3, 9, 7, 7))
    with pytest.raises(ValueError, match="multi-step"):
        head(torch.randn(3, 4), torch.randn(3, 8, 7, 7))
    with pytest.raises(ValueError, match="batch"):
        head(torch.randn(2, 3, 4, 7, 7), torch.randn(2, 8, 7, 7))
    with pytest.raises(ValueError, match="pre-logits"):
        BlurredDistillationHead(4, 8, teacher_kind="vit")(torch.randn(2, 3, 4, 7, 7), torch.randn(3, 8, 7, 7))
    with pytest.raises(ValueError, match="teacher_kind"):
        BlurredDistillationHead(4, 8, teacher_kind="rnn")
    with pytest.raises(ValueError, match="lam"):
        BlurredDistillationHead(4, 8, lam=1.5)


@pytest.mark.compat
def test_aligned_mse_baseline():
    torch.manual_seed(7)
    head = AlignedMSEHead(4, 6)
    fs = torch.randn(2, 3, 4, 3, 3)
    ft = torch.randn(3, 6, 3, 3)
    want = head.alpha * ((head.align(fs.mean(0)) - ft) ** 2).sum() / 3
    torch.testing.assert_close(head(fs, ft), want)


def test_4d_student_with_multistep_says_which_shape_is_expected():
    head = BlurredDistillationHead(16, 32)
    # a time-averaged map [B, C, H, W] passed with multistep=True (the default)
    with pytest.raises(
        ValueError,
        match=r"student: with multistep=True a 4-D feature is read as tokens \[T, B, N, D\] with D = student_channels = 16, got shape \(2, 16, 7, 7\)",
    ) as e:
        head(torch.randn(2, 16, 7, 7), torch.randn(2, 32, 7, 7))
    assert "[T*B, C, H, W]" in str(e.value) and "multistep=False" in str(e.value)
    assert "square grid" not in str(e.value)
    loss = head(torch.randn(2, 16, 7, 7), torch.randn(2, 32, 7, 7), multistep=False)  # the fix it names
    assert torch.isfinite(loss)
    tokens = head(torch.randn(3, 2, 49, 16), torch.randn(2, 32, 7, 7))  # real tokens still work
    assert torch.isfinite(tokens)


def test_empty_batch_or_no_time_step_is_an_error_not_nan():
    head = BlurredDistillationHead(16, 32)
    with pytest.raises(
        ValueError,
        match=r"student: expected at least one sample \(B >= 1\), got an empty batch \(shape \(4, 0, 16, 7, 7\)\)",
    ):
        head(torch.randn(4, 0, 16, 7, 7), torch.randn(0, 32, 7, 7))
    with pytest.raises(ValueError, match=r"student: expected at least one sample \(B >= 1\)"):
        head(torch.randn(0, 16, 7, 7), torch.randn(0, 32, 7, 7), multistep=False)
    with pytest.raises(
        ValueError, match=r"student: expected at least one time step \(T >= 1\), got shape \(0, 2, 16, 7, 7\)"
    ):
        head(torch.randn(0, 2, 16, 7, 7), torch.randn(2, 32, 7, 7))

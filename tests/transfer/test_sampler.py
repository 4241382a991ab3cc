import pytest
import torch
from sj_transfer.sampler import (
    PowerSchedule,
    SlidingReplacement,
    StepSchedule,
    make_schedule,
    replacement_probability,
)

pytestmark = pytest.mark.compat


def test_power_schedule_values():
    s = PowerSchedule(3)
    assert s(0, 100) == 0.0
    assert s(25, 100) == pytest.approx(0.015625)
    assert s(50, 100) == pytest.approx(0.125)
    assert s(100, 100) == 1.0
    assert s(150, 100) == 1.0  # clipped
    assert replacement_probability(794, 1000) == pytest.approx(0.5, abs=0.001)  # P = 0.5 at 79.4 %
    mean = sum(s(i, 1000) for i in range(1000)) / 1000
    assert mean == pytest.approx(0.25, abs=0.002)  # 1 / (k + 1)


def test_step_schedule_is_no_sliding_ablation():
    s = make_schedule("no_sliding")
    assert isinstance(s, StepSchedule)
    assert [s(i, 10) for i in range(10)] == [0.0] * 5 + [1.0] * 5
    assert make_schedule("none")(99, 100) == 0.0
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("linear")
    with pytest.raises(ValueError, match="total"):
        PowerSchedule()(0, 0)


def test_per_sample_replacement_rate_and_content():
    g = torch.Generator().manual_seed(0)
    sliding = SlidingReplacement("sliding", generator=g)
    T, B = 3, 4000
    static = torch.zeros(T, B, 2)
    event = torch.arange(B, dtype=torch.float32).view(1, B, 1).expand(T, B, 2).contiguous()
    mixed, mask = sliding(static, event, iteration=50, total=100)  # P = 0.125
    assert mask.shape == (B,)
    assert mask.float().mean().item() == pytest.approx(0.125, abs=0.02)
    # replaced samples carry their own event sequence (all steps), the others stay static
    assert torch.equal(mixed[:, mask], event[:, mask])
    assert torch.equal(mixed[:, ~mask], static[:, ~mask])
    # independent draws per sample over many calls
    rates = [sliding.mask(200, 80, 100).float().mean().item() for _ in range(50)]
    assert sum(rates) / len(rates) == pytest.approx(0.512, abs=0.02)
    # P = 0 leaves the input untouched, P = 1 replaces everything
    same, m0 = sliding(static, event, 0, 100)
    assert same is static and not m0.any()
    full, m1 = sliding(static, event, 100, 100)
    assert m1.all() and torch.equal(full, event)


def test_batch_first_layout_and_errors():
    s = SlidingReplacement(lambda i, n: 1.0, batch_dim=0)
    static, event = torch.zeros(5, 3, 2), torch.ones(5, 3, 2)
    out, m = s(static, event, 1, 2)
    assert torch.equal(out, event) and m.shape == (5,)
    with pytest.raises(ValueError, match="shape"):
        s(static, torch.ones(5, 4, 2), 1, 2)
    with pytest.raises(ValueError, match="batch_dim"):
        SlidingReplacement(batch_dim=2)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_mask_moves_to_the_device_without_a_host_sync(monkeypatch, p):
    """The mask is drawn on the CPU and copied to the inputs' device non-blocking: a blocking host-to-device
    copy synchronises the host with the GPU stream every step (``set_sync_debug_mode('error')`` raises)."""
    moves = []
    original = torch.Tensor.to

    def to(t, *args, **kwargs):
        moves.append((t.device.type, kwargs.get("non_blocking", False)))
        return original(t, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    static = torch.zeros(2, 4, 1, device="meta")  # another device than the CPU, without a GPU
    event = torch.ones(2, 4, 1, device="meta")
    sliding = SlidingReplacement(lambda i, n: p, generator=torch.Generator().manual_seed(0))
    mixed, mask = sliding(static, event, 0, 10)
    assert mask.device.type == "meta" and mixed.device.type == "meta"
    assert ("cpu", False) not in moves and ("cpu", True) in moves
    moves.clear()
    assert sliding.mask(4, 1, 10, device="meta").device.type == "meta"
    assert ("cpu", False) not in moves


def test_batch_first_input_with_default_batch_dim_is_an_error_when_T_is_known():
    """Issue 25: [B, T, ...] fed with the default batch_dim=1 silently drew one replacement per time step."""
    sliding = SlidingReplacement(T=4)
    xs, xe = torch.zeros(6, 4, 2, 3, 3), torch.ones(6, 4, 2, 3, 3)  # batch-first: B=6, T=4
    with pytest.raises(ValueError, match=r"batch_dim=1 .*\[T, B, \.\.\.\].*T=4.*batch-first.*batch_dim=0"):
        sliding(xs, xe, iteration=10, total=10)
    out, m = sliding(xs.transpose(0, 1), xe.transpose(0, 1), iteration=10, total=10)  # time-first: fine
    assert out.shape == (4, 6, 2, 3, 3) and bool(m.all())  # P(N) = 1: every sample replaced
    out, m = SlidingReplacement(batch_dim=0, T=4)(xs, xe, iteration=10, total=10)
    assert m.shape == (6,) and torch.equal(out, xe)
    with pytest.raises(ValueError, match=r"batch_dim=0 .*dim 1 must hold T=4.*time-first.*batch_dim=1"):
        SlidingReplacement(batch_dim=0, T=4)(xs.transpose(0, 1), xe.transpose(0, 1), iteration=1, total=10)
    with pytest.raises(ValueError, match=r"dim 0 must hold T=4 time steps, got shape \(5, 6"):
        sliding(torch.zeros(5, 6, 2), torch.zeros(5, 6, 2), iteration=1, total=10)  # neither: no hint
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="T: expected None or a positive int"):
            SlidingReplacement(T=bad)

"""Property tests of the offset-spike calibrated IF layer (spec 5.3)."""

import pytest
import torch
from spikingjelly.activation_based import functional

from sj_calib import QCFS, OffsetSpikeIF, offset_spike_if, offset_spike_if_with_info

from .conftest import if_reference, spike_train_current

pytestmark = pytest.mark.compat


@pytest.mark.parametrize("T,rho", [(4, 4), (8, 4), (8, 0), (5, 2)])
def test_constant_input_equals_plain_if_and_qcfs(T, rho):
    torch.manual_seed(0)
    theta = 1.7
    z = (torch.rand(6, 40, dtype=torch.float64) * 2.4 - 0.4) * theta  # includes < 0 and > theta
    x = z.unsqueeze(0).expand(T, *z.shape)
    out, info = offset_spike_if_with_info(x, theta, rho)
    plain = offset_spike_if(x, theta, 0)
    assert torch.equal(out, plain)
    assert not info.lowered.any() and not info.raised.any()
    q = QCFS(L=T).double()
    q.threshold.data.fill_(theta)
    with torch.no_grad():
        assert torch.allclose(out.mean(0), q(z), atol=1e-12)
    # and against an independent IF simulation
    s, _, _ = if_reference(x / theta, torch.full_like(z, 0.5))
    assert torch.equal(out, s * theta)


def _flag_and_plain(u, rho, shift, saturate="skip"):
    out, info = offset_spike_if_with_info(u, 1.0, rho, shift=shift, saturate=saturate)
    s0, h0, v0 = if_reference(u, torch.full_like(u[0], 0.5))
    return out, info, s0, h0, v0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_theta_shift_changes_exactly_one_spike_and_rejoins(seed):
    u = spike_train_current(T=24, seed=seed)
    rho = 4
    out, info, s0, h0, v0 = _flag_and_plain(u, rho, "theta")
    assert info.lowered.any() and info.raised.any(), "fixture must flag neurons both ways"
    win = s0[:rho]
    h_plus = torch.where(win > 0, h0[:rho], torch.full_like(win, 1e3)).amin(0)
    h_minus = torch.where(win > 0, torch.full_like(win, -1e3), h0[:rho]).amax(0)
    acts_down = info.lowered & (h_plus < 2)
    acts_up = info.raised & (h_minus >= 0)
    assert acts_down.any() and acts_up.any()
    d_win = out[:rho].sum(0) - win.sum(0)
    d_all = out.sum(0) - s0.sum(0)
    assert torch.all(d_win[acts_down] == -1) and torch.all(d_all[acts_down] == -1)
    assert torch.all(d_win[acts_up] == 1) and torch.all(d_all[acts_up] == 1)
    # unflagged neurons are untouched
    untouched = ~(info.lowered | info.raised | info.saturated)
    assert torch.equal(out[:, untouched], s0[:, untouched])
    # after the changed spike the trajectory rejoins the original: final potentials agree
    s1, _, v1 = if_reference(u, info.v0)
    assert torch.equal(s1, out)
    moved = acts_down | acts_up
    assert torch.allclose(v1[-1][moved], v0[-1][moved], atol=1e-9)
    first_diff = (s1 != s0).to(torch.int64).argmax(0)
    for idx in moved.nonzero()[:50]:
        t = int(first_diff[tuple(idx)])
        sel = (slice(t, None), *idx.tolist())
        assert torch.allclose(v1[sel], v0[sel], atol=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_reference_shift_window_counts_change_by_one(seed):
    u = spike_train_current(T=16, seed=seed, scale=0.6)
    rho = 4
    out, info, s0, _, _ = _flag_and_plain(u, rho, "reference")
    d_win = out[:rho].sum(0) - s0[:rho].sum(0)
    assert torch.all(d_win[info.lowered] == -1)
    assert torch.all(d_win[info.raised] == 1)
    assert torch.all(d_win[~(info.lowered | info.raised)] == 0)


def test_saturated_neurons_pinned_or_skipped():
    u = spike_train_current(T=12, seed=5, scale=0.9) + 0.6
    rho = 4
    out, info = offset_spike_if_with_info(u, 1.0, rho, saturate="reference")
    assert info.saturated.any()
    assert torch.all(out[:, info.saturated] == 1)  # fires at every main step
    out_skip, info_skip = offset_spike_if_with_info(u, 1.0, rho, saturate="skip")
    s0, _, _ = if_reference(u, torch.full_like(u[0], 0.5))
    assert torch.equal(out_skip[:, info_skip.saturated], s0[:, info_skip.saturated])


def test_causality_first_steps_independent_of_run_length():
    u = spike_train_current(T=20, seed=7)
    for rho in (0, 4):
        long = offset_spike_if(u, 1.3, rho)
        short = offset_spike_if(u[: max(rho, 1)], 1.3, rho)
        assert torch.equal(long[: short.shape[0]], short)


@pytest.mark.parametrize("seed", [11, 12])
def test_iterations_remove_one_offset_spike_per_pass(seed):
    # reference shift: every pass re-detects from the shifted potential and removes exactly one offset
    # spike inside the window, so |psi_after| == max(|psi_before| - k, 0) for every neuron
    u = spike_train_current(T=16, seed=seed, scale=0.8)
    rho = 8
    for k in (1, 2, 3):
        _, info = offset_spike_if_with_info(u, 1.0, rho, iterations=k)
        assert (info.offset_before.abs() >= 3).any(), "fixture needs offsets of 3+ spikes"
        expected = (info.offset_before.abs() - k).clamp(min=0)
        assert torch.equal(info.offset_after.abs(), expected)
        assert info.presim_steps == k * rho


def test_layer_matches_function_and_survives_reset_net():
    u = spike_train_current(T=8, seed=2) * 2.0
    layer = OffsetSpikeIF(2.0, rho=4)
    y1 = layer(u)
    assert y1.shape == u.shape and y1.dtype == u.dtype
    y2 = layer(u)  # no reset in between
    functional.reset_net(layer)
    y3 = layer(u)
    ref = offset_spike_if(u, 2.0, 4)
    assert torch.equal(y1, ref) and torch.equal(y2, ref) and torch.equal(y3, ref)
    assert set(torch.unique(y1).tolist()) <= {0.0, 2.0}


def test_layer_records_stats():
    u = spike_train_current(T=8, seed=4)
    layer = OffsetSpikeIF(1.0, rho=4)
    layer.record = True
    layer(u)
    layer(u)
    st = layer.stats()
    assert st["neuron_samples"] == 2 * u[0].numel()
    assert sum(st["offset_hist_before"]) == 2 * u[0].numel()
    assert st["offset_hist_after"][0] >= st["offset_hist_before"][0]
    assert len(st["spikes_per_step"]) == 8 and st["presim_steps"] == 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(rho=-1), "rho"),
        (dict(rho=9), "rho=9"),
        (dict(rho=2, shift="half"), "shift"),
        (dict(rho=2, saturate="clip"), "saturate"),
        (dict(rho=2, iterations=0), "iterations"),
    ],
)
def test_bad_arguments(kwargs, match):
    x = torch.rand(8, 2, 3)
    with pytest.raises(ValueError, match=match):
        offset_spike_if(x, 1.0, **kwargs)


def test_bad_tensors():
    with pytest.raises(ValueError, match="x_seq"):
        offset_spike_if(torch.rand(5), 1.0, 0)
    with pytest.raises(ValueError, match="T >= 1"):
        offset_spike_if(torch.rand(0, 3, 2), 1.0, 0)
    with pytest.raises(TypeError, match="floating"):
        offset_spike_if(torch.ones(4, 3, 2, dtype=torch.int64), 1.0, 0)
    with pytest.raises(ValueError, match="v_threshold"):
        offset_spike_if(torch.rand(4, 3, 2), -1.0, 0)
    with pytest.raises(ValueError, match="step_mode"):
        OffsetSpikeIF(1.0, step_mode="s")


def test_two_d_batch_without_time_is_refused():
    # issue #10: a [B, F] batch with B >= rho used to run as B time steps of F neurons
    for fn in (offset_spike_if, offset_spike_if_with_info):
        with pytest.raises(ValueError, match=r"x_seq: expected \[T, B, \*features\].*got shape \(8, 5\)"):
            fn(torch.rand(8, 5), 1.0, 4)
    with pytest.raises(ValueError, match=r"x_seq: expected \[T, B, \*features\]"):
        OffsetSpikeIF(1.0, rho=4)(torch.rand(8, 5))


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), 0.0, -1.0, True, "1"])
def test_threshold_must_be_positive_finite(bad):
    with pytest.raises(ValueError, match=r"v_threshold: expected a positive finite number, got"):
        offset_spike_if(torch.rand(4, 2, 3), bad, 0)
    with pytest.raises(ValueError, match=r"v_threshold: expected a positive finite number, got"):
        OffsetSpikeIF(bad, rho=4)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_input_is_refused_by_the_functions(value):
    x = torch.rand(4, 2, 3)
    x[1, 0, 2] = value
    for fn in (offset_spike_if, offset_spike_if_with_info):
        with pytest.raises(ValueError, match=r"x_seq: expected finite values.*first at index \(1, 0, 2\)"):
            fn(x, 1.0, 4)


class _StreamingCOS:
    """Independent causal re-implementation (shift='theta', saturate='skip'): buffer rho inputs, pre-simulate,
    shift v0 by +-1, replay the buffer, then step online. Emits one output per input after the first rho."""

    def __init__(self, rho):
        self.rho, self.buf, self.v = rho, [], None

    def step(self, u):
        if self.v is not None:
            h = self.v + u
            s = (h >= 1).to(u.dtype)
            self.v = h - s
            return [s]
        self.buf.append(u)
        if len(self.buf) < self.rho:
            return []
        win = torch.stack(self.buf)
        s, _, v = if_reference(win, torch.full_like(u, 0.5))
        n, v_rho = s.sum(0), v[-1]
        v0 = torch.full_like(u, 0.5)
        v0 = torch.where((v_rho < 0) & (n > 0), v0 - 1, v0)
        v0 = torch.where((v_rho >= 1) & (n < self.rho), v0 + 1, v0)
        out, _, v = if_reference(win, v0)
        self.v = v[-1]
        return list(out)


def test_streaming_implementation_matches_layer_by_layer():
    g = torch.Generator().manual_seed(3)
    T, rho = 12, 4
    x = torch.rand(T, 5, 16, generator=g, dtype=torch.float64) * 1.2
    w = torch.randn(16, 24, generator=g, dtype=torch.float64) * 0.5
    # layer by layer (our implementation)
    l1 = OffsetSpikeIF(1.0, rho, shift="theta", saturate="skip")
    l2 = OffsetSpikeIF(1.0, rho, shift="theta", saturate="skip")
    ref = l2(l1(x) @ w)
    # streaming: inputs arrive one step at a time; each layer emits with a delay of rho - 1 steps
    s1, s2 = _StreamingCOS(rho), _StreamingCOS(rho)
    outs = []
    for t in range(T):
        for o1 in s1.step(x[t]):
            outs += s2.step(o1 @ w)
    # a layer's first output needs rho inputs, so the first output of layer D waits ~D*rho steps; with
    # instantaneous compute every output has been emitted once the input ends
    got = torch.stack(outs)
    assert got.shape[0] == T
    assert torch.equal(got, ref)


def _spec_cos_layer(x, theta, rho):
    """Literal port of the spec's section 3.2 (one pass, reference shift and saturation), float64 loops."""
    u = x / theta
    s, h, v = if_reference(u[:rho], torch.full_like(u[0], 0.5))
    n, v_rho = s.sum(0), v[-1]
    lower = (v_rho < 0) & (n > 0)
    h_plus = torch.where(s == 1, h, torch.full_like(h, 1000.0)).amin(0)
    h_minus = torch.where(s == 0, h, torch.full_like(h, -1000.0)).amax(0)
    d_down = torch.where(h_plus - 0.999 > 1, h_plus - 0.999, torch.ones_like(h_plus))
    d_up = torch.where(1.001 - h_minus > 1, 1.001 - h_minus, torch.ones_like(h_minus))
    v0 = 0.5 - lower.to(u.dtype) * d_down
    v0 = torch.where(v_rho >= 1, 0.5 + d_up, v0)
    out, _, _ = if_reference(u, v0)
    return out * theta


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_spec_port_on_random_conv_net(seed):
    from torch import nn

    from sj_calib import QCFS, calibrate, convert

    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), QCFS(4, 1.3), nn.AvgPool2d(2), nn.Conv2d(6, 8, 3, padding=1), QCFS(4, 0.3),
        nn.Flatten(), nn.Linear(8 * 16, 5),
    ).double().eval()  # fmt: skip
    for p in net.parameters():
        p.data = torch.randn(p.shape, generator=g, dtype=torch.float64) * 1.5
    net[1].threshold.data.fill_(1.3)
    net[4].threshold.data.fill_(0.3)
    x = torch.rand(3, 2, 8, 8, generator=g, dtype=torch.float64)
    T, rho = 7, 4
    with torch.no_grad():
        ours = calibrate(convert(net), rho=rho)(x, T=T)
        seq = x.unsqueeze(0).expand(T, *x.shape).flatten(0, 1)
        a = net[0](seq).unflatten(0, (T, 3))
        a = _spec_cos_layer(a, 1.3, rho)
        a = net[3](net[2](a.flatten(0, 1))).unflatten(0, (T, 3))
        a = _spec_cos_layer(a, 0.3, rho)
        ref = net[6](net[5](a.flatten(0, 1))).unflatten(0, (T, 3))
        plain = convert(net)(x, T=T)
    assert torch.equal(ours, ref)
    assert not torch.equal(ours, plain)  # the calibration did act on this net


# --- the algorithm before issue #13, kept verbatim as the bit-identity oracle --------------------------------
# It pre-simulated through SpikingJelly's node with store_v_seq=True, masked over whole tensors, and re-ran
# every neuron's first rho main steps. The current code replays only the neurons whose v_0 moved.


def _old_simulate(node, u_seq, v0, need_h=True):
    from sj_common.compat import set_initial_potential

    node.store_v_seq = need_h
    node.reset()
    set_initial_potential(node, v0)
    spikes = node(u_seq)
    if not need_h:
        return spikes, None, node.v
    return spikes, node.v_seq + spikes, node.v


@torch.no_grad()
def _old_calibrated_spikes(u_seq, rho, shift, saturate, iterations):
    from sj_common.compat import if_node

    node = if_node(v_threshold=1.0, v_reset=None, store_v_seq=True, step_mode="m")
    v0 = torch.full_like(u_seq[0], 0.5)
    masks = None
    n_before = None
    for _ in range(iterations if rho > 0 else 0):
        s, h, v_rho = _old_simulate(node, u_seq[:rho], v0, need_h=shift == "reference")
        n = s.sum(0)
        if n_before is None:
            n_before = n
        w = v_rho - (v0 - 0.5)
        lower = (w < 0) & (n > 0)
        up = w >= 1
        sat = up & (n >= rho)
        up = up & ~sat
        dt = v0.dtype
        if shift == "theta":
            v0 = v0 - lower.to(dt) + up.to(dt)
        else:
            big = torch.finfo(h.dtype).max / 4
            h_plus = (h + (1.0 - s) * big).amin(0)
            h_minus = (h - s * big).amax(0)
            d_down = (h_plus - 0.999).clamp_(min=1.0)
            d_up = (1.001 - h_minus).clamp_(min=1.0)
            v0 = v0.addcmul(lower.to(dt), d_down, value=-1.0).addcmul_(up.to(dt), d_up)
        if saturate == "reference":
            v0 = v0.masked_fill(sat, 0.5 + 1.001 + 1000.0)
        if masks is None:
            masks = (lower, up, sat)
    spikes, _, _ = _old_simulate(node, u_seq, v0, need_h=False)
    target = torch.floor(u_seq[:rho].sum(0) + 0.5).clamp(0, rho)
    return spikes, v0, masks, n_before - target, spikes[:rho].sum(0) - target


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shift", ["reference", "theta"])
@pytest.mark.parametrize("saturate", ["reference", "skip"])
@pytest.mark.parametrize(
    "T,rho,iterations", [(4, 4, 1), (16, 4, 1), (9, 2, 1), (12, 8, 1), (8, 4, 2), (16, 8, 3)]
)
def test_bit_identical_to_the_algorithm_before_issue_13(dtype, shift, saturate, T, rho, iterations):
    moved_fractions = []
    for seed, scale, bias in ((0, 0.35, 0.0), (1, 0.8, 0.0), (2, 0.9, 0.6), (3, 1.5, -0.3), (4, 0.2, 1.5)):
        u = (spike_train_current(T=T, seed=seed, scale=scale) + bias).to(dtype).reshape(T, 8, 4, 16)
        theta = 1.3
        x = u * theta
        old = _old_calibrated_spikes(x / theta, rho, shift, saturate, iterations)
        out, info = offset_spike_if_with_info(
            x, theta, rho, shift=shift, saturate=saturate, iterations=iterations
        )
        assert torch.equal(out, old[0] * theta)
        assert torch.equal(
            offset_spike_if(x, theta, rho, shift=shift, saturate=saturate, iterations=iterations), out
        )
        assert torch.equal(info.v0, old[1])
        for new_mask, old_mask in zip((info.lowered, info.raised, info.saturated), old[2]):
            assert torch.equal(new_mask, old_mask)
        assert torch.equal(info.offset_before, old[3]) and torch.equal(info.offset_after, old[4])
        if seed == 2 and saturate == "reference":
            assert info.saturated.any()
        if seed == 1:
            assert info.lowered.any() and info.raised.any(), "the fixture must move neurons both ways"
        moved_fractions.append(float((info.v0 != 0.5).double().mean()))
    # both replay paths run: a few neurons moved (gathered) and most moved (whole window replayed)
    assert min(moved_fractions) < 0.5
    if saturate == "reference":
        assert max(moved_fractions) > 0.5

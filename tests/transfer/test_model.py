import pytest
import torch
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.models import PAPER_CFG, TransferVGGSNN
from sj_transfer.train import RandomCropFrames, TransferModel
from spikingjelly.activation_based import functional, layer, surrogate

TINY = (8, "P", 8, "P")


def _tiny(**kw):
    torch.manual_seed(0)
    return TransferVGGSNN(4, image_size=12, cfg=TINY, **kw)


@pytest.mark.compat
def test_paper_network_shapes_and_neurons(one_thread):
    net = TransferVGGSNN(101)  # the paper's configuration: 48 -> 3, tap [B, 512, 6, 6]
    assert net.feature_dim == 512 * 3 * 3
    lifs = [m for m in net.modules() if hasattr(m, "v_threshold")]
    assert len(lifs) == sum(v != "P" for v in PAPER_CFG) == 8
    for n in lifs:
        assert n.v_threshold == 0.5 and n.v_reset == 0.0 and n.tau == 2.0 and n.detach_reset and n.decay_input
        sg = n.surrogate_function  # QGateGrad: SpikingJelly's own class, not a subclass
        assert type(sg) is surrogate.PiecewiseQuadratic and sg.alpha == 2.0 and n.step_mode == "m"
    logits, feat = net.forward_features(torch.rand(1, 2, 2, 48, 48), "static")
    assert logits.shape == (1, 2, 101) and feat.shape == (1, 2, 512, 6, 6)
    assert any(isinstance(m, layer.SeqToANNContainer) for m in net.modules())


@pytest.mark.compat
def test_tap_is_membrane_after_reset_and_reset_net_works():
    net = _tiny()
    x = torch.rand(5, 3, 2, 12, 12) * 3
    _, v = net.forward_features(x)
    spikes = net.features(x)  # second run without reset: state carries over ...
    functional.reset_net(net)
    _, v2 = net.forward_features(x)
    torch.testing.assert_close(v, v2)  # ... and reset_net removes it
    assert (v < 0.5).all()  # after the hard reset a potential is below the threshold
    assert spikes.shape == (5, 3, 8, 3, 3)


@pytest.mark.compat
def test_bad_input_errors():
    net = _tiny(static_head=False)
    with pytest.raises(ValueError, match=r"\[T, B, 2, H, W\]"):
        net(torch.rand(3, 2, 12, 12))
    with pytest.raises(ValueError, match="12"):
        net(torch.rand(2, 3, 2, 16, 16))
    with pytest.raises(ValueError, match="static_head=False"):
        net.forward_features(torch.rand(2, 3, 2, 12, 12), "static")
    with pytest.raises(TypeError, match="forward_features"):
        TransferModel(torch.nn.Linear(2, 2), DomainTransferLoss(2))


@pytest.mark.compat
def test_wrapper_gradients_reach_both_heads_features_and_coefficients():
    T = 4
    model = TransferModel(_tiny(), DomainTransferLoss(T))
    g = torch.Generator().manual_seed(1)
    xs, xe = torch.rand(T, 6, 2, 12, 12, generator=g) * 2, torch.rand(T, 6, 2, 12, 12, generator=g) * 2
    y = torch.randint(0, 4, (6,), generator=g)
    out = model(xs, xe, y)
    out.loss.backward()
    net = model.net
    for name, p in [
        ("coefficients", model.loss.coefficients),
        ("static head", net.static_head[1].weight),
        ("event head", net.event_head[1].weight),
        ("first conv", net.features[0][0].weight),
    ]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert out.event_logits.shape == (T, 6, 4)
    # event-only forward (evaluation) gives the same event logits as the two-branch one: no leak
    with torch.no_grad():
        model.eval()
        a = model(None, xe).event_logits
        b = model(xs, xe, y).event_logits
    torch.testing.assert_close(a, b)


@pytest.mark.compat
def test_random_crop_frames_same_offset_for_all_frames():
    x = torch.arange(2 * 3 * 1 * 6 * 6, dtype=torch.float32).view(2, 3, 1, 6, 6) + 1
    out = RandomCropFrames(2, torch.Generator().manual_seed(0))(x)
    assert out.shape == x.shape
    for b in range(3):
        # the same crop of every frame: the (nonzero) difference between frames is constant where defined
        d = out[1, b] - out[0, b]
        mask = (out[0, b] > 0) & (out[1, b] > 0)
        assert torch.all(d[mask] == 108.0)


@pytest.mark.compat
def test_event_bn_stats_keeps_running_statistics_of_the_event_pass_only():
    T, B = 2, 4
    torch.manual_seed(0)
    static, event = torch.rand(T, B, 2, 12, 12) * 5.0, torch.rand(T, B, 2, 12, 12)
    y = torch.randint(0, 4, (B,))
    both = TransferModel(_tiny(), DomainTransferLoss(T))
    only = TransferModel(_tiny(), DomainTransferLoss(T), event_bn_stats=True)
    ref = TransferModel(_tiny(), DomainTransferLoss(T), baseline=True)
    only.load_state_dict(both.state_dict())
    ref.load_state_dict(both.state_dict())
    for m in (both, only, ref):
        m(static, event, y)

    def bn(m):
        return next(x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))

    mean = {k: bn(m).running_mean for k, m in (("both", both), ("only", only), ("ref", ref))}
    assert torch.allclose(mean["only"], mean["ref"])  # as if only the event pass had run
    assert not torch.allclose(mean["both"], mean["ref"])  # the reference mixes in the static pass
    assert bn(only).momentum == 0.1 and bn(only).track_running_stats
    # every BatchNorm buffer, the batch count included, exactly as after the event pass alone
    for a, b in zip(only.net.buffers(), ref.net.buffers()):
        assert torch.equal(a, b)
    assert int(bn(only).num_batches_tracked) == 1 and int(bn(both).num_batches_tracked) == 2


@pytest.mark.compat
def test_event_bn_stats_with_a_cumulative_average_batchnorm():
    """momentum=None BatchNorm averages over num_batches_tracked batches: the static passes must not count
    (issue 24 item 10: the momentum-0 trick still advanced the count)."""
    T, B = 2, 4
    torch.manual_seed(0)
    only = TransferModel(_tiny(), DomainTransferLoss(T), event_bn_stats=True)
    ref = TransferModel(_tiny(), DomainTransferLoss(T), baseline=True)
    ref.load_state_dict(only.state_dict())
    for m in (*only.modules(), *ref.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    for step in range(3):
        static, event = torch.rand(T, B, 2, 12, 12) * 5.0, torch.rand(T, B, 2, 12, 12) + step
        y = torch.randint(0, 4, (B,))
        only(static, event, y).loss.backward()  # the buffers the backward pass saved are intact
        ref(static, event, y)
    for (name, a), b in zip(only.net.named_buffers(), ref.net.buffers()):
        assert torch.equal(a, b), name

"""The reference's remaining options (issue 11): shared head, BN per time step, no weight decay on 1-D
parameters, lr scaled by batch / 1024, class-balanced sampling with replacement, DVS-DA augmentation;
their config keys (defaults = earlier behaviour, reference values in the paper configs)."""

import numpy as np
import pytest
import torch
from sj_common.config import UsageError
from sj_common.data import ClassBalancedSampler
from sj_common.engine import TrainConfig
from sj_common.engine.loop import _optimizer
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.models import TransferVGGSNN
from sj_transfer.recipe import RECIPE
from sj_transfer.train import FlipRotateFrames, TransferModel
from spikingjelly.activation_based import functional

TINY = (8, "P", 8, "P")


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


def _tiny(**kw):
    torch.manual_seed(0)
    return TransferVGGSNN(4, image_size=12, cfg=TINY, **kw)


def test_shared_head_one_head_trained_by_both_branches():
    net = _tiny(shared_head=True)
    assert net.static_head is None and net.shared_head
    x = torch.rand(3, 2, 2, 12, 12)
    functional.reset_net(net)
    a = net(x, "static")
    functional.reset_net(net)
    torch.testing.assert_close(a, net(x, "event"))  # one head: same input, same logits
    # the drop-in loss with one head: both branches' CE reach the one head's weights
    loss = DomainTransferLoss(3)
    model = TransferModel(net, loss)
    y = torch.tensor([0, 1])
    static = torch.rand(3, 2, 2, 12, 12)
    out = model(static, torch.rand(3, 2, 2, 12, 12) * 2, y)
    out.loss.backward()
    g_both = net.event_head[1].weight.grad.clone()
    net.zero_grad()
    # the static CE alone (event logits detached) still moves the shared head
    functional.reset_net(net)
    s_logits, s_feat = net.forward_features(static, "static")
    parts = loss(s_logits, s_logits.detach(), s_feat, s_feat.detach(), y)
    parts.loss.backward()
    assert net.event_head[1].weight.grad.abs().sum() > 0 and g_both.abs().sum() > 0
    # two heads by default; state-dict keys of the shared net are a subset
    assert _tiny().static_head is not None
    assert set(net.state_dict()) < set(_tiny().state_dict())


def test_bn_per_step_normalises_each_step_over_the_batch():
    net = _tiny(bn_per_step=True)
    conv_bn = net.features[0]
    torch.nn.init.dirac_(conv_bn[0].weight[:2])  # channels 0/1 copy the input's polarities
    x = torch.zeros(2, 4, 2, 12, 12)
    x[0] = torch.rand(4, 2, 12, 12)
    x[1] = torch.rand(4, 2, 12, 12) * 4 + 8  # step 1: another mean and spread
    y = conv_bn(x)  # training mode: batch statistics
    for t in range(2):  # each step alone has mean 0 and (biased) variance 1 per channel
        m = y[t, :, :2].mean(dim=(0, 2, 3))
        v = y[t, :, :2].var(dim=(0, 2, 3), unbiased=False)
        torch.testing.assert_close(m, torch.zeros(2), atol=1e-5, rtol=0)
        torch.testing.assert_close(v, torch.ones(2), atol=1e-3, rtol=0)
    merged = _tiny().features[0]
    merged.load_state_dict(conv_bn.state_dict())  # same parameters and keys
    z = merged(x)
    assert abs(float(z[0, :, :2].mean().detach())) > 0.5  # over T * B: step 0 is far below the joint mean
    assert conv_bn[1].num_batches_tracked == 2  # running statistics updated once per step


def test_no_weight_decay_on_1d_and_lr_scaled_by_batch():
    model = TransferModel(_tiny(), DomainTransferLoss(3))
    params = [p for p in model.parameters() if p.requires_grad]
    cfg = TrainConfig(out="x", lr=2**-6, batch_size=32, weight_decay=0.5)
    opt = _optimizer(params, cfg)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.5
    assert opt.param_groups[0]["lr"] == 2**-6
    cfg = TrainConfig(
        out="x", lr=2**-6, batch_size=32, weight_decay=0.5, no_weight_decay_on="1d", lr_reference_batch=1024
    )
    opt = _optimizer(params, cfg, world=2)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.5 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    no = {names[id(p)] for p in no_decay["params"]}
    assert "loss.coefficients" in no and any(n.endswith(".bias") for n in no)
    assert "net.features.0.1.weight" in no  # a BatchNorm weight
    assert len(decay["params"]) + len(no_decay["params"]) == len(params)
    assert decay["lr"] == no_decay["lr"] == 2**-6 * 32 * 2 / 1024  # 2^-10 exactly
    with pytest.raises(ValueError, match="no_weight_decay_on"):
        TrainConfig(out="x", no_weight_decay_on="all")
    with pytest.raises(ValueError, match="lr_reference_batch"):
        TrainConfig(out="x", lr_reference_batch=0)


@pytest.mark.slow  # spawns worker processes / builds every network: over a second
def test_class_balanced_sampling_is_a_sampler_that_allows_workers(frame_cache):
    """Issue 24, item 8: balanced sampling was a data set wrapper counting accesses (workers: 0 only)."""
    sets = {"data.cache_dir": frame_cache, "data.train_ratio": 0.02, "data.balanced_sampling": True}
    for baseline in (False, True):
        cfg = RECIPE.config(
            "mnist5k",
            {**sets, "data.samples_per_epoch": 384, "train.workers": 2, "method.baseline": baseline},
        )
        data = RECIPE.build_data(cfg)
        s = data.train_sampler
        assert isinstance(s, ClassBalancedSampler) and s.num_items == 384 and s.seed == cfg.train.seed
        assert len(data.train) == s.num_targets == 70  # the items themselves: 7 event samples per class
        assert np.array_equal(np.bincount(data.train.targets), [7] * 10)
    assert RECIPE.build_data(RECIPE.config("mnist5k", {"data.cache_dir": frame_cache})).train_sampler is None


def test_flip_rotate_frames_one_draw_per_sample():
    x = torch.rand(1, 6, 2, 9, 9).expand(3, -1, -1, -1, -1)  # 3 identical frames per sample
    g = torch.Generator().manual_seed(0)
    flips = (torch.rand(6, generator=g) < 0.5).tolist()
    y = FlipRotateFrames(degrees=0.0, generator=torch.Generator().manual_seed(0))(x)
    for b, f in enumerate(flips):
        torch.testing.assert_close(y[:, b], x[:, b].flip(-1) if f else x[:, b])
    assert 0 < sum(flips) < 6
    z = FlipRotateFrames(15.0, generator=torch.Generator().manual_seed(1))(x)
    assert z.shape == x.shape
    torch.testing.assert_close(z[0], z[2])  # all frames of a sample share the draw
    centre = torch.zeros(1, 8, 1, 9, 9)
    centre[..., 4, 4] = 1.0  # the centre pixel stays put under any flip and rotation
    torch.testing.assert_close(FlipRotateFrames(15.0)(centre), centre)
    with pytest.raises(ValueError, match="degrees"):
        FlipRotateFrames(200)


def test_config_keys_defaults_and_paper_values():
    cfg = RECIPE.config("mnist5k")
    d, m, t = cfg.data, cfg.model, cfg.train
    assert (d.preset, d.balanced_sampling, d.samples_per_epoch, d.dvs_augment) == (
        "default",
        False,
        None,
        False,
    )
    assert (m.shared_head, m.bn_per_step) == (True, False)  # the embedded default: one shared head (issue 19)
    assert (t.no_weight_decay_on, t.lr_reference_batch, t.lr) == ("none", None, 0.005)
    for name in ("ncaltech101", "ncaltech101_r0.1", "ncaltech101_alpha0"):
        c = RECIPE.config(name)
        assert c.model.bn_per_step and not c.model.shared_head and c.data.balanced_sampling
        assert not c.data.dvs_augment  # N-Caltech101: the crop alone (spec 3)
        assert c.train.no_weight_decay_on == "1d" and c.train.lr_reference_batch == 1024
        assert c.train.lr * c.train.batch_size / c.train.lr_reference_batch == 0.0005859375  # as before
        assert c.train.workers == 8  # balanced sampling is a sampler: workers may decode the events
    for name in ("cifar10dvs", "cifar10dvs_r0.5"):
        c = RECIPE.config(name)
        assert c.data.dvs_augment and c.model.bn_per_step and c.train.no_weight_decay_on == "1d"
        assert c.train.workers == 8
    with pytest.raises((UsageError, ValueError), match="samples_per_epoch"):
        RECIPE.config("mnist5k", {"data.samples_per_epoch": 10})
    with pytest.raises((UsageError, ValueError), match="preset"):
        RECIPE.config("mnist5k", {"data.preset": "clean"})
    with pytest.raises((UsageError, ValueError), match="shared_heads"):
        RECIPE.config("mnist5k", {"model.shared_heads": True})


def test_static_pretrain_epochs_is_checked_and_maps_static_batches():
    """The pre-train-then-fine-tune alternative: refused with --baseline or outside 1..epochs-1; its step
    trains the static frames in the event input's place and leaves evaluation batches alone."""
    import pytest
    import torch
    from sj_common.config import ConfigError
    from sj_transfer.recipe import RECIPE
    from sj_transfer.train import static_pretrain_step

    for bad in ({"method.static_pretrain_epochs": 10}, {"method.static_pretrain_epochs": -1}):
        with pytest.raises(ConfigError, match="method.static_pretrain_epochs: expected 0 .off., or 1 to"):
            RECIPE.config("mnist5k_study", bad, out="x")
    with pytest.raises(ConfigError, match="with method.baseline: true"):
        RECIPE.config("mnist5k_study", {"method.static_pretrain_epochs": 2, "method.baseline": True}, out="x")
    assert (
        RECIPE.config(
            "mnist5k_study", {"method.static_pretrain_epochs": 9}, out="x"
        ).method.static_pretrain_epochs
        == 9
    )
    seen = []
    step = static_pretrain_step(lambda model, batch, ctx: seen.append(batch))
    s, e, y = torch.zeros(1), torch.ones(1), torch.tensor([3])

    class Ctx:
        train = True

    step(None, (s, e, y), Ctx)
    Ctx.train = False
    step(None, (e, y), Ctx)
    assert seen[0][0] is s and seen[0][1] is y and seen[1][0] is e

"""TrainConfig.sync_bn: SyncBatchNorm under torchrun, SpikingJelly's multi-step BatchNorm kept multi-step.

The synchronisation itself needs several GPUs (torch's SyncBatchNorm refuses CPU tensors); on CPU these
tests check the conversion (same tensors, same state_dict keys, same outputs as the BatchNorm it replaces:
outside DDP torch's SyncBatchNorm is an ordinary BatchNorm) and the engine's policy.
"""

import copy

import pytest
import torch
from sj_common.compat import lif_node
from sj_common.engine import TrainConfig, fit
from sj_common.engine import distributed as D
from sj_common.engine.sync_bn import SpikingSyncBatchNorm, apply_sync_bn, convert_sync_batchnorm
from spikingjelly.activation_based import functional, layer
from torch import nn
from torch.utils.data import TensorDataset

pytestmark = pytest.mark.compat

T, B = 3, 4


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, step_mode="m"),
        layer.BatchNorm2d(4, step_mode="m"),  # SpikingJelly's: [T, B, C, H, W] over T * B
        lif_node(),
        layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=None)),
        lif_node(),
        layer.Flatten(step_mode="m"),
        layer.Linear(4 * 6 * 6, 3, step_mode="m"),
    )


def test_conversion_keeps_step_modes_tensors_keys_and_outputs():
    net = _net()
    before = copy.deepcopy(net)
    params = {n: p for n, p in net.named_parameters()}
    assert convert_sync_batchnorm(net) is net
    syncs = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(syncs) == 2 and all(isinstance(m, SpikingSyncBatchNorm) for m in syncs)
    assert [m.step_mode for m in syncs] == ["m", "s"] and syncs[1].momentum is None
    assert set(net.state_dict()) == set(before.state_dict())  # checkpoints load either way
    assert all(
        p is params[n] for n, p in net.named_parameters()
    )  # an optimizer built before still trains them
    x = torch.rand(T, B, 2, 6, 6) * 2
    for train in (True, False):  # batch statistics, then the running ones (updated identically)
        net.train(train)
        before.train(train)
        for _ in range(2):
            torch.testing.assert_close(net(x), before(x), rtol=0, atol=0)
            functional.reset_net(net)
            functional.reset_net(before)
    for a, b in zip(net.buffers(), before.buffers()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"x: expected a sequence \[T, B, C, \.\.\.\]"):
        syncs[0](torch.rand(B, 4))
    with pytest.raises(ValueError, match="net: expected a network holding BatchNorm layers"):
        convert_sync_batchnorm(nn.BatchNorm2d(3))


def test_torch_conversion_alone_breaks_multistep_batchnorm():
    """Why the converter is ours: torch's makes SpikingJelly's multi-step BatchNorm single-step."""
    sj = nn.Sequential(layer.BatchNorm2d(4, step_mode="m"))
    net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(sj))
    with pytest.raises(RuntimeError):
        net(torch.rand(T, 5, 4, 6, 6))  # [T, B, C, H, W] read with B as the channel axis
    x = torch.rand(T, 4, 4, 6, 6) * torch.arange(1.0, 5.0).view(1, 1, 4, 1, 1)
    assert not torch.allclose(net(x), sj(x))  # B == C: silently normalised over the wrong axis
    torch.testing.assert_close(convert_sync_batchnorm(copy.deepcopy(sj))(x), sj(x), rtol=0, atol=0)


def test_engine_policy_single_process_warns_distributed_cpu_is_refused():
    net = _net()
    assert apply_sync_bn(net, False, True, torch.device("cpu")) is net  # off: nothing happens
    with pytest.warns(UserWarning, match="sync_bn: a single process has nothing to synchronise"):
        assert apply_sync_bn(net, True, False, torch.device("cpu")) is net
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in net.modules())
    with pytest.raises(ValueError, match="sync_bn: torch's SyncBatchNorm synchronises GPU tensors only"):
        apply_sync_bn(net, True, True, torch.device("cpu"))
    apply_sync_bn(
        net, True, True, torch.device("cuda", 0)
    )  # the torchrun GPU case (no GPU needed to convert)
    assert sum(isinstance(m, SpikingSyncBatchNorm) for m in net.modules()) == 2
    with pytest.raises(ValueError, match="TrainConfig.sync_bn: expected true or false"):
        TrainConfig(out="x", sync_bn="yes")


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, T, 2, 6, 6, generator=g)
    return TensorDataset(x, torch.arange(8) % 3)


def test_fit_with_sync_bn(tmp_path, monkeypatch, one_thread):
    from sj_common.engine import classification_step

    cfg = dict(epochs=1, batch_size=4, progress=False, tensorboard=False, sync_bn=True)
    with pytest.warns(UserWarning, match="sync_bn"):  # one process: trained as without it
        res = fit(
            _net(),
            _data(),
            config=TrainConfig(out=str(tmp_path / "a"), **cfg),
            step=classification_step(True),
        )
    plain = fit(
        _net(), _data(), config=TrainConfig(out=str(tmp_path / "b"), **{**cfg, "sync_bn": False}),
        step=classification_step(True),
    )  # fmt: skip
    assert res["history"][0]["train_loss"] == plain["history"][0]["train_loss"]
    # a distributed CPU run is refused before any training (as if under torchrun with gloo)
    monkeypatch.setattr(D, "init_distributed", lambda device: True)
    with pytest.raises(ValueError, match="sync_bn"):
        fit(
            _net(),
            _data(),
            config=TrainConfig(out=str(tmp_path / "c"), **cfg),
            step=classification_step(True),
        )
    assert not (tmp_path / "c" / "checkpoint.pt").exists()

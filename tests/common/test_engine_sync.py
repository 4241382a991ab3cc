"""The engine's training step reads nothing back to the host (issue #13 item 3): tensor -> Python
conversions are counted between consecutive step-function calls, i.e. over whole optimizer steps
(forward, hooks, backward, optimizer, meter, progress bar, TensorBoard)."""

from __future__ import annotations

import sys

import pytest
import torch
from sj_common.compat import lif_node
from sj_common.engine import LOG_EVERY_STEPS, TrainConfig, classification_step, fit, seed_everything
from spikingjelly.activation_based import layer
from torch import nn
from torch.utils.data import TensorDataset

T, FEATURES, CLASSES, STEPS = 3, 8, 3, 12
CONVERSIONS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


def make_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        layer.Linear(FEATURES, 16, step_mode="m"),
        lif_node(),
        layer.Dropout(0.2, step_mode="m"),
        layer.Linear(16, CLASSES, step_mode="m"),
    )


class Counter:
    """Patches torch.Tensor's conversions to Python; ``count`` grows while ``on``."""

    def __init__(self, monkeypatch) -> None:
        self.on, self.count, self.seen = False, 0, []
        for name in CONVERSIONS:
            original = getattr(torch.Tensor, name)

            def wrapper(t, *a, _original=original, _name=name, **k):
                # torch.optim reads its CPU step counters (a host tensor, no device sync): not counted
                if self.on and "torch/optim" not in sys._getframe(1).f_code.co_filename.replace("\\", "/"):
                    self.count += 1
                    self.seen.append(_name)
                return _original(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapper)


def counting_step(counter: Counter, calls: list[int]):
    inner = classification_step(True, "tet")

    def step(model, batch, ctx):
        calls.append(counter.count)  # conversions so far, at the start of every step
        counter.on = 2 <= len(calls) <= STEPS  # count over steps 2..STEPS-1 (whole steps between calls)
        return inner(model, batch, ctx)

    return step


@pytest.mark.compat
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_training_step_has_no_host_sync(tmp_path, monkeypatch, optimizer):
    assert STEPS < LOG_EVERY_STEPS  # no logging interval falls inside the counted steps
    counter, calls = Counter(monkeypatch), []

    def l2(model, batch, out, ctx):  # a loss hook: its logged term must not be read back either
        return {"l2": 1e-4 * sum((p**2).sum() for p in model.parameters())}

    config = TrainConfig(
        out=str(tmp_path / "run"),
        epochs=1,
        batch_size=4,
        lr=0.01,
        optimizer=optimizer,
        grad_clip=1.0,
        progress=True,
        tensorboard=True,
        device="cpu",
    )
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4 * STEPS, T, FEATURES, generator=g)
    data = TensorDataset(x, x[:, :, :3].mean(1).argmax(1))
    fit(make_model(), data, config=config, step=counting_step(counter, calls), loss_hooks=[l2])
    assert len(calls) == STEPS
    per_step = [b - a for a, b in zip(calls[1:], calls[2:])]  # steps 2 .. STEPS-1
    assert per_step == [0] * (STEPS - 2), (per_step, counter.seen[:10])
    assert counter.count > 0  # the counter works: the epoch end (after the counted steps) reads back

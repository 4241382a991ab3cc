"""The engine's parts: one TET implementation, progress output, evaluate for a static ANN, targets
checked without a per-step sync."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sj_common.engine import TrainConfig, classification_step, evaluate, fit, seed_everything, tet_loss
from torch import nn
from torch.utils.data import TensorDataset


@pytest.mark.compat
def test_one_tet_implementation():
    import sj_transfer.tet

    assert sj_transfer.tet.tet_loss is tet_loss
    # logits whose per-step cross-entropies are known: step 0 uniform over 2 classes (ln 2), step 1
    # uniform over 4 (ln 4); the TET loss is their mean, for the engine's step and tet_loss alike
    out = torch.zeros(2, 1, 4)
    out[0, 0, 2:] = -torch.inf
    y = torch.tensor([0])
    expected = (torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(4.0))) / 2
    torch.testing.assert_close(tet_loss(out, y, lam=0.0), expected)
    step = classification_step(True, "tet")
    ctx = type("Ctx", (), {"train": True, "config": TrainConfig(out=".")})()
    res = step(lambda x: out, (torch.zeros(1, 2, 3), y), ctx)
    torch.testing.assert_close(res.loss, expected)
    # with lam and weights: (1 - lam) w_t CE_t + lam w_t MSE_t, mean over t
    w = torch.tensor([1.0, 0.5])
    finite = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # [T=2, B=1, K=2]
    ce = torch.stack([F.cross_entropy(finite[t], y) for t in range(2)])
    mse = (finite - 0.5).square().mean(dim=(1, 2))
    torch.testing.assert_close(tet_loss(finite, y, w, lam=0.25), ((0.75 * ce + 0.25 * mse) * w).mean())


@pytest.mark.compat
def test_progress_bar_and_one_line_per_epoch(tmp_path, capsys):
    seed_everything(0)
    model = nn.Linear(4, 3)
    x = torch.rand(16, 4)
    data = TensorDataset(x, x[:, :3].argmax(1))
    config = TrainConfig(out=str(tmp_path / "p"), epochs=3, batch_size=4, tensorboard=False, progress=True)
    fit(model, data, data, config=config)
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("train_loss=" in line and "val_acc1=" in line for line in lines)
    assert "epoch 1/3" in err  # the tqdm bar (stderr)
    config.progress, config.out = False, str(tmp_path / "q")
    fit(nn.Linear(4, 3), data, config=config)
    out, err = capsys.readouterr()
    assert "epoch 1/3" not in out + err


@pytest.mark.compat
def test_evaluate_a_static_ann_with_max_batches():
    # logits = inputs: the first 4 samples are right, the last 4 wrong
    logits = torch.eye(3)[[0, 1, 2, 0, 0, 0, 0, 0]]
    target = torch.tensor([0, 1, 2, 0, 1, 1, 2, 2])
    data = TensorDataset(logits, target)
    assert evaluate(nn.Identity(), data, batch_size=4)["acc1"] == 50.0
    first = evaluate(nn.Identity(), data, batch_size=4, max_batches=1)
    assert (first["n"], first["acc1"]) == (4, 100.0)
    with pytest.raises(ValueError, match="max_batches"):
        evaluate(nn.Identity(), data, max_batches=0)


@pytest.mark.compat
def test_out_of_range_targets_are_refused(tmp_path):
    x = torch.rand(12, 4)
    y = torch.zeros(12, dtype=torch.long)
    config = TrainConfig(out=str(tmp_path / "t"), epochs=1, batch_size=4, progress=False, tensorboard=False)
    y[0] = 5  # first batch: checked at once
    with pytest.raises(
        ValueError,
        match=r"^target \(class indices of the training batches\): .*\[0, 2\].*got values in \[0, 5\]",
    ):
        fit(nn.Linear(4, 3), TensorDataset(x, y), config=config, step=OnlyLogits())
    y[0], y[-1] = 0, -1  # a later batch: the epoch-end check of the device-side min/max
    with pytest.raises(
        ValueError, match=r"^target: expected class indices in \[0, 2\].*got values in \[-1, 0\]"
    ):
        fit(nn.Linear(4, 3), TensorDataset(x, y), config=config, step=OnlyLogits())


class OnlyLogits:
    """A step whose loss does not index by the target (so only the engine's range check can see it)."""

    def __call__(self, model, batch, ctx):
        from sj_common.engine import StepOutput

        x, y = batch
        logits = model(x)
        return StepOutput(loss=logits.square().mean(), logits=logits, target=y)

"""Checkpoints that never run code, unusable checkpoints refused before training, non-finite weights never
saved, atomic writes that clean up, and the resume policy (issue #10 items 1, 2, 3, 7)."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch
from sj_common.compat import lif_node
from sj_common.engine import (
    RESUME_MAY_CHANGE,
    CheckpointError,
    TrainConfig,
    atomic_save,
    classification_step,
    fit,
    load_checkpoint,
    seed_everything,
)
from spikingjelly.activation_based import layer
from torch import nn
from torch.utils.data import TensorDataset

T, FEATURES, CLASSES = 2, 6, 3


def make_model(hidden: int = 8) -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        layer.Linear(FEATURES, hidden, step_mode="m"),
        lif_node(),
        layer.Linear(hidden, CLASSES, step_mode="m"),
    )


def make_data(n: int = 24) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.rand(n, T, FEATURES, generator=g)
    return TensorDataset(x, x[:, :, :3].mean(1).argmax(1))


def cfg(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / name), epochs=1, batch_size=8, lr=0.05, optimizer="sgd", progress=False)
    base.update(tensorboard=False, **kw)
    return TrainConfig(**base)


class CountingStep:
    """The engine's step, counting its calls: 0 calls = nothing was trained."""

    def __init__(self) -> None:
        self.calls, self.step = 0, classification_step(True)

    def __call__(self, model, batch, ctx):
        self.calls += 1
        return self.step(model, batch, ctx)


class Payload:
    """What a malicious .pt holds: unpickling it runs code (here: writes a marker file)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.mark.compat
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload(marker)}, evil)
    # the payload is real: an unsafe load (what the old load_checkpoint did) runs it
    torch.load(evil, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()

    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load.*exec"):
        load_checkpoint(evil, make_model())
    assert not marker.exists()

    # left as checkpoint.pt for --resume: refused before any training
    c = cfg(tmp_path, "resume", resume=True)
    (tmp_path / "resume").mkdir()
    torch.save({"model": Payload(marker)}, tmp_path / "resume" / "checkpoint.pt")
    step = CountingStep()
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: refused to load"):
        fit(make_model(), make_data(), config=c, step=step)
    assert not marker.exists() and step.calls == 0


@pytest.mark.compat
def test_engine_checkpoints_load_with_weights_only(tmp_path):
    c = cfg(tmp_path, checkpoint_every_steps=1)
    fit(make_model(), make_data(), config=c, step=classification_step(True))
    for name in ("checkpoint.pt", "best.pt"):
        path = tmp_path / "run" / name
        if path.exists():
            torch.load(path, weights_only=True)  # numpy/python RNG states are plain data
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    rng = ck["per_rank"][0]["rng"]
    assert isinstance(rng["python"], tuple) and isinstance(rng["numpy"]["keys"], torch.Tensor)


@pytest.mark.compat
@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "directory", "best.pt"])
def test_unusable_checkpoint_named_before_training(tmp_path, kind):
    good = cfg(tmp_path, "good")
    fit(make_model(), make_data(), config=good, step=classification_step(True))
    src = tmp_path / "good" / "checkpoint.pt"
    run = tmp_path / "bad"
    run.mkdir()
    target = run / "checkpoint.pt"
    if kind == "truncated":
        target.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "garbage":
        target.write_bytes(bytes(range(256)) * 8)
    elif kind == "directory":
        target.mkdir()
    else:  # weights only: a best.pt copied over cannot be resumed
        torch.save({"model": make_model().state_dict(), "epoch": 1, "val_acc1": 0.0}, target)
    step = CountingStep()
    with pytest.raises(CheckpointError) as err:
        fit(make_model(), make_data(), config=cfg(tmp_path, "bad", resume=True), step=step)
    assert str(target) in str(err.value)
    assert step.calls == 0, "the run trained before refusing the checkpoint"
    expected = {
        "truncated": "truncated",
        "empty": "empty",
        "garbage": "corrupt",
        "directory": "directory",
        "best.pt": "not an engine training checkpoint",
    }[kind]
    assert expected in str(err.value)


@pytest.mark.compat
def test_directory_in_place_of_an_output_is_refused_before_training(tmp_path):
    (tmp_path / "run" / "best.pt").mkdir(parents=True)
    step = CountingStep()
    with pytest.raises(CheckpointError, match=r"best\.pt: expected a file path"):
        fit(make_model(), make_data(), make_data(), config=cfg(tmp_path), step=step)
    assert step.calls == 0


@pytest.mark.compat
def test_checkpoint_of_another_model_names_keys_and_shapes(tmp_path):
    fit(make_model(hidden=8), make_data(), config=cfg(tmp_path), step=classification_step(True))
    path = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint\.pt: its weights do not fit.*0\.weight \[8, 6\] in the file vs \[5, 6\]",
    ):
        load_checkpoint(path, make_model(hidden=5))
    other = nn.Sequential(nn.Linear(FEATURES, CLASSES))
    with pytest.raises(
        CheckpointError,
        match=r"does not have, first \['2\.weight', '2\.bias'\].*0\.weight \[8, 6\] in the file vs \[3, 6\]",
    ):
        load_checkpoint(path, other)
    step = CountingStep()
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: its weights do not fit"):
        fit(make_model(hidden=5), make_data(), config=cfg(tmp_path, resume=True, epochs=2), step=step)
    assert step.calls == 0


@pytest.mark.compat
def test_nan_from_a_huge_lr_is_never_saved(tmp_path):
    c = cfg(tmp_path, epochs=2, lr=1e38, momentum=0.0, scheduler="none", checkpoint_every_steps=1)
    with pytest.raises(
        FloatingPointError, match=r"not finite.*step (\d+).*checkpoint\.pt holds the last finite"
    ) as err:
        fit(make_model(), make_data(48), config=c, step=classification_step(True, "tet"))
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    bad_step, kept = (int(v) for v in re.search(r"step (\d+).*after step (\d+)", str(err.value)).groups())
    assert ck["global_step"] == kept == bad_step - 1  # the state just before the first non-finite step
    assert not list((tmp_path / "run").glob("*.tmp"))


def nan_weights_at(step: int):
    """A loss hook that corrupts the weights at one step while that step's loss stays finite."""

    def hook(model, batch, out, ctx):
        if ctx.step == step:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return torch.zeros((), device=ctx.device)

    return hook


@pytest.mark.compat
def test_non_finite_weights_with_a_finite_loss_are_never_saved(tmp_path):
    c = cfg(tmp_path, epochs=2, checkpoint_every_steps=2)
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite weights after epoch 1, step 4.*\['model\.0\.weight'.*after step 2\)",
    ):
        fit(
            make_model(),
            make_data(48),
            config=c,
            step=classification_step(True),
            loss_hooks=[nan_weights_at(2)],
        )
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["global_step"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values())


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full (simulated)")


@pytest.mark.compat
def test_atomic_save_failure_removes_temp_and_names_path(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_save({"a": torch.ones(2)}, path)
    with pytest.raises(OSError, match=r"checkpoint\.pt.*disk full \(simulated\)"):
        atomic_save({"a": torch.zeros(1000), "b": Unpicklable()}, path)
    assert not list(tmp_path.glob("*.tmp")), "a failed write left its temporary file"
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))  # previous content kept


@pytest.mark.compat
def test_resume_policy_refuses_trajectory_changes_and_records_allowed_ones(tmp_path):
    data = make_data()
    fit(make_model(), data, config=cfg(tmp_path, lr=0.05), step=classification_step(True))
    step = CountingStep()
    with pytest.raises(
        ValueError,
        match=r"checkpoint\.pt was trained with other settings.*'batch_size': \(8, 4\), 'lr': \(0\.05, 0\.01\)",
    ):
        fit(make_model(), data, config=cfg(tmp_path, lr=0.01, batch_size=4, resume=True, epochs=2), step=step)
    assert step.calls == 0
    r = fit(
        make_model(),
        data,
        config=cfg(tmp_path, resume=True, epochs=2, workers=0),
        step=classification_step(True),
    )
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["config"]["epochs"] == 2 and saved["config"]["lr"] == 0.05 and len(saved["history"]) == 2
    assert saved["resumes"] == r["resumes"] == [{"global_step": 3, "changed": {"epochs": [1, 2]}}]
    assert {"epochs", "out", "progress", "device"} <= RESUME_MAY_CHANGE
    assert not {"lr", "batch_size", "optimizer", "seed"} & RESUME_MAY_CHANGE


@pytest.mark.compat
def test_fit_leaves_no_global_state_changed(tmp_path):
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    seed_everything(7)
    expected = (random.random(), float(np.random.rand()), torch.rand(1))
    seed_everything(7)
    fit(make_model(), make_data(), config=cfg(tmp_path, deterministic=True), step=classification_step(True))
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    # fit's make_model seeded 0 before; what we draw now is what we would have drawn without fit
    seed_everything(7)
    fit_free = (random.random(), float(np.random.rand()), torch.rand(1))
    assert fit_free[:2] == expected[:2] and torch.equal(fit_free[2], expected[2])

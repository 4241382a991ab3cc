"""sj_common.engine on one CPU process: exact resume, seeded determinism, hooks, reset_net, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sj_common.compat import lif_node
from sj_common.engine import (
    StepOutput,
    TrainConfig,
    classification_step,
    evaluate,
    fit,
    load_checkpoint,
    seed_everything,
    unwrap,
)
from spikingjelly.activation_based import base, layer
from torch import nn
from torch.utils.data import TensorDataset

T, FEATURES, CLASSES = 3, 8, 3


class ResetSpy(base.MemoryModule):
    """Fails when it sees a second batch without a functional.reset_net in between."""

    def __init__(self) -> None:
        super().__init__()
        self.register_memory("calls", 0)

    def forward(self, x):
        assert self.calls == 0, "reset_net was not called between batches"
        self.calls += 1
        return x


def make_model(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(
        ResetSpy(),
        layer.Linear(FEATURES, 16, step_mode="m"),
        lif_node(),
        layer.Dropout(0.3, step_mode="m"),  # random masks must resume identically too
        layer.Linear(16, CLASSES, step_mode="m"),
    )


def make_data(n: int = 60, seed: int = 1) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, T, FEATURES, generator=g)
    y = (x[:, :, :3].mean(1).argmax(1)).long()
    return TensorDataset(x, y)


class Noisy(TensorDataset):
    """A random data transform drawn from the global RNGs: a resume must restore them too."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + 0.1 * torch.rand_like(x) + float(np.random.rand()), y


def cfg(tmp_path, name, **kw) -> TrainConfig:
    base_kw = dict(
        out=str(tmp_path / name), epochs=2, batch_size=8, lr=0.05, progress=False, tensorboard=False
    )
    base_kw.update(kw)
    return TrainConfig(**base_kw)


class Interrupt(Exception):
    pass


def raise_at(step: int):
    def hook(model, batch, out, ctx):
        if ctx.step == step:
            raise Interrupt(f"simulated crash at step {step}")
        return torch.zeros((), device=ctx.device)

    return hook


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}


STEP = classification_step(sequence_input=True, loss="tet")


@pytest.mark.compat
@pytest.mark.parametrize("every,crash", [(3, 10), (0, 8)], ids=["mid-epoch", "epoch-boundary"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, every, crash):
    data = Noisy(*make_data().tensors)
    full = make_model()
    r_full = fit(full, data, data, config=cfg(tmp_path, "full", optimizer="sgd", warmup_epochs=1), step=STEP)

    c = cfg(tmp_path, "run", optimizer="sgd", warmup_epochs=1, checkpoint_every_steps=every)
    with pytest.raises(Interrupt):
        fit(make_model(), data, data, config=c, step=STEP, loss_hooks=[raise_at(crash)])
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["global_step"] == (9 if every else 8) and ck["global_step"] < crash + 1
    assert not list((tmp_path / "run").glob("*.tmp")), "atomic save left a temporary file"

    resumed = make_model(seed=123)  # different init: everything must come from the checkpoint
    c.resume = True
    r_res = fit(resumed, data, data, config=c, step=STEP)
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert r_res["steps"] == r_full["steps"] == 16
    assert [h["train_loss"] for h in r_res["history"]] == [h["train_loss"] for h in r_full["history"]]
    assert r_res["best_val_acc1"] == r_full["best_val_acc1"]


@pytest.mark.compat
def test_seeded_runs_are_identical_and_seed_matters(tmp_path):
    data = make_data()
    m1, m2, m3 = make_model(), make_model(), make_model()
    fit(m1, data, config=cfg(tmp_path, "a", seed=5), step=STEP)
    fit(m2, data, config=cfg(tmp_path, "b", seed=5), step=STEP)
    fit(m3, data, config=cfg(tmp_path, "c", seed=6), step=STEP)
    w1, w2, w3 = weights(m1), weights(m2), weights(m3)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


@pytest.mark.compat
def test_loss_hooks_add_terms_and_are_logged(tmp_path):
    data = make_data()

    def l2(model, batch, out, ctx):
        return {"l2": 0.5 * sum((p**2).sum() for p in unwrap(model).parameters())}

    m_plain, m_hook = make_model(), make_model()
    fit(m_plain, data, config=cfg(tmp_path, "p", epochs=1), step=STEP)
    r = fit(m_hook, data, config=cfg(tmp_path, "h", epochs=1), step=STEP, loss_hooks=[l2])
    h = r["history"][0]
    assert h["train_loss_l2"] > 0
    assert h["train_loss_total"] == pytest.approx(h["train_loss"] + h["train_loss_l2"], rel=1e-5)
    # the hook's term changed the optimisation
    assert not torch.equal(weights(m_plain)["1.weight"], weights(m_hook)["1.weight"])


@pytest.mark.compat
def test_outputs_results_json_best_and_test(tmp_path, capsys):
    data = make_data()
    c = cfg(tmp_path, "out", epochs=2, tensorboard=True, max_steps_per_epoch=3)
    r = fit(make_model(), data, data, data, config=c, step=STEP, extra_results={"method": "unit"})
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    for key in (
        "best_val_acc1",
        "test_acc1",
        "test_acc5",
        "history",
        "wall_time_s",
        "config",
        "versions",
        "seed",
    ):
        assert key in saved and key in r
    assert saved["method"] == "unit" and saved["seed"] == 0 and saved["config"]["epochs"] == 2
    assert saved["config"]["amp"] is True and saved["amp"] is False  # AMP asked for, skipped on CPU
    assert {"torch", "spikingjelly", "numpy", "python"} <= saved["versions"].keys()
    assert saved["steps"] == 6 and len(saved["history"]) == 2  # max_steps_per_epoch honoured
    assert (out / "best.pt").is_file() and (out / "checkpoint.pt").is_file()
    assert list((out / "tb").glob("events.out.tfevents.*"))
    ck = load_checkpoint(out / "checkpoint.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "global_step", "per_rank"} <= ck.keys()
    assert {"python", "numpy", "torch"} <= ck["per_rank"][0]["rng"].keys()
    # the test accuracy is that of the best-val weights
    best = make_model(seed=9)
    load_checkpoint(out / "best.pt", best)
    ev = evaluate(best, data, step=STEP)
    assert ev["acc1"] == pytest.approx(r["test_acc1"])
    assert max(h["val_acc1"] for h in r["history"]) == pytest.approx(r["best_val_acc1"])
    assert "test_acc1" in capsys.readouterr().out  # the printed table


@pytest.mark.compat
def test_evaluate_counts_exactly():
    # logits are the inputs themselves: accuracy is known in advance
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0, -2.0]]).repeat(10, 1)
    target = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 5, 5])
    res = evaluate(
        nn.Identity(), TensorDataset(logits, target), step=classification_step(False), batch_size=3
    )
    assert res["n"] == 10
    assert res["acc1"] == pytest.approx(30.0)
    assert res["acc5"] == pytest.approx(80.0)
    from torch.utils.data import DataLoader

    res2 = evaluate(
        nn.Identity(),
        DataLoader(TensorDataset(logits, target), batch_size=4),
        step=classification_step(False),
    )
    assert (res2["n"], res2["acc1"], res2["acc5"]) == (10, res["acc1"], res["acc5"])


def test_scheduler_cosine_reaches_zero_and_warmup(tmp_path):
    data = make_data(16)
    r = fit(make_model(), data, config=cfg(tmp_path, "s", epochs=2, warmup_epochs=1, lr=0.1), step=STEP)
    assert r["history"][0]["lr"] == pytest.approx(0.1)  # end of warm-up
    assert r["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(out=str(tmp_path), optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(out=str(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match="loss"):
        classification_step(True, loss="mse")
    with pytest.raises(TypeError, match="train_set"):
        fit(make_model(), [1, 2, 3].__iter__(), config=cfg(tmp_path, "x"))
    with pytest.raises(TypeError, match="config"):
        fit(make_model(), make_data(), config={"out": "x"})

    # a static step on sequence data: the output shape check names what was expected
    class MeanOverT(nn.Linear):
        def forward(self, x):
            return super().forward(x.mean(0))

    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        fit(MeanOverT(FEATURES, CLASSES), make_data(), config=cfg(tmp_path, "y"), step=STEP)
    with pytest.raises(ValueError, match="y: expected a \\[B\\] tensor of integer class indices"):
        STEP(nn.Identity(), (torch.zeros(4, 3, 8), torch.zeros(4)), None)
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\]"):
        STEP(nn.Identity(), (torch.zeros(4, 8), torch.zeros(4, dtype=torch.long)), None)

    def no_loss(model, batch, ctx):
        return StepOutput(loss=None, logits=model(batch[0].transpose(0, 1)).mean(0), target=batch[1])

    with pytest.raises(ValueError, match="StepOutput.loss"):
        fit(make_model(), make_data(), config=cfg(tmp_path, "z"), step=no_loss)
    with pytest.raises(ValueError, match="requires_grad"):
        frozen = make_model().requires_grad_(False)
        fit(frozen, make_data(), config=cfg(tmp_path, "w"), step=STEP)


@pytest.mark.compat
def test_resume_of_finished_run_and_missing_checkpoint(tmp_path, capsys):
    data = make_data(16)
    c = cfg(tmp_path, "done", epochs=1)
    m = make_model()
    first = fit(m, data, data, data, config=c, step=STEP)
    w = weights(m)
    c.resume = True
    again = fit(make_model(seed=4), data, data, data, config=c, step=STEP)  # nothing left to train
    assert again["steps"] == first["steps"] and again["test_acc1"] == first["test_acc1"]
    assert len(again["history"]) == 1
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    c2 = cfg(tmp_path, "fresh", epochs=1, resume=True)  # resume without a checkpoint starts from scratch
    m2 = make_model()
    fit(m2, data, data, config=c2, step=STEP)
    assert all(torch.equal(w[k], weights(m2)[k]) for k in w)
    assert "starting from scratch" in capsys.readouterr().out


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP is used on CUDA only")
def test_amp_on_cuda(tmp_path):
    data = make_data()
    r = fit(make_model(), data, data, config=cfg(tmp_path, "amp", amp=True, device="cuda"), step=STEP)
    assert r["amp"] is True and r["device"].startswith("cuda")
    ck = load_checkpoint(tmp_path / "amp" / "checkpoint.pt")
    assert ck["scaler"]  # GradScaler state saved for resume
    r_cpu = fit(make_model(), data, config=cfg(tmp_path, "cpu", amp=True, device="cpu"), step=STEP)
    assert r_cpu["amp"] is False  # amp is skipped on CPU

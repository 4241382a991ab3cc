"""Exact resume of the transfer recipe after a kill -9 (issue 24, item 2): a run killed by SIGKILL in the
middle of its second epoch and resumed in a fresh process ends with the same weights, bit for bit, as the
uninterrupted run. Covers the event-only baseline, the two-branch transfer run (static partners drawn per
item) and the transfer run with class-balanced sampling and the DVS augmentation (draws with replacement)."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from sj_common.engine import load_checkpoint
from sj_transfer.recipe import RECIPE

from tests.console import env

# Runs RECIPE.train on a config of mnist5k; SIGKILLs itself right before training step `kill_at`.
CHILD = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from sj_transfer.recipe import RECIPE
overrides, kill_at = json.loads(sys.argv[1]), int(sys.argv[2])
build_step = RECIPE.build_step
def killing_build_step(cfg, data):
    step = build_step(cfg, data)
    def killing_step(model, batch, ctx):
        if ctx.train and ctx.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(model, batch, ctx)
    return killing_step
RECIPE.build_step = killing_build_step
RECIPE.train(RECIPE.config("mnist5k", overrides))
"""

KINDS = {
    "baseline": {"method.baseline": True},
    "transfer": {"method.baseline": False},
    "transfer_balanced": {
        "method.baseline": False,
        "data.balanced_sampling": True,
        "data.samples_per_epoch": 32,
        "data.dvs_augment": True,
    },
}


def _child(overrides: dict, kill_at: int) -> subprocess.CompletedProcess:
    args = [sys.executable, "-c", CHILD, json.dumps(overrides), str(kill_at)]
    return subprocess.run(args, capture_output=True, text=True, env=env(), timeout=600)


@pytest.mark.slow  # a run, a killed run and its resume in a fresh process
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_killed_and_resumed_in_a_fresh_process_equals_uninterrupted(tmp_path, frame_cache, one_thread, kind):
    overrides = {
        **KINDS[kind],
        "data.cache_dir": frame_cache,
        "data.train_ratio": 0.02,
        "model.cfg": [8, "P", 8, "P"],
        "train.epochs": 2,
        "train.batch_size": 8,
        "train.max_steps_per_epoch": 4,
        "train.checkpoint_every_steps": 3,  # saves after steps 3, 4 (epoch end) and 6
        "train.progress": False,
        "train.tensorboard": False,
    }
    full = RECIPE.train(RECIPE.config("mnist5k", {**overrides, "train.out": str(tmp_path / "full")}))

    run = {**overrides, "train.out": str(tmp_path / "run")}
    killed = _child(run, kill_at=6)  # mid-epoch 2, right after the checkpoint of step 6
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["global_step"] == 6
    resumed = _child({**run, "train.resume": True}, kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    diff = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    assert not diff, f"resumed weights differ from the uninterrupted run's: {diff}"
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["steps"] == full["steps"] == 8 and len(res["resumes"]) == 1
    assert [h["train_loss"] for h in res["history"]] == [h["train_loss"] for h in full["history"]]

"""The pre-registered study's command (examples/transfer_table.py --study), run as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.console import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_study_command_smoke(tmp_path):
    docs = tmp_path / "docs"
    cmd = [sys.executable, str(ROOT / "examples" / "transfer_table.py"), "--study", "--smoke"]
    cmd += [
        "--arms",
        "baseline",
        "full",
        "--seeds",
        "0",
        "--out",
        str(tmp_path / "runs"),
        "--docs",
        str(docs),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((docs / "results.json").read_text())
    assert [(r["arm"], r["seed"], r["ratio"]) for r in res["runs"]] == [
        ("baseline", 0, 0.02),
        ("full", 0, 0.02),
    ]
    full = res["runs"][1]["history"][0]
    assert {"train_cka_0", "train_w_7", "train_replaced"} <= set(full)  # logged over training
    assert (
        res["summary"]["setting"]["data.preset"] == "noisy"
    )  # the study's; the smoke run uses the clean twin
    assert res["summary"]["smoke_overrides"]["data.preset"] == "default"
    assert res["summary"]["rows"][1]["gain"] == [res["runs"][1]["test_acc1"] - res["runs"][0]["test_acc1"]]
    table = (docs / "results.md").read_text()
    assert "| 0.02 | full |" in table and "smoke run" in table
    assert 0 < (docs / "study.png").stat().st_size < 200_000
    # one JSON per finished run: an interrupted study continues where it stopped (--report-only tabulates them)
    kept = sorted(p.name for p in (tmp_path / "runs" / "runs").iterdir())
    assert kept == ["r0.02_s0_baseline.json", "r0.02_s0_full.json"]


def test_packaged_study_config_is_the_full_arm(monkeypatch):
    import dataclasses
    import importlib

    from sj_transfer.recipe import RECIPE

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    study = importlib.import_module("transfer_table")
    for seed in (0, 3):
        ours = RECIPE.config("mnist5k_study", {"train.seed": seed, "train.progress": False}, out="x")
        theirs = RECIPE.config("mnist5k", study.study_overrides("full", 0.02, seed), out="x")
        assert ours.data == dataclasses.replace(theirs.data, subset_seed=None)  # None: the seed draws it
        assert (ours.model, ours.method) == (theirs.model, theirs.method)
        assert ours.train == dataclasses.replace(theirs.train, tensorboard=True)

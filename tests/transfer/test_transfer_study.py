"""The pre-registered studies' command (examples/transfer_study.py), run as a user runs it."""

import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.console import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def study_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    return importlib.import_module("transfer_study")


@pytest.mark.slow
def test_confirm_study_command_smoke(tmp_path):
    """Every arm of the confirmatory study (one seed, one ratio, 2 x 1 steps) through the shared runner; run
    again, nothing is trained."""
    docs, out = tmp_path / "docs", tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "examples" / "transfer_study.py"), "--smoke", "--jobs", "2"]
    cmd += ["--out", str(out), "--docs", str(docs)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((docs / "results.json").read_text())
    arms = ["baseline", "paper", "shared", "shared_alpha0", "finetune"]
    assert [(r["arm"], r["seed"], r["level"]) for r in res["runs"]] == [(a, 5, 0.02) for a in arms]
    by = {r["arm"]: r for r in res["runs"]}
    assert {"train_cka_0", "train_w_7", "train_replaced"} <= set(by["paper"]["history"][0])
    assert by["finetune"]["static_pretrain"]["epochs"] == 1 and len(by["finetune"]["history"]) == 1
    rows = {r["arm"]: r for r in res["summary"]["rows"]}
    assert rows["shared"]["gain"]["gains"] == [by["shared"]["test_acc1"] - by["baseline"]["test_acc1"]]
    assert "paper@0.02" in res["per_step"] and "train_w_0" in res["per_step"]["paper@0.02"]
    table = (docs / "results.md").read_text()
    assert "| 0.02 | shared_alpha0 |" in table and "smoke run" in table and "shared - finetune" in table
    assert 0 < (docs / "study.png").stat().st_size < 300_000
    kept = sorted(q.name for q in (out / "runs").iterdir())
    assert kept == sorted(f"train_ratio0.02_s5_{a}.json" for a in arms)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
    assert again.returncode == 0 and "5 kept, 0 to train" in again.stdout


def test_issue11_published_runs_tabulate_through_the_runner(study_module, tmp_path):
    """Issue 11's published numbers come out of the shared runner's statistics from its kept runs."""
    published = json.loads((ROOT / "docs" / "transfer_study" / "results.json").read_text())["summary"]
    summary = study_module.main(["--study", "issue11", "--published", "--docs", str(tmp_path)])
    ours = {r["arm"]: r for r in summary["rows"]}
    for row in published["rows"]:
        mine = ours[row["arm"]]
        assert mine["test"] == row["test"] and mine["test_mean"] == pytest.approx(row["test_mean"])
        assert mine["val_mean"] == pytest.approx(row["val_mean"])
        if "gain_mean" in row:
            assert mine["gain"]["mean"] == pytest.approx(row["gain_mean"])
            assert mine["gain"]["se"] == pytest.approx(row["gain_se"])
    assert summary["verdict"] == "not met" and (tmp_path / "results.md").is_file()


def test_packaged_study_config_is_issue11s_full_arm(study_module):
    from sj_transfer.recipe import RECIPE

    issue11 = study_module.ISSUE11
    for seed in (0, 3):
        ours = RECIPE.config("mnist5k_study", {"train.seed": seed, "train.progress": False}, out="x")
        theirs = RECIPE.config("mnist5k", issue11.overrides(0.02, seed, "full"), out="x")
        assert ours.data == dataclasses.replace(theirs.data, subset_seed=None)  # None: the seed draws it
        assert (ours.model, ours.method) == (theirs.model, theirs.method)
        assert ours.train == dataclasses.replace(theirs.train, tensorboard=True)


def test_confirm_arms_differ_from_paper_by_one_setting_each(study_module):
    """The pre-registered arms: paper is mnist5k_study as it is; each other arm changes what it names."""
    from sj_transfer.recipe import RECIPE

    study = study_module.STUDY
    cfg = {a: RECIPE.config("mnist5k_study", study.overrides(0.1, 7, a), out="x") for a in study.arms}
    assert cfg["paper"].data.train_ratio == 0.1 and cfg["paper"].data.subset_seed == 7
    assert cfg["paper"].train.seed == 7 and not cfg["paper"].model.shared_head
    assert cfg["shared"] == dataclasses.replace(
        cfg["paper"], model=dataclasses.replace(cfg["paper"].model, shared_head=True)
    )
    assert cfg["shared_alpha0"].method.alpha == 0.0 and cfg["shared_alpha0"].model.shared_head
    assert cfg["finetune"].method.static_pretrain_epochs == 5 and cfg["finetune"].train.epochs == 10
    assert cfg["baseline"].method.baseline
    assert set(study.seeds).isdisjoint(study_module.ISSUE11.seeds)  # fresh seeds

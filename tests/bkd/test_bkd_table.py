"""examples/bkd_table.py: the paired-study command at a tiny scale, and its criterion pinned on exact inputs."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "bkd_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("bkd_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("gains", "met"),
    [
        ([1.25, 3.0], True),  # mean 2.125 > 1 and > 2 SE = 1.75
        ([1.0, 3.0], False),  # mean 2 == 2 SE (SE = 1): not above
        ([0.5, 1.5], False),  # mean 1 == 1 point: not above (SE 0.5)
        ([1.5, 2.5], True),  # mean 2, SE 0.5
        ([0.0, 4.0], False),  # mean 2 < 2 SE = 4
    ],
)
def test_paired_criterion_is_strict(gains, met):
    p = _module().paired(gains)
    assert p["met"] is met
    assert p["n"] == 2 and p["mean"] == sum(gains) / 2
    assert p["se"] == pytest.approx(abs(gains[1] - gains[0]) / 2, abs=1e-12)  # SE = sd / sqrt(n)


@pytest.mark.slow
def test_study_command_tiny(tmp_path):
    """The user's command, as a subprocess: teacher once, 2 seeds x 4 arms, table + JSON + plot, paired rows."""
    out, docs = tmp_path / "run", tmp_path / "docs"
    tiny = ["--set=train.epochs=1", "--max-steps-per-epoch", "1", "--set=data.train_subset=20"]
    tiny += ["--set=data.T=2", "--set=data.val_subset=20", "--set=data.test_subset=20"]
    tiny += ["--set=teacher.train.epochs=1", "--set=data.teacher_train_subset=40"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--docs", str(docs), "--seeds", "3", "4"]
    cmd += ["--threads", "1", *tiny]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = json.loads((docs / "table.json").read_text())
    assert (docs / "plot.png").stat().st_size > 1000 and "| seed | none | kd | bkd | mixed |" in (
        docs / "table.md"
    ).read_text()
    assert study["arms"] == ["none", "kd", "bkd", "mixed"] and study["seeds"] == [3, 4]
    assert {(r["arm"], r["seed"]) for r in study["runs"]} == {
        (a, s) for a in study["arms"] for s in (3, 4)
    } and all(r["torch_threads"] == 1 and r["train_images"] == 20 for r in study["runs"])
    s = study["summary"]["settings"]["1"]
    acc = {(r["arm"], r["seed"]): r["test_acc1"] for r in study["runs"]}
    for arm in ("kd", "bkd", "mixed"):  # paired: each seed's arm minus the same seed's student alone
        assert s["gains"][arm]["per_seed"] == [acc[arm, 3] - acc["none", 3], acc[arm, 4] - acc["none", 4]]
    assert study["summary"]["criterion_met"] is s["gains"]["mixed"]["met"]
    # the logged losses: the feature loss in bkd/mixed, the logit loss in kd/mixed, none in the student alone
    losses = {a: s["arms"][a]["losses"] for a in study["arms"]}
    assert set(losses["none"]) == {"ce"} and set(losses["kd"]) == {"ce", "logit", "logit_to_ce"}
    assert set(losses["mixed"]) == {"ce", "feature", "logit", "feature_to_ce", "logit_to_ce"}
    run = next(r for r in study["runs"] if r["arm"] == "mixed")
    first = run["losses"][0]
    assert first["feature_to_ce"] == first["feature"] / first["ce"] > 0
    # one run per (arm, seed), each kept by the shared runner for an interrupted study to continue from
    kept = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert kept == sorted(f"threads1_s{s}_{a}.json" for s in (3, 4) for a in study["arms"])
    assert len(re.findall(r"\] threads1_s\d_\w+: test_acc1", proc.stdout)) == 8
    # run again: nothing is trained (every run is kept), the same table comes out
    table = (docs / "table.md").read_text()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "8 kept, 0 to train" in again.stdout
    assert (docs / "table.md").read_text().split("Study wall time")[1] == table.split("Study wall time")[1]


def test_published_table_retabulates_through_the_shared_runner():
    """Issue 14's published table comes out the same from the shared runner's statistics (its kept runs,
    nothing re-run); the hand-written notes follow the generated part."""
    published = (ROOT / "docs" / "bkd_study" / "table.md").read_text()
    generated = _module().table_md(_module().retabulate(ROOT / "docs" / "bkd_study" / "table.json"))
    assert published.startswith(generated) and "+1.62 ± 0.49 SE (met)" in generated

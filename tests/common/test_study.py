"""sj_common.study: the paired-study runner (resume, pairing, statistics, criterion, table)."""

import math

import pytest
from sj_common.study import (
    Criterion,
    PairedStudy,
    load_runs,
    paired_stats,
    run_study,
    summarize,
    write_markdown,
)


def _study(**kw):
    base = dict(
        name="fake",
        recipe="tests.common.fake_recipe:RECIPE",
        config="cfg",
        arms={"base": {"arm": "base"}, "new": {"arm": "new"}},
        control="base",
        seeds=[1, 2, 3],
        criterion=Criterion("new", min_gain=1.0, min_se=2.0),
        secondary=[("new", "base")],
        factor="data.level",
        levels=[0.0, 0.5],
    )
    return PairedStudy(**{**base, **kw})


def test_paired_stats_hand_computed():
    st = paired_stats([1.5, 2.0, 2.5])  # mean 2, sd 0.5, se 0.5 / sqrt(3)
    assert st["mean"] == 2.0 and st["sd"] == 0.5 and st["se"] == pytest.approx(0.5 / math.sqrt(3))
    assert paired_stats([3.0])["se"] is None and paired_stats([])["n"] == 0


@pytest.mark.parametrize(
    ("gains", "met"),
    [
        ([1.25, 3.0], True),  # mean 2.125 > 1 and > 2 SE = 1.75
        ([1.0, 3.0], False),  # mean 2 == 2 SE (SE = 1): not above
        ([0.5, 1.5], False),  # mean 1 == 1 point: not above
        ([1.5, 2.5], True),  # mean 2, SE 0.5
    ],
)
def test_criterion_is_strict_at_both_bounds(gains, met):
    assert Criterion("x", 1.0, 2.0).met(paired_stats(gains), 2) is met
    assert Criterion("x", 1.0, 2.0).met(paired_stats(gains), 3) is False  # a registered pair is missing


@pytest.mark.slow  # spawns worker processes / builds every network: over a second
def test_runner_pairs_resumes_and_judges(tmp_path):
    study = _study()
    assert study.runs()[:4] == [(0.0, 1, "base"), (0.0, 1, "new"), (0.5, 1, "base"), (0.5, 1, "new")]
    partial = PairedStudy(**{**study.__dict__, "seeds": [1]})
    run_study(partial, tmp_path / "out", jobs=2, log=lambda s: None)
    assert len((tmp_path / "out" / "calls.txt").read_text().splitlines()) == 4
    part = summarize(study, load_runs(study, tmp_path / "out"))
    assert part["verdict"] == "incomplete" and part["runs_finished"] == 4
    assert "INCOMPLETE: 4 of 12" in write_markdown(part)
    logs = []
    runs = run_study(study, tmp_path / "out", jobs=2, log=logs.append)
    assert "4 kept, 8 to train" in logs[0]
    assert len((tmp_path / "out" / "calls.txt").read_text().splitlines()) == 12  # kept runs not repeated
    assert "config" not in runs[0]["results"] and runs[0]["threads"] == 1
    s = summarize(study, runs)
    # gains new - base per seed: 1.5, 2.0, 2.5 at both levels: mean 2 > 1 and > 2 SE = 0.577
    for p in s["primary"]:
        assert p["gains"] == [1.5, 2.0, 2.5] and p["se"] == pytest.approx(0.5 / math.sqrt(3))
    assert s["verdict"] == "met" and s["complete"]
    row = next(r for r in s["rows"] if r["arm"] == "new" and r["level"] == 0.5)
    assert (
        row["test"] == [82.0, 83.5, 85.0] and row["val_mean"] == 82.5 and row["train_acc1_last_mean"] == 99.0
    )
    md = write_markdown(s, tmp_path / "t.md")
    assert "| 0.5 | new | 82.0 / 83.5 / 85.0 | 83.50 ± 1.50 | +2.00 ± 0.29 (n=3) |" in md
    assert "Verdict: **met**" in md and (tmp_path / "t.md").read_text() == md


@pytest.mark.slow  # spawns worker processes / builds every network: over a second
def test_criterion_must_hold_at_every_level(tmp_path):
    study = _study(criterion=Criterion("new", min_gain=2.0, min_se=2.0))  # mean 2 == 2: not above
    s = summarize(study, run_study(study, tmp_path, jobs=1, log=lambda s: None))
    assert s["verdict"] == "not met"


def test_study_refuses_unknown_arms():
    with pytest.raises(ValueError, match="arms: expected an arm named 'other'"):
        _study(secondary=[("new", "other")])

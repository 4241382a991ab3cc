"""Every results table in the README and the docs equals what scripts/docs_tables.py renders from its committed
results file; no known stale number comes back; the demo numbers kept for the docs agree with the studies they
claim to equal."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "scripts" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_table_matches_its_results_file(tables):
    assert tables.stale_blocks() == []


def test_the_pages_hold_every_table(tables):
    """Each generated table appears somewhere, and the README holds the headline demo table."""
    found = {}
    for path in tables.pages():
        for m in tables.BLOCK.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group("name"), []).append(path.name)
    assert set(found) == set(tables.RENDERERS), found
    assert "README.md" in found["demo"]


def test_a_changed_number_is_caught(tables):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert tables.problems_in(readme, "README.md") == []
    block = tables.BLOCK.search(readme)
    body = block.group("body")
    assert "83.5 / 87.9 / 82.6" in body  # the default run's transfer numbers (docs/demo/default.json)
    changed = readme.replace(body, body.replace("83.5 / 87.9 / 82.6", "83.5 / 87.8 / 82.6"))
    assert tables.problems_in(changed, "README.md") == [
        "README.md: block 'demo' differs from its results file"
    ]
    stale = readme + "\nANN 97.0; uncalibrated 91.8 / 73.7 / 92.6 / 96.0\n"
    assert len(tables.problems_in(stale, "README.md")) == 2
    # a number typed outside the markers is not rewritten: regenerate keeps the text around the blocks
    assert tables.regenerate(changed) == readme


def test_demo_numbers_are_the_settings_they_claim(tables):
    """docs/demo/default.json: the transfer section is the baseline, the recommended shared head and the paper's
    two heads at the studies' ratio; the bkd section covers the bkd study's 8 seeds with the paired gain."""
    demo = json.loads((ROOT / "docs" / "demo" / "default.json").read_text())
    t = demo["transfer"]
    assert t["train_ratio"] == 0.02 and "shared" in t["transfer_setting"] and t["epochs"] == 10
    assert {"baseline_acc", "transfer_acc", "paper_acc"} <= set(t)
    bkd = json.loads((ROOT / "docs" / "bkd_study" / "table.json").read_text())
    b = demo["bkd"]
    assert b["gain"] == pytest.approx(b["distilled_acc"] - b["student_acc"], abs=0.02)
    assert len(bkd["seeds"]) == 8 and b["student_std"] > 0 and b["gain_se"] > 0


def test_demo_results_are_kept_from_a_run(tables, tmp_path, monkeypatch):
    """``--demo-results`` keeps the headline numbers of a demo results.json in the shape the tables read."""
    quick = json.loads((ROOT / "docs" / "demo" / "quick.json").read_text())
    run = {k: v for k, v in quick.items() if k != "source"}
    run["calib"] = {**run["calib"], "curves": {"ann": [{"epoch": 1}]}, "details": {"x": 1}}
    run["figures"] = {"calib": ["calib_accuracy_vs_T.png"]}
    src = tmp_path / "results.json"
    src.write_text(json.dumps(run))
    monkeypatch.setattr(tables, "DOCS", tmp_path / "docs")
    (tmp_path / "docs" / "demo").mkdir(parents=True)
    kept = json.loads(tables.keep_demo_results(src).read_text())
    assert tables.demo_row("q", kept) == tables.demo_row("q", quick)
    del run["bkd"]
    src.write_text(json.dumps(run))
    with pytest.raises(ValueError, match=r"missing \['bkd'\]"):
        tables.keep_demo_results(src)

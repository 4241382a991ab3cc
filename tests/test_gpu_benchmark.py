"""benchmarks/gpu.py (issue 23) cannot rot: its CPU smoke mode runs here end to end, and its budget and
out-of-memory handling are pinned with exact inputs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
SECTIONS = ("environment", "cuda_tests", "cupy_sj14", "transfer", "bkd", "calib")


@pytest.fixture
def gpu(monkeypatch):
    """benchmarks/gpu.py as a module (it puts benchmarks/ first on sys.path: restored afterwards)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reported(status: str) -> bool:
    """A value ("ok") or a skip that gives its reason."""
    return status == "ok" or (status.startswith("skipped: ") and len(status) > len("skipped: ") + 5)


@pytest.mark.slow
def test_smoke_run_reports_every_section(tmp_path):
    out = tmp_path / "gpu"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--threads", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu.json").read_text())
    assert {"schema", "command", "smoke", "budget_s", "wall_s", "sections"} <= set(report)
    assert report["smoke"] is True and report["wall_s"] <= report["budget_s"]
    assert set(report["sections"]) == set(SECTIONS)
    for name, sec in report["sections"].items():
        assert reported(sec["status"]), (name, sec["status"])
    env = report["sections"]["environment"]
    assert {"torch", "spikingjelly", "device"} <= set(env) and env["device"] == "cpu"
    # the CUDA-marked tests ran (every one skipped here, each with its reason)
    results = report["sections"]["cuda_tests"]["results"]
    assert any("test_amp_on_cuda" in k for k in results)
    assert any("nccl" in k for k in results) and any("cupy" in k for k in results)
    assert all(v.startswith("skipped: ") and len(v) > 12 for v in results.values()), results
    assert report["sections"]["cupy_sj14"]["status"].startswith(
        "skipped: SpikingJelly 0.0.0.0.14 not installed"
    )
    # every timed row: its values, or the reason it was skipped
    for name, variants in (("transfer", ("method", "plain")), ("bkd", ("distilled", "plain", "teacher"))):
        rows = report["sections"][name]["rows"]
        assert [r["amp"] for r in rows] == ["off", "float16"]
        assert rows[1]["status"].startswith("skipped: AMP runs on CUDA only")
        ok = rows[0]
        assert ok["status"] == "ok" and ok["batch"] == 2 and ok["reps"] == 2
        assert all(ok["median_ms"][v] > 0 for v in variants) and ok["ratio"] > 0
        backend = next(iter(ok["neurons"].values()))
        assert backend["backend"] and backend["neurons"]
    calib = report["sections"]["calib"]["rows"][0]
    assert [t["T"] for t in calib["per_T"]] == [1, 2]
    for t in calib["per_T"]:
        assert t["status"] == "ok" and t["ratio"] > 0 and t["ideal"] == (max(t["T"], 4) + 4) / t["T"]
        assert t["sync_free"] == {"plain": "n/a on a CPU", "calibrated": "n/a on a CPU"}
    table = (out / "gpu.md").read_text()
    assert "| transfer | ok |" in table and "## calib" in table and "## cuda_tests" in table


def test_budget_is_shared_over_the_sections_left(gpu, monkeypatch):
    clock = gpu.Clock(100.0)
    now = clock.t0
    monkeypatch.setattr(gpu.time, "monotonic", lambda: now)
    assert clock.deadline("cuda_tests", set()) - now == pytest.approx(25.0)  # its share, 0.25
    done = {"cuda_tests", "cupy_sj14", "transfer", "bkd"}
    assert clock.deadline("calib", done) - now == pytest.approx(100.0)  # the last one gets all that is left
    now += 40.0  # 40 s spent: 60 left, calib's 0.21 of the 0.43 still to come
    assert clock.deadline("bkd", done - {"bkd"}) - now == pytest.approx(60.0 * 0.22 / 0.43)
    now += 70.0  # past the budget: no time at all
    assert clock.deadline("calib", done) == now


def test_timed_steps_fit_the_deadline_or_are_skipped(gpu):
    calls = []
    fns = {"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}
    args = Namespace(warmup=1, reps=3)
    with pytest.raises(gpu.Skip, match="warm-up reached the section's deadline"):
        gpu.time_variants(fns, torch.device("cpu"), args, deadline=time.monotonic() - 1)
    assert calls == []
    r = gpu.time_variants(fns, torch.device("cpu"), args, deadline=time.monotonic() + 60)
    assert r["reps"] == 3 and set(r["median_ms"]) == {"a", "b"}
    assert r["peak_gib"] == {"a": None, "b": None}  # no CUDA memory on a CPU
    # warm-up at iteration 0, then interleaved: a b, b a, a b
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("b", 2), ("a", 2), ("a", 3), ("b", 3)]

    def slow(i):
        time.sleep(0.25)

    with pytest.raises(gpu.Skip, match="3 timed rounds of 0.2"):  # one round fits, two are needed
        gpu.time_variants({"s": slow}, torch.device("cpu"), args, deadline=time.monotonic() + 0.6)


def test_out_of_memory_is_recorded_and_retried_at_half_the_batch(gpu):
    def fn(batch):
        if batch > 2:
            raise torch.OutOfMemoryError(f"CUDA out of memory at batch {batch}")
        return {"value": batch}

    assert gpu.with_oom_retry(fn, 8) == {"status": "ok", "batch": 2, "oom_at_batch": [8, 4], "value": 2}
    r = gpu.with_oom_retry(fn, 32)  # 32, 16, 8: three attempts, all out of memory
    assert r["status"] == "failed: out of memory at batch 32, 16, 8" and r["oom_at_batch"] == [32, 16, 8]

    def skip(batch):
        raise gpu.Skip("no time left")

    assert gpu.with_oom_retry(skip, 8)["status"] == "skipped: no time left"

    def broken(batch):
        raise ValueError("x: expected 1, got 2")

    r = gpu.with_oom_retry(broken, 8)
    assert r["status"] == "failed: ValueError: x: expected 1, got 2" and "Traceback" in r["traceback"]


def test_pytest_outcomes_are_read_from_junit_and_from_the_summary(gpu, tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase classname="tests.a" name="t1"/>'
        '<testcase classname="tests.a" name="t2"><skipped type="pytest.skip" message="needs a CUDA device"/></testcase>'
        '<testcase classname="tests.a" name="t3"><skipped type="pytest.xfail" message="GradScaler"/></testcase>'
        '<testcase classname="tests.a" name="t4"><failure message="RuntimeError: sync&#10;more"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert gpu.parse_junit(xml) == {
        "tests.a::t1": "passed",
        "tests.a::t2": "skipped: needs a CUDA device",
        "tests.a::t3": "xfailed: GradScaler",
        "tests.a::t4": "failed: RuntimeError: sync",
    }
    summary = (
        "tests/a.py::t0 PASSED   [ 10%]\ntests/a.py::t5 \n"  # -v progress: t5 never finished
        "PASSED tests/a.py::t1\nFAILED tests/a.py::t4 - RuntimeError: sync\n"
        "SKIPPED [3] tests/a.py:12: needs a CUDA device\nXFAIL tests/a.py::t3 - GradScaler\n"
    )
    assert gpu.parse_summary(summary) == {
        "tests/a.py::t0": "passed",
        "tests/a.py::t1": "passed",
        "tests/a.py::t4": "failed: RuntimeError: sync",
        "tests/a.py:12": "skipped: needs a CUDA device",
        "tests/a.py::t3": "xfailed: GradScaler",
    }

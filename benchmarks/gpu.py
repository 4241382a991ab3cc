"""One prepared GPU check (issue 23): correctness on CUDA, then the speed and peak memory of each plugin at
its paper's scale, inside a time budget; writes ``gpu.json`` and ``gpu.md`` (a Markdown table) to ``--out``.

    python benchmarks/gpu.py [--out DIR] [--budget-s 480] [--sj14 DIR] [--amp off,float16]
                             [--transfer-batch 120] [--bkd-batch 128] [--calib-batch 128] [--warmup 2] [--reps 5]
    python benchmarks/gpu.py --smoke     # CPU, tiny sizes, seconds: the test suite runs it so it cannot rot

Sections (each gets a deadline: its share of the time left, so the whole stays inside ``--budget-s``; what
does not fit is skipped and says so):

* ``cuda_tests``: ``pytest -m cuda`` (AMP, nccl DDP with one process, the training steps of the engine and
  the three plugins under ``torch.cuda.set_sync_debug_mode("error")`` from their second step, AMP off /
  bfloat16 / float16);
* ``cupy_sj14``: the same tests that also run on SpikingJelly 0.0.0.0.14 (``-m "cuda and compat"``: its CuPy
  neurons against its torch ones, the plugins' steps on them), with ``--sj14 DIR`` first on PYTHONPATH;
* ``transfer``: Transfer_VGG_SNN (48x48, T 10, batch 120) with the domain loss and sliding replacement
  against the same two-branch step without them (``benchmarks/transfer.py``'s steps);
* ``bkd``: SEW-ResNet-18 student, ResNet-18 teacher, 224x224, T 4, 1000 classes: the distilled step against
  the plain student step, and the teacher's forward (``benchmarks/bkd.py``'s steps);
* ``calib``: the CIFAR VGG-16 (32x32), calibrated (rho 4) against plain inference at T 1/2/4/8
  (``benchmarks/calib.py``'s nets), and whether each runs without a host sync.

Every timed row runs with AMP off and on (``--amp``), on synthetic data: warm-up steps (the first one also
records the SpikingJelly neuron implementation that each model really ran: torch / cupy / triton / cuda),
then interleaved timed steps (CUDA synchronised around each), medians, and the peak of
``torch.cuda.max_memory_allocated`` per variant. An out-of-memory error is recorded and the row retried at
half the batch. Timings are medians of few steps: compare ratios measured side by side, as the CPU
benchmarks do; absolute times depend on the GPU, its clocks and what else runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from sj_common.threads import apply_thread_policy  # no torch import: call it before importing torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks: transfer, bkd, calib

#: share of the remaining budget each section may use (the first get their share of what is left then)
SHARES = {"cuda_tests": 0.25, "cupy_sj14": 0.10, "transfer": 0.22, "bkd": 0.22, "calib": 0.21}
SECTIONS = ("environment", *SHARES)
#: the reference transfer code on one A100-40G (issue 23): 38 GB, about 0.8 s a step at batch 120, T 10
REFERENCE_TRANSFER = "reference code: ~0.8 s/step, 38 GB on one A100-40G (batch 120, T 10, 48x48)"


class Skip(Exception):
    """A row or section that does not fit its deadline (or cannot run here); the message says why."""


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------------------------------------------------
# The clock: a budget shared out over the sections
# ---------------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self, budget_s: float):
        self.t0, self.budget = time.monotonic(), budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()

    def deadline(self, section: str, done: set[str]) -> float:
        """Absolute monotonic deadline of ``section``: its share of the time left over the sections to come."""
        todo = [s for s in SHARES if s not in done]
        share = SHARES[section] / sum(SHARES[s] for s in todo)
        return time.monotonic() + max(self.left(), 0.0) * share


# ---------------------------------------------------------------------------------------------------------
# Environment and the SpikingJelly neuron implementation each model ran
# ---------------------------------------------------------------------------------------------------------
SJ_LOG: list[str] = []


def capture_spikingjelly_log() -> None:
    """SpikingJelly 2.x logs (loguru, off by default) which implementation it selects per operator and
    device, and every fallback to the torch formulas: keep those lines for the report."""
    try:
        from loguru import logger
    except ImportError:  # SpikingJelly 0.0.0.0.14 has no logger
        return
    logger.remove()  # this process only: no loguru output on stderr
    logger.enable("spikingjelly")
    logger.add(
        lambda m: SJ_LOG.append(m.record["message"]),
        level="INFO",
        filter=lambda r: (
            r["name"].startswith("spikingjelly")
            and ("selection" in r["message"] or "unavailable" in r["message"] or "fallback" in r["message"])
        ),
    )


def environment(device) -> dict:
    import torch

    from sj_common import compat

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "spikingjelly": compat.SPIKINGJELLY_VERSION,
        "spikingjelly_line": "0.0.0.0.14 (backend argument)" if compat.LEGACY else "2.x (picks its kernels)",
        "cpu_threads": torch.get_num_threads(),
        # torch's defaults, left as they are (as a user of the engine gets them)
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(
            gpu=p.name,
            capability=f"{p.major}.{p.minor}",
            gpu_memory_gib=round(p.total_memory / 2**30, 1),
            multiprocessors=p.multi_processor_count,
        )
    for name in ("triton", "cupy"):
        try:
            env[name] = __import__(name).__version__
        except Exception as e:  # noqa: BLE001 - optional: report why
            env[name] = f"not installed ({first_line(e)})"
    if not compat.LEGACY:
        from spikingjelly.activation_based.functional import neuron_implementation

        for kind in ("if", "lif"):
            try:
                env[f"neuron_implementation_{kind}"] = neuron_implementation(kind, device)
            except Exception as e:  # noqa: BLE001
                env[f"neuron_implementation_{kind}"] = f"failed: {first_line(e)}"
    return env


def neuron_backend(model, run, device) -> dict:
    """Run ``run()`` once and report the SpikingJelly neuron implementation ``model``'s neurons used.

    0.0.0.0.14: each neuron's ``backend`` (torch / cupy). 2.x: the registered operators called (seen by the
    torch profiler as ``sj_<neuron>::forward``; their implementation from SpikingJelly's public
    ``neuron_implementation``) against the neurons' forward calls: a neuron whose surrogate or dtype the
    fused kernels do not support runs SpikingJelly's torch formulas instead, with no operator call.
    """
    import torch
    from spikingjelly.activation_based import neuron

    from sj_common import compat

    nodes = [m for m in model.modules() if isinstance(m, neuron.BaseNode)]
    kinds = dict(Counter(type(m).__name__ for m in nodes))
    if compat.LEGACY:
        run()
        backends = sorted({str(getattr(m, "backend", "torch")) for m in nodes})
        return {"neurons": kinds, "backend": "/".join(backends) or "no neurons"}
    calls = [0]

    def count(*_):
        calls[0] += 1

    hooks = [m.register_forward_hook(count) for m in nodes]
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run()
    finally:
        for h in hooks:
            h.remove()
    ops = {e.key: e.count for e in prof.key_averages() if re.fullmatch(r"sj_\w+::forward", e.key)}
    impl = {}
    for key in ops:
        kind = key.split("::")[0][3:]
        try:
            impl[key] = neuron_implementation_of(kind, device)
        except Exception as e:  # noqa: BLE001
            impl[key] = f"unknown ({first_line(e)})"
    fused = sum(ops.values())
    if not nodes:
        summary = "no SpikingJelly neurons"
    elif calls[0] == 0:
        summary = "no neuron call (torch ops of the plugin only)"
    elif fused == 0:
        summary = "torch (SpikingJelly's reference formulas)"
    else:
        names = "/".join(sorted(set(impl.values())))
        summary = (
            names
            if fused >= calls[0]
            else f"{names} for {fused} of {calls[0]} neuron calls, torch for the rest"
        )
    return {
        "neurons": kinds,
        "neuron_calls": calls[0],
        "operator_calls": ops,
        "implementation": impl,
        "backend": summary,
    }


def neuron_implementation_of(kind: str, device) -> str:
    from spikingjelly.activation_based.functional import neuron_implementation

    return str(neuron_implementation(kind, device)["implementation"])


# ---------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------
def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def time_variants(fns: dict, device, a, deadline: float, probe: dict | None = None) -> dict:
    """Warm up every variant (the first call of each under :func:`neuron_backend` when ``probe`` names its
    model), then time them interleaved: median ms and peak GiB per variant. Raises :class:`Skip` when the
    timed steps would end past ``deadline`` (fewer repetitions are taken when that fits, at least 2)."""
    import torch

    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def call(name, i):
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        sync()
        t = time.perf_counter()
        fns[name](i)
        sync()
        dt = time.perf_counter() - t
        return dt, (torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None)

    backend, last = {}, {}
    for w in range(a.warmup):
        for name in fns:
            if time.monotonic() > deadline:
                raise Skip(f"the warm-up reached the section's deadline (step {w + 1} of {a.warmup})")
            if w == 0 and probe and name in probe:
                t = time.perf_counter()
                backend[name] = neuron_backend(probe[name], lambda n=name: fns[n](0), device)
                sync()
                last[name] = time.perf_counter() - t
            else:
                last[name] = call(name, w)[0]
    per_round = sum(last.values())
    reps = min(a.reps, int((deadline - time.monotonic()) / max(per_round, 1e-9)))
    if reps < 2:
        raise Skip(
            f"{a.reps} timed rounds of {per_round:.2f} s would end past the section's deadline "
            f"({max(deadline - time.monotonic(), 0):.0f} s left)"
        )
    times = {n: [] for n in fns}
    peaks = {n: [] for n in fns}
    names = list(fns)
    for r in range(reps):
        for name in names if r % 2 == 0 else names[::-1]:  # interleaved: load changes hit all alike
            dt, peak = call(name, a.warmup + r)
            times[name].append(dt)
            peaks[name].append(peak)
    out = {
        "reps": reps,
        "median_ms": {n: round(1e3 * statistics.median(v), 3) for n, v in times.items()},
        "peak_gib": {n: (round(max(v), 3) if cuda else None) for n, v in peaks.items()},
    }
    if backend:
        out["neurons"] = backend
    return out


def with_oom_retry(fn, batch: int, attempts: int = 3) -> dict:
    """``fn(batch) -> dict``; an out-of-memory error is recorded and retried at half the batch."""
    import torch

    oom = []
    while batch >= 1 and len(oom) < attempts:
        failed = None
        try:
            return {"status": "ok", "batch": batch, "oom_at_batch": oom, **fn(batch)}
        except Skip as s:
            return {"status": f"skipped: {s}", "batch": batch, "oom_at_batch": oom}
        except torch.OutOfMemoryError:
            failed = batch
        except Exception as e:  # noqa: BLE001 - recorded, and the next row runs
            return {
                "status": f"failed: {first_line(e)}",
                "batch": batch,
                "traceback": traceback.format_exc()[-3000:],
            }
        free_memory()  # outside the except clause: the traceback's frames (and tensors) are gone
        oom.append(failed)
        batch //= 2
    return {"status": f"failed: out of memory at batch {', '.join(map(str, oom))}", "oom_at_batch": oom}


def amp_rows(a, device, run_one) -> list[dict]:
    rows = []
    for amp in a.amp:
        if amp != "off" and device.type != "cuda":
            rows.append(
                {"amp": amp, "status": "skipped: AMP runs on CUDA only (the engine turns it off on a CPU)"}
            )
            continue
        rows.append({"amp": amp, **run_one(amp)})
        free_memory()
    return rows


# ---------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------
def pytest_section(a, deadline: float, marker: str, extra_path: str | None) -> dict:
    """Run the CUDA-marked tests in a subprocess (killed at the deadline); one outcome per test."""
    files = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if "mark.cuda" in p.read_text()
    )
    if not files:
        return {"status": "failed: no test file marks a test with pytest.mark.cuda"}
    timeout = deadline - time.monotonic()
    if timeout < 10:
        raise Skip(f"{timeout:.0f} s left before the section's deadline")
    junit = Path(a.out) / f"junit_{'sj14' if extra_path else 'cuda'}.xml"
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rA", "-m", marker]
    cmd += [f"--junitxml={junit}", *files]
    t = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the pytest process group this function started
        output, _ = proc.communicate()
        timed_out = True
    results = parse_junit(junit) if junit.is_file() else parse_summary(output)
    out = {"command": " ".join(cmd[1:]), "seconds": round(time.monotonic() - t, 1), "results": results}
    outcomes = [r.split(":")[0] for r in results.values()]
    failed = outcomes.count("failed") + outcomes.count("error")
    if timed_out:
        out["status"] = (
            f"failed: timed out after {timeout:.0f} s ({len(results)} results read from its output)"
        )
        out["output_tail"] = output[-4000:]  # -v: the test that hung is the last one named
    elif failed or proc.returncode not in (0, 5):
        out["status"] = f"failed: {failed} of {len(results)} (pytest exit {proc.returncode})"
        out["output_tail"] = output[-4000:]
    elif results and all(o == "skipped" for o in outcomes):
        reasons = sorted({r.split(": ", 1)[-1] for r in results.values()})
        out["status"] = f"skipped: every test skipped ({'; '.join(reasons)})"
    elif not results:
        out["status"] = f"failed: no result read (pytest exit {proc.returncode})"
        out["output_tail"] = output[-4000:]
    else:
        out["status"] = "ok"
    return out


def parse_junit(path: Path) -> dict:
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        result = "passed"
        for child in case:
            msg = (child.get("message") or "").strip().splitlines()
            msg = msg[0][:200] if msg else ""
            if child.tag == "skipped":
                kind = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                result = f"{kind}: {msg}"
            elif child.tag in ("failure", "error"):
                result = f"{'failed' if child.tag == 'failure' else 'error'}: {msg}"
        results[name] = result
    return results


def parse_summary(output: str) -> dict:
    """Outcomes from ``-v``'s progress lines and ``-rA``'s short summary (when pytest was killed before
    writing its XML)."""
    results = {}
    for line in output.splitlines():
        m = re.match(r"(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)  # -v progress
        if m:
            kind = {"XFAIL": "xfailed", "XPASS": "failed"}.get(m.group(2), m.group(2).lower())
            results[m.group(1)] = kind
        m = re.match(r"(PASSED|FAILED|ERROR|XFAIL|XPASS)\s+(\S+)(?:\s+-\s+(.*))?", line)
        if m:
            kind = {"XFAIL": "xfailed", "XPASS": "failed"}.get(m.group(1), m.group(1).lower())
            results[m.group(2)] = f"{kind}: {m.group(3) or ''}".rstrip(": ")
        m = re.match(r"SKIPPED \[\d+\] (\S+): (.*)", line)  # grouped skips: one line per location
        if m:
            results[m.group(1)] = f"skipped: {m.group(2)}"
    return results


def transfer_section(a, device, deadline: float) -> dict:
    import transfer as bench
    from sj_transfer.models import PAPER_CFG

    s = a.sizes["transfer"]
    cfg = PAPER_CFG if s["cfg"] == "paper" else s["cfg"]

    def run_one(amp):
        def fn(batch):
            steps, net = bench.build_steps(
                batch,
                s["T"],
                s["size"],
                cfg,
                classes=s["classes"],
                total=a.warmup + a.reps,
                device=device,
                amp=amp,
            )
            r = time_variants(steps, device, a, deadline, probe={"method": net})
            r["ratio"] = round(r["median_ms"]["method"] / r["median_ms"]["plain"], 3)
            return r

        return with_oom_retry(fn, a.transfer_batch)

    return {
        "settings": {**s, "cfg": list(cfg), "goal": "ratio <= 1.05", "note": REFERENCE_TRANSFER},
        "rows": amp_rows(a, device, run_one),
    }


def bkd_section(a, device, deadline: float) -> dict:
    import bkd as bench

    s = a.sizes["bkd"]

    def run_one(amp):
        def fn(batch):
            fns, student, _ = bench.build_steps(
                s["student"],
                s["teacher"],
                student_kwargs=s["student_kwargs"],
                teacher_kwargs=s["teacher_kwargs"],
                batch=batch,
                T=s["T"],
                size=s["size"],
                in_channels=s["in_channels"],
                classes=s["classes"],
                device=device,
                amp=amp,
            )
            steps = {k: (lambda i, f=f: f()) for k, f in fns.items()}
            r = time_variants(steps, device, a, deadline, probe={"distilled": student})
            m = r["median_ms"]
            r["ratio"] = round(m["distilled"] / m["plain"], 3)
            r["teacher_share"] = round(m["teacher"] / (m["teacher"] + m["distilled"]), 3)
            return r

        return with_oom_retry(fn, a.bkd_batch)

    return {
        "settings": {**s, "goal": "ratio <= 1.05 (teacher outputs precomputed)"},
        "rows": amp_rows(a, device, run_one),
    }


def sync_free(fn, device) -> str:
    """Whether ``fn()`` runs without a host sync (``set_sync_debug_mode("error")`` raises at the first)."""
    import torch

    if device.type != "cuda":
        return "n/a on a CPU"
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        return "yes"
    except RuntimeError as e:
        return f"no: {first_line(e)}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize(device)


def calib_section(a, device, deadline: float) -> dict:
    import calib as bench
    import torch
    from sj_calib.models import create_model
    from sj_common.engine.util import autocast

    s = a.sizes["calib"]

    def run_one(amp):
        on = amp != "off"

        def fn(batch):
            torch.manual_seed(0)
            ann = create_model(s["model"], **s["model_kwargs"]).eval()
            shape = (s["in_channels"], s["size"], s["size"])
            plain, cos = bench.build_nets(ann, torch.rand(min(batch, 16), *shape), s["rho"], 0.99, device)
            x = torch.rand(batch, *shape, device=device)
            rows = []
            for T in s["T"]:
                row = {"T": T}

                def run(net, _i=None, T=T):
                    with torch.no_grad(), autocast(device, on, "float16" if amp == "off" else amp):
                        net(x, T=T)

                fns = {"plain": lambda i: run(plain), "calibrated": lambda i: run(cos)}
                try:
                    # the largest T: at T <= rho the calibrated layers never call their neuron
                    probe = {"plain": plain, "calibrated": cos} if T == max(s["T"]) else None
                    row.update(time_variants(fns, device, a, deadline, probe=probe))
                except Skip as sk:
                    row["status"] = f"skipped: {sk}"
                    rows.append(row)
                    continue
                m = row["median_ms"]
                ideal = (max(T, s["rho"]) + s["rho"]) / T
                row.update(
                    status="ok",
                    ratio=round(m["calibrated"] / m["plain"], 3),
                    ideal=round(ideal, 3),
                    goal=round(1.1 * ideal, 3),
                    sync_free={
                        "plain": sync_free(lambda: run(plain), device),
                        "calibrated": sync_free(lambda: run(cos), device),
                    },
                )
                rows.append(row)
            return {"per_T": rows}

        return with_oom_retry(fn, a.calib_batch)

    return {"settings": {**s, "goal": "ratio <= 1.1 x (T + rho) / T"}, "rows": amp_rows(a, device, run_one)}


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------
def fmt(v, digits=1) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(report: dict) -> str:
    env = report["sections"].get("environment", {})
    gpu = env.get("gpu", env.get("device", "?"))
    lines = [
        f"# GPU check ({'smoke, CPU' if report['smoke'] else gpu})",
        "",
        f"`{report['command']}`, {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget. "
        f"torch {env.get('torch')}, CUDA {env.get('cuda')}, SpikingJelly {env.get('spikingjelly')}, "
        f"triton {env.get('triton')}, cupy {env.get('cupy')}.",
        "",
        "| section | status |",
        "|---|---|",
    ]
    for name in SECTIONS:
        sec = report["sections"].get(name, {})
        lines.append(f"| {name} | {sec.get('status', 'not run')} |")
    for name in ("cuda_tests", "cupy_sj14"):
        res = report["sections"].get(name, {}).get("results")
        if res:
            lines += ["", f"## {name}", "", "| test | outcome |", "|---|---|"]
            lines += [f"| `{k.split('.')[-1]}` | {v} |" for k, v in res.items()]

    def backend(row, name):
        return row.get("neurons", {}).get(name, {}).get("backend", "")

    rows = report["sections"].get("transfer", {}).get("rows", [])
    if rows:
        lines += ["", "## transfer: the method's step / the plain two-branch step", ""]
        lines += [f"{REFERENCE_TRANSFER}.", ""]
        lines += [
            "| AMP | batch | method ms | plain ms | ratio | peak GiB method / plain | neurons | status |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for r in rows:
            m, p = r.get("median_ms", {}), r.get("peak_gib", {})
            lines.append(
                f"| {r['amp']} | {r.get('batch', '')} | {fmt(m.get('method'))} | {fmt(m.get('plain'))} | "
                f"{fmt(r.get('ratio'), 3)} | {fmt(p.get('method'), 2)} / {fmt(p.get('plain'), 2)} | "
                f"{backend(r, 'method')} | {r['status']} |"
            )
    rows = report["sections"].get("bkd", {}).get("rows", [])
    if rows:
        lines += ["", "## bkd: the distilled step / the plain student step", ""]
        lines += [
            "| AMP | batch | distilled ms | plain ms | ratio | teacher fwd ms | teacher share | peak GiB distilled / plain | neurons | status |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            m, p = r.get("median_ms", {}), r.get("peak_gib", {})
            lines.append(
                f"| {r['amp']} | {r.get('batch', '')} | {fmt(m.get('distilled'))} | {fmt(m.get('plain'))} | "
                f"{fmt(r.get('ratio'), 3)} | {fmt(m.get('teacher'))} | {fmt(r.get('teacher_share'), 3)} | "
                f"{fmt(p.get('distilled'), 2)} / {fmt(p.get('plain'), 2)} | {backend(r, 'distilled')} | {r['status']} |"
            )
    rows = report["sections"].get("calib", {}).get("rows", [])
    if rows:
        lines += ["", "## calib: calibrated / plain inference (rho 4)", ""]
        lines += [
            "| AMP | batch | T | plain ms | calibrated ms | ratio | ideal | goal | peak GiB calibrated / plain | no host sync (plain / calibrated) | neurons | status |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            per_t = r.get("per_T") or [{}]
            for t in per_t:
                m, p, sf = t.get("median_ms", {}), t.get("peak_gib", {}), t.get("sync_free", {})
                lines.append(
                    f"| {r['amp']} | {r.get('batch', '')} | {t.get('T', '')} | {fmt(m.get('plain'))} | "
                    f"{fmt(m.get('calibrated'))} | {fmt(t.get('ratio'), 3)} | {fmt(t.get('ideal'), 2)} | "
                    f"{fmt(t.get('goal'), 2)} | {fmt(p.get('calibrated'), 2)} / {fmt(p.get('plain'), 2)} | "
                    f"{sf.get('plain', '')} / {sf.get('calibrated', '')} | {backend(t, 'calibrated')} | "
                    f"{t.get('status', r['status'])} |"
                )
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path, clock: Clock) -> None:
    """gpu.json and gpu.md, replaced whole after every section (a run killed later keeps them)."""
    report["wall_s"] = round(clock.elapsed(), 1)
    for name, text in (("gpu.json", json.dumps(report, indent=1, default=str)), ("gpu.md", markdown(report))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out / name)


# ---------------------------------------------------------------------------------------------------------
# Sizes and main
# ---------------------------------------------------------------------------------------------------------
PAPER = {
    "transfer": {"cfg": "paper", "size": 48, "T": 10, "classes": 101},
    "bkd": {
        "student": "sew_resnet18",
        "student_kwargs": {},
        "teacher": "resnet18",
        "teacher_kwargs": {},
        "size": 224,
        "in_channels": 3,
        "T": 4,
        "classes": 1000,
    },
    "calib": {
        "model": "vgg16",
        "model_kwargs": {"num_classes": 10},
        "size": 32,
        "in_channels": 3,
        "rho": 4,
        "T": [1, 2, 4, 8],
    },
}
SMOKE = {
    "transfer": {"cfg": [4, "P", 4, "P"], "size": 8, "T": 2, "classes": 3},
    "bkd": {
        "student": "sew_tiny",
        "student_kwargs": {"width": 2},
        "teacher": "cnn_tiny",
        "teacher_kwargs": {"width": 2},
        "size": 28,
        "in_channels": 1,
        "T": 2,
        "classes": 10,
    },
    "calib": {
        "model": "small_vgg",
        "model_kwargs": {"width": 2},
        "size": 28,
        "in_channels": 1,
        "rho": 4,
        "T": [1, 2],
    },
}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", default=os.environ.get("OUT") or "runs/gpu", help="folder for gpu.json and gpu.md"
    )
    p.add_argument("--budget-s", type=float, default=None, help="total time budget (default 480; smoke 240)")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, seconds")
    p.add_argument("--device", default=None, help="default: cuda when available (smoke: cpu)")
    p.add_argument(
        "--sj14", default=None, help="a folder holding SpikingJelly 0.0.0.0.14 (pip install --target)"
    )
    p.add_argument(
        "--amp", default="off,float16", help="AMP settings to time, comma-separated: off,float16,bfloat16"
    )
    p.add_argument("--transfer-batch", type=int, default=None, help="default 120 (smoke 2)")
    p.add_argument(
        "--bkd-batch", type=int, default=None, help="default 128 per GPU, the reference's SEW runs (smoke 2)"
    )
    p.add_argument("--calib-batch", type=int, default=None, help="default 128 (smoke 2)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per variant (default 2; smoke 1)")
    p.add_argument("--reps", type=int, default=None, help="timed steps per variant (default 5; smoke 2)")
    p.add_argument(
        "--sections", default=",".join(SHARES), help="comma-separated subset of " + ",".join(SHARES)
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: sj_common.threads)")
    a = p.parse_args(argv)
    small = a.smoke
    defaults = dict(
        budget_s=240 if small else 480, transfer_batch=2 if small else 120, bkd_batch=2 if small else 128
    )
    defaults.update(calib_batch=2 if small else 128, warmup=1 if small else 2, reps=2 if small else 5)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.amp = [x.strip() for x in a.amp.split(",") if x.strip()]
    bad = [x for x in a.amp if x not in ("off", "float16", "bfloat16")]
    if bad:
        p.error(f"--amp: expected off, float16 or bfloat16, got {', '.join(bad)}")
    a.sections = [x.strip() for x in a.sections.split(",") if x.strip()]
    if any(s not in SHARES for s in a.sections):
        p.error(f"--sections: expected names among {', '.join(SHARES)}, got {a.sections}")
    a.sizes = SMOKE if small else PAPER
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    apply_thread_policy(a.threads)
    import torch

    clock = Clock(a.budget_s)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() and not a.smoke else "cpu"))
    capture_spikingjelly_log()
    report = {
        "schema": 1,
        "command": " ".join(
            ["python benchmarks/gpu.py", *(argv if argv is not None else sys.argv[1:])]
        ).strip(),
        "smoke": a.smoke,
        "budget_s": a.budget_s,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sections": {},
    }
    report["sections"]["environment"] = {"status": "ok", **environment(device)}
    print(json.dumps(report["sections"]["environment"], default=str), flush=True)
    runners = {
        "cuda_tests": lambda d: pytest_section(a, d, "cuda", None),
        "cupy_sj14": lambda d: sj14_section(a, d),
        "transfer": lambda d: transfer_section(a, device, d),
        "bkd": lambda d: bkd_section(a, device, d),
        "calib": lambda d: calib_section(a, device, d),
    }
    done: set[str] = set()
    for name in SHARES:
        deadline = clock.deadline(name, done)
        t = time.monotonic()
        if name not in a.sections:
            sec = {"status": "skipped: not in --sections"}
        elif name in ("transfer", "bkd", "calib") and device.type != "cuda" and not a.smoke:
            sec = {
                "status": "skipped: no CUDA device (the papers' sizes do not fit the budget on a CPU; --smoke)"
            }
        else:
            try:
                sec = runners[name](deadline)
                rows = sec.get("rows")
                if rows is not None and "status" not in sec:
                    bad = [r["status"] for r in rows if not r["status"].startswith(("ok", "skipped"))]
                    sec["status"] = f"failed: {'; '.join(bad)}" if bad else summarise(rows)
            except Skip as s:
                sec = {"status": f"skipped: {s}"}
            except Exception as e:  # noqa: BLE001 - the next section still runs
                sec = {"status": f"failed: {first_line(e)}", "traceback": traceback.format_exc()[-3000:]}
        sec.update(seconds=round(time.monotonic() - t, 1), allowance_s=round(deadline - t, 1))
        report["sections"][name] = sec
        done.add(name)
        free_memory()
        write(report, out, clock)
        print(f"[{clock.elapsed():6.1f} s] {name}: {sec['status']}", flush=True)
    report["sections"]["environment"]["spikingjelly_log"] = SJ_LOG[:200]
    write(report, out, clock)
    print((out / "gpu.md").read_text())
    print(f"wrote {out / 'gpu.json'} and {out / 'gpu.md'}")
    return report


def summarise(rows: list[dict]) -> str:
    if all(r["status"].startswith("skipped") for r in rows):
        return "skipped: " + "; ".join(sorted({r["status"][len("skipped: ") :] for r in rows}))
    return "ok"


def sj14_section(a, deadline: float) -> dict:
    if not a.sj14:
        raise Skip(
            "SpikingJelly 0.0.0.0.14 not installed (pass --sj14 DIR, a pip --target folder holding it)"
        )
    if not (Path(a.sj14) / "spikingjelly").is_dir():
        raise Skip(f"--sj14 {a.sj14}: no spikingjelly package in that folder")
    return pytest_section(a, deadline, "cuda and compat", a.sj14)


if __name__ == "__main__":
    main()

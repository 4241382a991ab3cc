"""Run the installed console scripts (``sj-calib``, ``sj-transfer``, ``sj-bkd``) as a user does: subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float


def env() -> dict[str, str]:
    """One CPU thread, passive OpenMP waits: the tests share a small machine."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def script(name: str, *args: str, cwd: str | Path | None = None, timeout: float = 600) -> Result:
    """``<venv>/bin/<name> args...``: exit status, stdout, stderr and wall time."""
    exe = BIN / name
    assert exe.is_file(), (
        f"{exe}: the console script is not installed (pip install -e ./{name.replace('-', '_')})"
    )
    t0 = time.time()
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr, time.time() - t0)


def shell(command: str, cwd: str | Path, timeout: float = 900) -> Result:
    """A README command line (``A && B``) in bash, with the venv's scripts first on PATH."""
    e = env()
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    t0 = time.time()
    p = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout
    )
    return Result(p.returncode, p.stdout, p.stderr, time.time() - t0)


def scripts(
    *runs: tuple[str, list[str]], cwd: str | Path | None = None, timeout: float = 600
) -> list[Result]:
    """Several console-script runs at once (``[(name, args), ...]``), results in order."""
    procs = []
    for name, args in runs:
        p = subprocess.Popen(
            [str(BIN / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            cwd=cwd,
        )
        procs.append((p, time.time()))
    out = []
    for p, t0 in procs:
        o, e = p.communicate(timeout=timeout)
        out.append(Result(p.returncode, o, e, time.time() - t0))
    return out


def usage_errors(name: str, cases: list[tuple[list[str], str]], cwd: str | Path) -> None:
    """Each ``(args, key)`` exits with status 2 in seconds, one stderr line naming ``key``, no traceback, no run."""
    results = scripts(
        *((name, args) for args, _ in cases), cwd=cwd, timeout=300
    )  # at once: one start-up each
    for (args, key), r in zip(cases, results):
        lines = r.err.strip().splitlines()
        assert r.code == 2, (args, r.code, r.err)
        assert len(lines) == 1 and key in lines[0] and "Traceback" not in r.err, (args, r.err)
        assert r.seconds < 120, (args, "a config error must come before any work")
    assert not (Path(cwd) / "runs").exists(), "a refused run wrote nothing"


def eval_from_reference(name: str, config: Path, reference: Path, out: Path) -> dict:
    """``<name> eval --config CONFIG --from-reference FILE --out OUT`` exits 0; returns its results.json."""
    import json

    r = script(name, "eval", "--config", str(config), "--from-reference", str(reference), "--out", str(out))
    assert r.code == 0, r.err[-2000:]
    res = json.loads((out / "results.json").read_text())
    assert res["checkpoint"] == str(reference) and res["test"]["n"] > 0
    return res

"""Checks shared by the notebook tests: the stored copy shows its results, and a smoke re-run works."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

MAX_BYTES = 300 * 1024


def check_stored_outputs(path: Path, min_images: int = 1):
    """The notebook as committed: every code cell executed with outputs kept (opened without running, it
    shows its results), at least ``min_images`` PNG figures, no error output, under 300 KB."""
    nbformat = pytest.importorskip("nbformat")
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name}: {size} B, expected < {MAX_BYTES} (compressed figures, no dumps)"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name}: store it executed"
    outputs = [o for c in code for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored error output {errors[0].get('ename')}: {errors[0].get('evalue')}"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= min_images, f"{path.name}: {len(images)} stored figures, expected >= {min_images}"
    assert sum(1 for c in code if c.get("outputs")) >= len(code) // 2, f"{path.name}: most cells show nothing"
    return nb


def run_smoke(path: Path, cwd: Path, monkeypatch):
    """Execute a copy of the notebook (outputs cleared) with ``SJ_SMOKE=1`` in ``cwd``; returns it run."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = copy.deepcopy(nbformat.read(path, as_version=4))
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    monkeypatch.setenv("SJ_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny nets: avoid 2-thread spin-waiting on a shared CPU
    monkeypatch.chdir(cwd)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def text_of(nb) -> str:
    return "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def images_of(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)

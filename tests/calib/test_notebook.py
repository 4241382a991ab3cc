"""examples/calib.ipynb runs top to bottom with its smallest settings (SJ_SMOKE=1)."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "calib.ipynb"


def test_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), "clear outputs"
    monkeypatch.setenv("SJ_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny nets: avoid 2-thread spin-waiting on a shared CPU
    monkeypatch.chdir(tmp_path)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert (tmp_path / "runs" / "calib_notebook" / "sweep" / "sweep.png").is_file()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if c.cell_type == "code")
    assert "calibrated" in text and os.environ["SJ_SMOKE"] == "1"

"""examples/bkd.ipynb runs top to bottom with its smallest settings (SJ_SMOKE=1)."""

import os
from pathlib import Path

import pytest

NB = Path(__file__).parents[2] / "examples" / "bkd.ipynb"


def test_notebook_smoke(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("SJ_SMOKE", "1")
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(NB, as_version=4)
    assert os.environ["SJ_SMOKE"] == "1"
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "student + BKD (mixed)" in text and "teacher (CNN)" in text

"""examples/calib.ipynb: stored executed with its figures, and runs top to bottom in smoke mode (SJ_SMOKE=1)."""

from pathlib import Path

import pytest

from ..notebook_check import check_stored_outputs, images_of, run_smoke, text_of

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "calib.ipynb"


@pytest.mark.slow
def test_stored_notebook_shows_its_results():
    nb = check_stored_outputs(NOTEBOOK, min_images=5)
    text = text_of(nb)
    assert "QCFS ANN test accuracy" in text and "calibrated acc (%)" in text


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    nb = run_smoke(NOTEBOOK, tmp_path, monkeypatch)
    assert (tmp_path / "runs" / "calib_notebook" / "sweep" / "sweep.png").is_file()
    for name in ("ann_training", "accuracy_vs_T", "offset_histogram", "firing_rates"):
        assert (tmp_path / "runs" / "calib_notebook" / "figures" / f"{name}.png").is_file(), name
    assert "calibrated" in text_of(nb) and images_of(nb) >= 5

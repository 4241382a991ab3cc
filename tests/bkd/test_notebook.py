"""examples/bkd.ipynb: stored executed with its figures, and runs top to bottom in smoke mode (SJ_SMOKE=1)."""

from pathlib import Path

import pytest

from ..notebook_check import check_stored_outputs, images_of, run_smoke, text_of

NB = Path(__file__).parents[2] / "examples" / "bkd.ipynb"
FIGURES = ("distillation", "feature_maps")


@pytest.mark.slow
def test_stored_notebook_shows_its_results():
    nb = check_stored_outputs(NB, min_images=len(FIGURES))
    text = text_of(nb)
    assert "student + BKD (mixed)" in text and "teacher (CNN)" in text


@pytest.mark.slow
def test_notebook_smoke(tmp_path, monkeypatch):
    nb = run_smoke(NB, tmp_path, monkeypatch)
    text = text_of(nb)
    assert "student + BKD (mixed)" in text and "teacher (CNN)" in text
    for name in FIGURES:
        assert (tmp_path / "runs" / "nb_bkd" / "figures" / f"{name}.png").is_file(), name
    assert images_of(nb) >= len(FIGURES)

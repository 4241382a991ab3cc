"""examples/transfer.ipynb: stored executed with its figures, and runs top to bottom in smoke mode (SJ_SMOKE=1)."""

from pathlib import Path

import pytest

from ..notebook_check import check_stored_outputs, images_of, run_smoke, text_of

NOTEBOOK = Path(__file__).parents[2] / "examples" / "transfer.ipynb"
FIGURES = (
    "event_frames",
    "schedule",
    "curves",
    "alignment",
    "replacement",
    "accuracy_vs_ratio",
    "analysis_cam",
    "analysis_landscape",
    "analysis_cka",
)


def test_stored_notebook_shows_its_results():
    nb = check_stored_outputs(NOTEBOOK, min_images=len(FIGURES))
    text = text_of(nb)
    assert "baseline val" in text and "transfer val" in text and "mean CKA diagonal" in text


@pytest.mark.slow
def test_notebook_runs_in_smoke_mode(tmp_path, monkeypatch):
    nb = run_smoke(NOTEBOOK, tmp_path, monkeypatch)
    text = text_of(nb)
    assert "baseline val" in text and "transfer val" in text
    assert "mean CKA diagonal" in text  # the analysis section's summary of analysis.json
    assert (tmp_path / "runs" / "nb_transfer" / "analysis" / "analysis.json").is_file()
    for name in FIGURES:
        assert (tmp_path / "runs" / "nb_transfer" / "figures" / f"{name}.png").is_file(), name
    assert images_of(nb) >= len(FIGURES)

"""``examples/demo.py``'s report.html on a small synthetic results dict (the demo itself is slow: test_demo.py):
per section a headline first, then the figures, the raw numbers and per-epoch curves folded in <details>; and
the overview chart has one panel per section with seeds folded into a mean."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("demo")


def _curve(*vals):
    return [{"epoch": i + 1, "val_acc1": v, "train_loss": 1.0 / (i + 1)} for i, v in enumerate(vals)]


RESULTS = {
    "quick": True,
    "seed": 0,
    "threads": 1,
    "timings_s": {"event_vgg": 1.5, "calib": 2.5, "transfer": 3.5, "bkd": 4.5},
    "wall_time_s": 12.0,
    "event_vgg": {
        "T": 4,
        "epochs": 2,
        "test_acc": 91.5,
        "best_val_acc": 90.25,
        "energy_pj_per_sample": 2_500_000.0,
        "energy": {"energy_pj_total": 160_000_000.0},
        "curve": _curve(80.0, 90.25),
    },
    "calib": {
        "ann_acc": 96.0,
        "T": [1, 2, 4, 8],
        "rho": 4,
        "uncalibrated": [84.5, 94.0, 96.0, 95.5],
        "calibrated": [95.5, 95.75, 96.0, 95.25],
        "curves": {"ann": _curve(90.0, 95.0, 96.5)},
    },
    "transfer": {
        "train_ratio": 0.02,
        "baseline_acc": 58.0,
        "transfer_acc": 54.875,
        "paper_acc": 67.75,
        "epochs": 2,
        "seed": 0,
        "curves": {"transfer_baseline": _curve(40.0, 55.0), "transfer_transfer": _curve(41.0, 54.0)},
    },
    "bkd": {
        "teacher_acc": 97.25,
        "student_acc": 81.75,
        "distilled_acc": 83.5,
        "gain": 1.625,
        "gain_se": 0.5,
        "per_seed": [
            {"seed": 0, "student_acc": 80.0, "distilled_acc": 82.0},
            {"seed": 1, "student_acc": 83.5, "distilled_acc": 85.0},
        ],
        "curves": {
            "teacher": _curve(90.0, 97.0),
            "student_s0": _curve(50.0, 80.0),
            "student_s1": _curve(52.0, 83.0),
            "distilled_s0": _curve(55.0, 82.0),
            "distilled_s1": _curve(56.0, 85.0),
        },
    },
}


def test_headlines_say_what_changed_by_how_much_and_where(demo):
    h = {s: demo.headline(s, RESULTS[s]) for s in demo.SECTIONS}
    # calib: the largest gain is at T=1 (84.5 -> 95.5, +11.0); every calibrated value is within 1 point of the
    # ANN (96.0). In `far`, 95.0 is exactly 1 point below (the boundary: counts), 94.75 and 90.0 do not.
    assert "most at T=1: 84.5% → 95.5% (+11.0 points; QCFS ANN 96.0%, rho=4)" in h["calib"]
    assert "within 1 point of the ANN at T = 1, 2, 4, 8." in h["calib"]
    far = {**RESULTS["calib"], "calibrated": [94.75, 95.0, 96.0, 90.0]}
    assert "within 1 point of the ANN at T = 2, 4." in demo.headline("calib", far)
    # transfer: a loss is called a loss, with its size (58.0 -> 54.875: 3.1 points down)
    assert (
        "lowered the event test accuracy by 3.1 points" in h["transfer"] and "(+9.8 points)" in h["transfer"]
    )
    assert "raised the student's test accuracy by 1.62 points ± 0.50 SE over 2 paired seeds" in h["bkd"]
    assert "91.5% test accuracy" in h["event_vgg"] and "2.5 uJ per sample" in h["event_vgg"]
    assert demo.headline("calib", {"T": [1]}).startswith("No headline")
    assert demo.headline("bkd", {"skipped": "sj-bkd is not installed"}) == "Skipped: sj-bkd is not installed."


def test_report_reads_top_down_with_details_folded(demo, tmp_path):
    fig = demo.Figures(tmp_path)
    png = tmp_path / "calib_accuracy_vs_T.png"
    demo.overview_figure({"calib": RESULTS["calib"]["curves"]}, png)  # any real PNG
    fig.made = {"calib": [("Accuracy against T", png)]}
    page = demo.write_report(RESULTS, fig, tmp_path).read_text()
    assert "<pre>" not in page  # the console's closing table is not dumped into the page
    sec = page[page.index("<h2 id='calib'>") : page.index("<h2 id='transfer'>")]
    # headline, then figure, then the folded numbers and curves, in this order
    i_head, i_fig = sec.index("class='headline'"), sec.index("<figure>")
    i_num, i_cur = sec.index("<summary>All numbers"), sec.index("<summary>Per-epoch curves (1 run)")
    assert i_head < i_fig < i_num < i_cur
    # every raw number sits inside <details>, never in the open page
    details = "".join(re.findall(r"<details>.*?</details>", sec, flags=re.S))
    for v in RESULTS["calib"]["uncalibrated"]:
        assert demo._fmt(v) in details
    assert "96.50" in details  # a per-epoch value
    assert page.count("class='headline'") == 4 and "<h2>At a glance</h2>" in page
    # the glance list links each section
    for s in demo.SECTIONS:
        assert f"<a href='#{s}'>" in page


def test_overview_has_one_panel_per_section_and_folds_seeds(demo, tmp_path):
    plt = pytest.importorskip("matplotlib")
    del plt
    curves = {s: RESULTS[s]["curves"] for s in ("calib", "transfer", "bkd")}
    curves["event_vgg"] = {"event VGG": RESULTS["event_vgg"]["curve"]}
    seen = {}

    from sj_common import plots

    real = plots.save_figure

    def keep(fig, path, **kw):
        seen["fig"] = fig
        return real(fig, path, **kw)

    plots.save_figure = keep
    try:
        demo.overview_figure(curves, tmp_path / "accuracy.png")
    finally:
        plots.save_figure = real
    axes = seen["fig"].axes
    assert [ax.get_title() for ax in axes] == ["event VGG", "sj-calib", "sj-transfer", "sj-bkd"]
    bkd = next(ax for ax in axes if ax.get_title().startswith("sj-bkd"))
    labels = sorted(line.get_label() for line in bkd.lines)
    assert labels == ["distilled (mean of 2)", "student (mean of 2)", "teacher"]
    mean = next(line for line in bkd.lines if line.get_label().startswith("student"))
    assert list(mean.get_ydata()) == [51.0, 81.5]
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"

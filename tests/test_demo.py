"""The README's main demo (``examples/demo.py --quick``) runs end to end and writes what it promises:
results.json, every figure, one self-contained report.html with every number, and the closing table."""

import base64
import importlib
import json
import re
import struct
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIGURES = {
    "overview": ["accuracy"],
    "event_vgg": ["events", "event_vgg_firing_rates"],
    "calib": ["calib_accuracy_vs_T", "calib_offset_histogram", "calib_firing_rates", "calib_latency"],
    "transfer": ["transfer_alignment", "transfer_replacement", "transfer_curves"],
    "bkd": ["bkd_distillation", "bkd_feature_maps"],
}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_demo_quick_writes_every_section(tmp_path, monkeypatch, one_thread, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    demo = importlib.import_module("demo")
    out = tmp_path / "demo"
    res = demo.main(["--out", str(out), "--quick", "--threads", "1"])
    printed = capsys.readouterr().out
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["timings_s"]) == {"event_vgg", "calib", "transfer", "bkd"}
    acc = [
        saved["event_vgg"]["test_acc"],
        saved["transfer"]["baseline_acc"],
        saved["transfer"]["transfer_acc"],
        saved["bkd"]["teacher_acc"],
        saved["bkd"]["student_acc"],
        saved["bkd"]["distilled_acc"],
        saved["calib"]["ann_acc"],
        *saved["calib"]["calibrated"],
    ]
    assert all(20.0 < a <= 100.0 for a in acc), acc  # trained for real: far above chance (10%)
    assert res["quick"] is True and len(saved["calib"]["calibrated"]) == len(saved["calib"]["T"])

    # every figure, each a real image; no figure failed
    assert "figure_errors" not in saved, saved.get("figure_errors")
    assert saved["figures"] == {s: [f"{n}.png" for n in names] for s, names in FIGURES.items()}
    for names in FIGURES.values():
        for n in names:
            w, h = _png_size((out / f"{n}.png").read_bytes())
            assert w > 300 and h > 150, n
    # the accuracy plot: a curve per trained model, epochs 1-based (a 1-epoch run is at epoch 1)
    curves = {"event VGG": saved["event_vgg"]["curve"]}
    for s in ("calib", "transfer", "bkd"):
        curves.update({f"{s}: {k}": c for k, c in saved[s]["curves"].items()})
    assert len(curves) >= 7 and saved["event_vgg"]["curve"][0]["epoch"] == 1
    assert len(saved["transfer"]["curves"]["transfer_transfer"]) == saved["transfer"]["epochs"]
    # energy figures name unit and scope
    assert (
        saved["event_vgg"]["energy_pj_per_sample"] > 0 and "energy_pj_total" in saved["event_vgg"]["energy"]
    )

    # report.html: self-contained (every figure embedded as PNG), every headline number in it
    page = (out / "report.html").read_text()
    assert "src='http" not in page and 'src="http' not in page
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(imgs) == sum(map(len, FIGURES.values()))
    assert all(_png_size(base64.b64decode(b))[0] > 300 for b in imgs)
    for v in acc + saved["calib"]["uncalibrated"]:
        assert demo._fmt(v) in page
    # the closing table prints every headline number in full (lists too), then the report's path
    table = printed[printed.rindex("section ") :]
    for v in [*acc, saved["calib"]["uncalibrated"], saved["calib"]["T"]]:
        assert demo._fmt(v) in table, v
    assert printed.strip().splitlines()[-1] == f"report: {(out / 'report.html').resolve()}"
    # progress: every section starts, reports epochs of its runs, and ends
    for s in ("event_vgg", "calib", "transfer", "bkd"):
        assert re.search(rf"\] {s}: .* \.\.\.", printed) and f"{s}: done in" in printed
        assert re.search(rf"\[{s} +\d+ s\] .*epoch 1/", printed), s

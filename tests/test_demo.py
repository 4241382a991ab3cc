"""The README's main demo (``examples/demo.py --quick``) runs end to end and writes what it promises."""

import importlib
import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_demo_quick_writes_every_section(tmp_path, monkeypatch, one_thread):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    demo = importlib.import_module("demo")
    res = demo.main(["--out", str(tmp_path / "demo"), "--quick"])
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert (tmp_path / "demo" / "accuracy.png").is_file()
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

"""The BKD section of ``examples/demo.py``: teacher, plain student and distilled student on MNIST-5k.

``run(out, quick, seed)`` returns ``{"teacher_acc", "student_acc", "distilled_acc"}`` (test top-1, %),
all three trained for real with the shared engine on the embedded MNIST-5k data (the ``mnist5k``
config: a small CNN teacher, a tiny SEW-ResNet student, mixed BKD + WSLD). ``quick`` trains on fewer
images for fewer steps (<= 45 s on 2 CPU cores); the full run uses the config as is.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .recipe import build_data, load_config, train_student, train_teacher


def run(out: Path, quick: bool, seed: int = 0) -> dict:
    out = Path(out)
    cfg = load_config("mnist5k")
    cfg["train"]["seed"] = cfg["teacher"]["train"]["seed"] = seed
    if quick:
        cfg["data"].update(train_subset=300, T=2)
        for section in (cfg["train"], cfg["teacher"]["train"]):
            section.update(epochs=2)
    data = build_data(cfg, seed=seed)
    common = {"progress": False}
    weights, teacher = train_teacher(cfg, data, out / "teacher", common)
    plain_cfg = copy.deepcopy(cfg)
    plain_cfg["distill"]["mode"] = "none"
    plain = train_student(plain_cfg, data, out / "student", None, common)
    distilled = train_student(cfg, data, out / "distilled", weights, common)
    return {
        "teacher_acc": teacher["test_acc1"],
        "student_acc": plain["test_acc1"],
        "distilled_acc": distilled["test_acc1"],
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/bkd_demo"), quick=True), indent=1))

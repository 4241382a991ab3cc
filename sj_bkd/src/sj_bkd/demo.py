"""The BKD section of ``examples/demo.py``: teacher, plain student and distilled student on MNIST-5k.

``run(out, quick, seed)`` returns ``{"teacher_acc", "student_acc", "distilled_acc"}`` (test top-1, %)
plus ``"setting"`` (what was run), all trained for real with the shared engine on the embedded MNIST-5k
data, in the setting of the pre-registered study (the ``mnist5k_study`` config, docs/bkd_study): the small
CNN teacher trains on the whole train split (3,500 images), the tiny SEW-ResNet student on 100 of them
(10 per class, the same for every seed: ``data.subset_seed``), so the student alone lands well below the
teacher; best epochs are selected on val; distillation mode ``mixed`` (BKD + WSLD).

``quick`` (<= 45 s on 2 idle CPU cores): one seed, teacher 1 epoch, students 6 epochs. Full: the config
as is (teacher 10 epochs, students 30), plain and distilled students for the study's 8 paired seeds
(``seed .. seed+7``); the accuracies are the means over those seeds, ``"*_std"`` their sample standard
deviations, ``"gain"`` the mean paired gain (distilled - plain, same seed), ``"gain_se"`` its standard
error (sd / sqrt(n)), and ``"per_seed"`` holds each run.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from sj_common.recipe import with_train

from .recipe import RECIPE, build_data, train_student, train_teacher

CONFIG = "mnist5k_study"  # the pre-registered study's setting (docs/bkd_study/PREREGISTRATION.md)


def _student(out: Path, name: str, overrides: dict, teacher_weights=None) -> tuple[dict, object]:
    """One student run of the study config in ``out/name`` (its data: the 100 images of data.subset_seed)."""
    cfg = with_train(RECIPE.config(CONFIG, overrides, out=str(out)), out=str(out / name))
    data = build_data(cfg)
    return train_student(cfg, data, teacher_weights), data


def run(out: Path, quick: bool, seed: int = 0) -> dict:
    start = time.time()
    out = Path(out)
    quiet = {"train.progress": False, "teacher.train.progress": False}
    epochs = {"teacher.train.epochs": 1, "train.epochs": 6} if quick else {}
    cfg = RECIPE.config(CONFIG, {**quiet, **epochs, "teacher.train.seed": seed}, out=str(out))
    seeds = [seed] if quick else [seed + i for i in range(len(cfg.study["seeds"]))]
    t_data = build_data(cfg, role="teacher")
    weights, teacher = train_teacher(cfg, t_data)
    per_seed = []
    for s in seeds:
        plain, data = _student(
            out, f"student_s{s}", {**quiet, **epochs, "train.seed": s, "distill.mode": "none"}
        )
        distilled, _ = _student(out, f"distilled_s{s}", {**quiet, **epochs, "train.seed": s}, weights)
        per_seed.append(
            {"seed": s, "student_acc": plain["test_acc1"], "distilled_acc": distilled["test_acc1"]}
        )
    mean = lambda k: round(statistics.fmean(r[k] for r in per_seed), 2)  # noqa: E731
    std = lambda k: round(statistics.stdev(r[k] for r in per_seed), 2) if len(per_seed) > 1 else 0.0  # noqa: E731
    gains = [r["distilled_acc"] - r["student_acc"] for r in per_seed]  # paired: same seed, same init
    gain_sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
    d, tr, t = cfg.distill, cfg.train, cfg.teacher
    return {
        "teacher_acc": teacher["test_acc1"],
        "student_acc": mean("student_acc"),
        "distilled_acc": mean("distilled_acc"),
        "student_std": std("student_acc"),
        "distilled_std": std("distilled_acc"),
        "gain": round(statistics.fmean(gains), 2),
        "gain_sd": round(gain_sd, 2),
        "gain_se": round(gain_sd / math.sqrt(len(gains)), 2),
        "per_seed": per_seed,
        "setting": (
            f"teacher {t.name} on all {len(t_data.train)} train images "
            f"({t.train.epochs} ep); student {cfg.student.name} T={cfg.data.T} "
            f"on {len(data.train)} images ({tr.epochs} ep, batch {tr.batch_size}); "
            f"distill mode={d.mode} alpha={d.alpha} lambda={d.lam}; "
            f"test acc %, mean ± sd over seeds {seeds}, paired gain ± SE; best epoch on val"
        ),
        "wall_time_s": round(time.time() - start, 1),
    }


if __name__ == "__main__":
    import json
    import sys

    quick = "--full" not in sys.argv
    args = [a for a in sys.argv[1:] if a != "--full"]
    print(json.dumps(run(Path(args[0] if args else "runs/bkd_demo"), quick=quick), indent=1))

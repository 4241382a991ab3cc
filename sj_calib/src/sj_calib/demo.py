"""The ``"calib"`` section of ``examples/demo.py``: QCFS ANN -> IF SNN -> offset-spike calibration on MNIST-5k.

``run(out, quick)`` trains a small QCFS CNN (L=4) through ``sj_common.engine.fit`` (model selection on the
validation split), converts it, calibrates it with rho=4 and reads the test accuracy at T = 1, 2, 4, 8
(T excludes the rho pre-simulation steps; ``out/calib/sweep.json`` has the full accounting and
``sweep.png`` the plot). quick: the ``mnist5k`` config's model, 3 epochs on all 3,500 training images, all 1,000 test
images (about 12 s on 2 idle cores); full: 10 epochs, as the README's table (about 30 s).
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["run"]


def run(out: Path, quick: bool, seed: int = 0) -> dict:
    from sj_common.cli import load_config
    from sj_common.engine import TrainConfig, fit, load_checkpoint

    from .recipe import build_ann, build_datasets
    from .sweep import sweep

    out = Path(out) / "calib"
    cfg = load_config("mnist5k", package="sj_calib")
    torch.manual_seed(seed)
    ann = build_ann(cfg)
    train, val, test = build_datasets(cfg, seed=seed)
    t = cfg["train"]
    tc = TrainConfig(
        out=str(out / "ann"),
        epochs=3 if quick else 10,
        batch_size=t["batch_size"],
        lr=t["lr"],
        optimizer=t["optimizer"],
        momentum=t["momentum"],
        weight_decay=t["weight_decay"],
        scheduler=t["scheduler"],
        seed=seed,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    fit(ann, train, val, None, config=tc)
    load_checkpoint(out / "ann" / "best.pt", ann)
    c = cfg["calib"]
    res = sweep(ann.eval(), test, c["T"], c["rho"], batch_size=250, out=out)
    return {
        "ann_acc": res["ann_acc"],
        "T": res["T"],
        "uncalibrated": res["uncalibrated"]["acc"],
        "calibrated": res["calibrated"]["acc"],
        "rho": res["rho"],
    }

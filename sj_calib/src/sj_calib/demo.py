"""The ``"calib"`` section of ``examples/demo.py``: QCFS ANN -> IF SNN -> offset-spike calibration on MNIST-5k.

``run(out, quick)`` trains a small QCFS CNN (L=4) through ``sj_common.engine.fit`` (model selection on the
validation split), converts it, calibrates it with rho=4 and reads the test accuracy at T = 1, 2, 4, 8
(T excludes the rho pre-simulation steps; ``out/calib/sweep.json`` has the full accounting and
``sweep.png`` the plot). quick: the ``mnist5k`` config's model, 3 epochs on all 3,500 training images, all 1,000 test
images (about 12 s on 2 idle cores); full: 10 epochs, as the README's table (about 30 s).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

__all__ = ["run"]


def run(out: Path, quick: bool, seed: int = 0) -> dict:
    from sj_common.engine import load_checkpoint
    from sj_common.recipe import fit_model

    from .recipe import RECIPE
    from .sweep import sweep

    out = Path(out) / "calib"
    overrides = {
        "train.epochs": 3 if quick else 10,
        "train.seed": seed,
        "train.progress": False,
        "train.tensorboard": False,
        "train.device": "cpu",
    }
    cfg = RECIPE.config("mnist5k", overrides, out=str(out / "ann"))
    data = RECIPE.build_data(cfg)
    # the test split is read by the sweep below, not by fit
    ann, _ = fit_model(lambda: RECIPE.build_model(cfg, data), replace(data, test=None), cfg.train)
    load_checkpoint(out / "ann" / "best.pt", ann)
    res = sweep(ann.eval(), data.test, cfg.calib.T, cfg.calib.rho, batch_size=250, out=out)
    return {
        "ann_acc": res["ann_acc"],
        "T": res["T"],
        "uncalibrated": res["uncalibrated"]["acc"],
        "calibrated": res["calibrated"]["acc"],
        "rho": res["rho"],
    }

"""The transfer section of ``examples/demo.py``: event-only baseline vs static-to-event transfer on MNIST-5k.

Both runs train the same small VGG-SNN with the packaged ``mnist5k`` config on the same stratified
``train_ratio`` of the emulated event twins (``sj_common.data.MNIST5kEvents``), select the epoch on the
val split and report event test accuracy in %. The full run is the packaged config as is (60 epochs, seed 0,
about 90 s on 2 idle CPU cores), i.e. one cell of the table in the README's transfer section
(``examples/transfer_table.py`` runs the whole table); ``quick`` trains the same config for 6 epochs (about
10 s).
"""

from __future__ import annotations

from pathlib import Path

from .recipe import RECIPE

__all__ = ["run"]


def run(out: Path, quick: bool, seed: int = 0, train_ratio: float = 0.1) -> dict:
    """Train baseline and transfer; returns ``{"train_ratio", "baseline_acc", "transfer_acc", ...}`` (%)."""
    out = Path(out)
    res = {}
    for method in ("baseline", "transfer"):
        overrides = {
            "data.train_ratio": float(train_ratio),
            "method.baseline": method == "baseline",
            "train.seed": seed,
            "train.progress": False,
            "train.tensorboard": False,
            **({"train.epochs": 6} if quick else {}),
        }
        res[method] = RECIPE.train(RECIPE.config("mnist5k", overrides, out=str(out / f"transfer_{method}")))
    return {
        "train_ratio": float(train_ratio),
        "baseline_acc": round(res["baseline"]["test_acc1"], 2),
        "transfer_acc": round(res["transfer"]["test_acc1"], 2),
        "baseline_val_acc": round(res["baseline"]["best_val_acc1"], 2),
        "transfer_val_acc": round(res["transfer"]["best_val_acc1"], 2),
        "epochs": res["transfer"]["config"]["epochs"],
        "seed": seed,
        "wall_time_s": round(res["baseline"]["wall_time_s"] + res["transfer"]["wall_time_s"], 1),
    }

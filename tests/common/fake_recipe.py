"""A recipe stand-in for the paired-study runner's tests: no training, results from (arm, seed, level).

Importable by name, so the runner's spawned worker processes can load it; every ``train`` call appends a
line to ``<out>/../calls.txt``, so a test can count what was trained.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

#: test accuracy per arm and seed (dyadic, so the statistics are exact)
ACC = {"base": {1: 80.0, 2: 81.0, 3: 82.0}, "new": {1: 81.5, 2: 83.0, 3: 84.5}}


class FakeRecipe:
    def config(self, name, overrides, out):
        return SimpleNamespace(name=name, overrides=dict(overrides), out=out)

    def train(self, cfg):
        ov = cfg.overrides
        arm, seed = ov["arm"], ov["train.seed"]
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        with open(Path(cfg.out).parent / "calls.txt", "a") as f:
            f.write(f"{arm} {seed} {ov.get('data.level')}\n")
        acc = ACC[arm][seed] + ov.get("data.level", 0.0)
        return {
            "test_acc1": acc,
            "best_val_acc1": acc - 1.0,
            "history": [{"epoch": 1, "train_acc1": 99.0}],
            "config": {"not": "kept"},
        }


RECIPE = FakeRecipe()

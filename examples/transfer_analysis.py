"""Grad-CAM, loss landscapes and layer-wise CKA maps of a static-to-event transfer run and its baseline.

One command writes the three figures of ``sj_common.analysis`` for a trained ``sj_transfer`` model and
its event-only baseline on the embedded default (MNIST-5k and its emulated event twin):

    python examples/transfer_analysis.py --run-dir runs/analysis                  # train both if needed
    python examples/transfer_analysis.py --run-dir runs/analysis --epochs 10      # shorter training
    python examples/transfer_analysis.py --run-dir runs/analysis --out docs/analysis

``--run-dir`` holds ``transfer/`` and ``baseline/`` run folders; when one lacks ``best.pt`` it is trained
with the CLI (``sj-transfer train --config CONFIG --out DIR [--baseline] [--epochs N]``, one process,
one thread). The rest is :func:`sj_transfer.analysis.analyze_runs` (also usable from Python and the
transfer notebook): the networks are rebuilt from each run's saved config through
``sj_transfer.recipe.RECIPE`` and read from ``best.pt`` with the engine's loader (weights only).

Writes to ``--out`` (default ``RUN_DIR/figures``):

* ``cam.png``: for a few test samples (one per class), the event frames, the static image, and the
  Grad-CAM (target: the true class, layer: the last spiking layer) of the transfer model's event head,
  of the baseline, and of the transfer model's static head on the static image.
* ``landscape.png``: 2-D loss contours of the event head around each model's trained weights along
  the same two seeded filter-normalised directions (seeded per parameter name: identical on the shared
  layers), and the 1-D slices. Loss: ``--loss tet`` (default; the mean per-step cross-entropy, the
  event objective both models are trained on) or ``ce`` (cross-entropy of the time-averaged logits).
  Evaluated on a fixed seeded subset of the test split (``--subset``, default 256).
* ``cka.png``: linear CKA between every layer of the feature extractor on static inputs (rows) and on
  event inputs (columns) of the same test samples, for each model; and the transfer model against the
  baseline on event inputs.
* ``analysis.json``: accuracies, the landscape summaries (loss at theta, mean rise over the grid, 1-D
  curvature at theta), the CKA diagonals and the wall time of every part; ``landscape.npz``: the grids.

Cost on 2 CPU cores (one thread): see ``analysis.json`` ``seconds``; the 2-D landscapes (11 x 11 points,
256 samples, both models) dominate and take a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("transfer", "baseline")


def _train(kind: str, out: Path, config: str, epochs: int | None) -> None:
    exe = Path(sys.executable).parent / "sj-transfer"  # the console script of this environment
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "sj_transfer.cli"]
    cmd = [*cli, "train", "--config", config, "--out", str(out)]
    if kind == "baseline":
        cmd.append("--baseline")
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/analysis", help="holds transfer/ and baseline/ run folders")
    ap.add_argument("--config", default="mnist5k", help="sj_transfer config (for training and as a fallback)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs when a run is missing")
    ap.add_argument("--out", default=None, help="figure folder (default RUN_DIR/figures)")
    ap.add_argument("--cam-method", default="gradcam", help="a key of sj_common.analysis.METHODS")
    ap.add_argument("--subset", type=int, default=256, help="test samples of the loss landscape")
    ap.add_argument("--grid", type=int, default=11, help="2-D landscape points per axis (odd)")
    ap.add_argument("--line", type=int, default=21, help="1-D landscape points (odd)")
    ap.add_argument(
        "--radius", type=float, default=1.0, help="landscape half-width (filter-normalised units)"
    )
    ap.add_argument("--cka-samples", type=int, default=256, help="test samples of the CKA maps")
    ap.add_argument("--seed", type=int, default=0, help="directions and subsets")
    ap.add_argument(
        "--loss",
        default="tet",
        choices=["tet", "ce"],
        help="landscape loss: tet (mean per-step cross-entropy: the event objective both models train on) "
        "or ce (cross-entropy of the time-averaged logits)",
    )
    args = ap.parse_args(argv)

    import torch
    from sj_transfer.analysis import analyze_runs

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "figures"
    seconds: dict[str, float] = {}
    for kind in KINDS:
        if not (run_dir / kind / "best.pt").is_file():
            t0 = time.perf_counter()
            _train(kind, run_dir / kind, args.config, args.epochs)
            seconds[f"train_{kind}"] = time.perf_counter() - t0
    report = analyze_runs(
        run_dir / "transfer",
        run_dir / "baseline",
        out,
        subset=args.subset,
        grid=args.grid,
        line=args.line,
        radius=args.radius,
        cka_samples=args.cka_samples,
        seed=args.seed,
        cam_method=args.cam_method,
        loss=args.loss,
        config=args.config,
        seconds=seconds,
    )
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

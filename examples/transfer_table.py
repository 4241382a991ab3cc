"""Baseline vs static-to-event transfer over several seeds and train ratios on the embedded default.

Trains the packaged ``mnist5k`` config of sj_transfer (event-only baseline and the full method) for every
(train ratio, seed), and prints the table of event test accuracy (mean +- sample std over seeds, %) with
the margin. Every run is one process with one thread; ``--jobs`` runs that many at once.

    python examples/transfer_table.py --out runs/transfer_table                 # 0.1 and 0.2, seeds 0 1 2
    python examples/transfer_table.py --out runs/t --ratios 0.1 --seeds 0 --epochs 2   # a smoke run

Writes ``table.json`` (every run and the summary) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _one(job: dict) -> dict:
    import torch
    from sj_transfer.recipe import RECIPE

    torch.set_num_threads(1)
    overrides = {
        "data.train_ratio": job["ratio"],
        "method.baseline": job["method"] == "baseline",
        "train.seed": job["seed"],
        "train.progress": False,
        "train.tensorboard": False,
    }
    for key in ("epochs", "max_steps_per_epoch"):
        if job[key]:
            overrides[f"train.{key}"] = job[key]
    res = RECIPE.train(RECIPE.config("mnist5k", overrides, out=job["out"]))
    return {**job, "test_acc1": res["test_acc1"], "val_acc1": res["best_val_acc1"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/transfer_table")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    ap.add_argument("--max-steps-per-epoch", type=int, default=None, help="for smoke runs")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    out = Path(args.out)
    jobs = [
        {
            "ratio": r,
            "seed": s,
            "method": m,
            "epochs": args.epochs,
            "max_steps_per_epoch": args.max_steps_per_epoch,
            "out": str(out / f"r{r}_s{s}_{m}"),
        }
        for r in args.ratios
        for s in args.seeds
        for m in ("transfer", "baseline")  # the slower runs first
    ]
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        runs = list(pool.map(_one, jobs))
    summary = []
    print(f"{'ratio':>5} | {'baseline %':>13} | {'transfer %':>13} | margin | spread (max std)")
    for r in args.ratios:
        acc = {
            m: [x["test_acc1"] for x in runs if x["ratio"] == r and x["method"] == m]
            for m in ("baseline", "transfer")
        }
        mean = {m: statistics.fmean(v) for m, v in acc.items()}
        std = {m: statistics.stdev(v) if len(v) > 1 else 0.0 for m, v in acc.items()}
        row = {
            "train_ratio": r,
            "seeds": args.seeds,
            **{f"{m}_{k}": d[m] for m in acc for k, d in (("mean", mean), ("std", std))},
        }
        row["margin"] = mean["transfer"] - mean["baseline"]
        summary.append(row)
        print(
            f"{r:>5} | {mean['baseline']:6.2f} +- {std['baseline']:4.2f} | {mean['transfer']:6.2f} +- {std['transfer']:4.2f}"
            f" | {row['margin']:+5.2f}  | {max(std.values()):.2f}"
        )
    result = {"runs": runs, "summary": summary}
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

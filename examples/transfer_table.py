"""Baseline vs static-to-event transfer over several seeds and train ratios on the embedded default.

Trains the packaged ``mnist5k`` config of sj_transfer (event-only baseline and the full method) for every
(train ratio, seed), and prints the table of event test accuracy (mean +- sample std over seeds, %) with
the margin. Every run is one process with one thread, ``--jobs`` at once, through the paired-study runner
(:mod:`sj_common.study`; finished runs are kept under ``--out/runs`` and skipped when run again).

    python examples/transfer_table.py --out runs/transfer_table                 # 0.1 and 0.2, seeds 0 1 2
    python examples/transfer_table.py --out runs/t --ratios 0.1 --seeds 0 --epochs 2   # a smoke run

Writes ``table.json`` (every run and the summary) under ``--out``.

The pre-registered studies (issues 11 and 19) are ``examples/transfer_study.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sj_common.study import Criterion, PairedStudy, run_study, summarize


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
    extra = {
        f"train.{k}": v
        for k, v in (("epochs", args.epochs), ("max_steps_per_epoch", args.max_steps_per_epoch))
        if v
    }
    study = PairedStudy(
        name="transfer_table",
        recipe="sj_transfer.recipe:RECIPE",
        config="mnist5k",
        arms={"transfer": {}, "baseline": {"method.baseline": True}},  # the slower runs first
        control="baseline",
        seeds=args.seeds,
        criterion=Criterion("transfer", min_gain=0.0, min_se=2.0),
        factor="data.train_ratio",
        levels=args.ratios,
    )
    recs = run_study(study, out, jobs=args.jobs, extra=extra)
    runs = [
        {
            "ratio": r["level"],
            "seed": r["seed"],
            "method": r["arm"],
            "test_acc1": r["results"]["test_acc1"],
            "val_acc1": r["results"]["best_val_acc1"],
        }
        for r in recs
    ]
    summary, rows = [], summarize(study, recs)["rows"]
    print(f"{'ratio':>5} | {'baseline %':>13} | {'transfer %':>13} | margin | spread (max std)")
    for row in rows:
        if row["arm"] != "transfer":
            continue
        base = next(b for b in rows if b["arm"] == "baseline" and b["level"] == row["level"])
        mean = {"transfer": row["test_mean"], "baseline": base["test_mean"]}
        std = {"transfer": row["test_sd"] or 0.0, "baseline": base["test_sd"] or 0.0}
        summary.append(
            {
                "train_ratio": row["level"],
                "seeds": args.seeds,
                **{f"{m}_{k}": d[m] for m in mean for k, d in (("mean", mean), ("std", std))},
                "margin": mean["transfer"] - mean["baseline"],
            }
        )
        print(
            f"{row['level']:>5} | {mean['baseline']:6.2f} +- {std['baseline']:4.2f} | {mean['transfer']:6.2f} +- "
            f"{std['transfer']:4.2f} | {summary[-1]['margin']:+5.2f}  | {max(std.values()):.2f}"
        )
    result = {"runs": runs, "summary": summary}
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

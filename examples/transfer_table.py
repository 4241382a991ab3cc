"""Baseline vs static-to-event transfer over several seeds and train ratios on the embedded default.

Trains the packaged ``mnist5k`` config of sj_transfer (event-only baseline and the full method) for every
(train ratio, seed), and prints the table of event test accuracy (mean +- sample std over seeds, %) with
the margin. Every run is one process with one thread; ``--jobs`` runs that many at once.

    python examples/transfer_table.py --out runs/transfer_table                 # 0.1 and 0.2, seeds 0 1 2
    python examples/transfer_table.py --out runs/t --ratios 0.1 --seeds 0 --epochs 2   # a smoke run

Writes ``table.json`` (every run and the summary) under ``--out``.

``--study`` runs the pre-registered study of issue 11 instead (docs/transfer_study/PREREGISTRATION.md):
four arms (event-only baseline, the full method with the paper's defaults, alpha = 0 with the static
branch and sliding kept, one shared head) on the noisy event twin, paired seeds, one run at a time with
one thread; it writes ``results.md``, ``results.json`` and ``study.png`` into ``--docs``. Finished runs are
kept (one JSON each under ``--out/runs``), so an interrupted study continues where it stopped.

    python examples/transfer_table.py --study                       # the whole pre-registered study
    python examples/transfer_table.py --study --report-only         # tabulate what has finished
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
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


# ----------------------------------------------------------------------------------------------------
# The pre-registered study (issue 11; docs/transfer_study/PREREGISTRATION.md). Nothing below may change
# after the study's first transfer run: the protocol is fixed in the pre-registration's commit.
# ----------------------------------------------------------------------------------------------------

#: Held equal across arms (overrides of the packaged ``mnist5k`` config), fixed by the baseline-only
#: calibration (PREREGISTRATION.md).
STUDY_SETTING: dict = {
    "data.preset": "noisy",
    "data.balanced_sampling": True,
    "data.samples_per_epoch": 384,
    "train.epochs": 10,
    "model.cfg": [32, "P", 64, "P"],
}
#: The arms: overrides on top of STUDY_SETTING. "full" is the method with the paper's defaults
#: (learnable c_t, alpha 0.5, sliding k=3, BN running statistics from both passes).
STUDY_ARMS: dict = {
    "baseline": {"method.baseline": True},
    "full": {"method.regularization": "learnable", "method.event_bn_stats": False},
    "alpha0": {"method.regularization": "learnable", "method.event_bn_stats": False, "method.alpha": 0.0},
    "shared_head": {
        "method.regularization": "learnable",
        "method.event_bn_stats": False,
        "model.shared_head": True,
    },
}
STUDY_RATIOS = [0.02]
STUDY_SEEDS = [0, 1, 2, 3, 4]
PRIMARY = "full"  # the arm the success criterion is about; the others are secondary


def study_overrides(arm: str, ratio: float, seed: int) -> dict:
    """The config overrides of one study run (same init seed, event subset and sampling draws per seed)."""
    return {
        **STUDY_SETTING,
        **STUDY_ARMS[arm],
        "data.train_ratio": ratio,
        "data.subset_seed": seed,
        "train.seed": seed,
        "train.progress": False,
        "train.tensorboard": False,
    }


def _study_run(arm: str, ratio: float, seed: int, out: Path, extra: dict) -> dict:
    import torch
    from sj_transfer.recipe import RECIPE

    torch.set_num_threads(1)
    rec_path = out / "runs" / f"r{ratio}_s{seed}_{arm}.json"
    if rec_path.is_file():  # resumable: a finished run is not repeated
        return json.loads(rec_path.read_text())
    t0 = time.time()
    res = RECIPE.train(
        RECIPE.config("mnist5k", {**study_overrides(arm, ratio, seed), **extra}, out=str(out / rec_path.stem))
    )
    hist = res.get("history") or []
    rec = {
        "arm": arm,
        "ratio": ratio,
        "seed": seed,
        "val_acc1": res["best_val_acc1"],
        "test_acc1": res["test_acc1"],
        "train_acc1_last": hist[-1].get("train_acc1") if hist else None,
        "num_train_events": res.get("num_train_events"),
        "wall_s": round(time.time() - t0, 1),
        "history": [
            {
                k: v
                for k, v in r.items()
                if k == "epoch"
                or k.startswith(("train_w_", "train_cka", "train_repl", "train_acc1", "val_acc1"))
            }
            for r in hist
        ],
    }
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    rec_path.write_text(json.dumps(rec))
    return rec


def summarize(runs: list[dict], arms: list[str], ratios: list[float], seeds: list[int]) -> dict:
    """Per arm and ratio: test/val mean +- sd; per transfer arm: paired gains over the baseline (same seed),
    their mean, standard error and the criterion (mean gain > 2 SE at the lowest ratio, >= 5 pairs)."""
    by = {(r["arm"], r["ratio"], r["seed"]): r for r in runs}
    rows = []
    for ratio in ratios:
        for arm in arms:
            got = [by[(arm, ratio, s)] for s in seeds if (arm, ratio, s) in by]
            if not got:
                continue
            test = [g["test_acc1"] for g in got]
            row = {
                "ratio": ratio,
                "arm": arm,
                "seeds": [g["seed"] for g in got],
                "test": test,
                "test_mean": statistics.fmean(test),
                "test_sd": statistics.stdev(test) if len(test) > 1 else 0.0,
                "val_mean": statistics.fmean(g["val_acc1"] for g in got),
                "train_acc1_last_mean": statistics.fmean(g["train_acc1_last"] for g in got),
            }
            if arm != "baseline":
                pairs = [
                    by[(arm, ratio, s)]["test_acc1"] - by[("baseline", ratio, s)]["test_acc1"]
                    for s in seeds
                    if (arm, ratio, s) in by and ("baseline", ratio, s) in by
                ]
                if pairs:
                    mean = statistics.fmean(pairs)
                    se = statistics.stdev(pairs) / math.sqrt(len(pairs)) if len(pairs) > 1 else None
                    row.update(gain=pairs, gain_mean=mean, gain_se=se, n_pairs=len(pairs))
                    row["criterion_met"] = bool(len(pairs) >= 5 and se is not None and mean > 2 * se)
            rows.append(row)
    low = min(ratios)
    primary = next((r for r in rows if r["arm"] == PRIMARY and r["ratio"] == low), None)
    complete = all((a, r, s) in by for a in arms for r in ratios for s in seeds)
    verdict = (
        "incomplete" if not complete else ("met" if primary and primary.get("criterion_met") else "not met")
    )
    return {
        "rows": rows,
        "primary_arm": PRIMARY,
        "lowest_ratio": low,
        "verdict": verdict,
        "complete": complete,
    }


def write_table(summary: dict, path: Path) -> None:
    lines = [
        "| ratio | arm | test % per seed | test mean ± sd | paired gain vs baseline (mean ± SE) | > 2 SE | val mean | train acc (last epoch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        gain = "-"
        if "gain_mean" in r:
            se = "n/a" if r["gain_se"] is None else f"{r['gain_se']:.2f}"
            gain = f"{r['gain_mean']:+.2f} ± {se} (n={r['n_pairs']})"
        met = ("yes" if r["criterion_met"] else "no") if "criterion_met" in r else "-"
        lines.append(
            f"| {r['ratio']:g} | {r['arm']} | {' / '.join(f'{a:.1f}' for a in r['test'])} | "
            f"{r['test_mean']:.2f} ± {r['test_sd']:.2f} | {gain} | {met} | {r['val_mean']:.2f} | "
            f"{r['train_acc1_last_mean']:.1f} |"
        )
    head = "INCOMPLETE (not every pre-registered run finished)\n\n" if not summary["complete"] else ""
    verdict = (
        f"\nVerdict (pre-registered criterion: arm `{summary['primary_arm']}`, mean paired test gain over the "
        f"baseline > 2 SE at ratio {summary['lowest_ratio']:g}): **{summary['verdict']}**\n"
    )
    path.write_text(head + "\n".join(lines) + "\n" + verdict)


def plot_study(runs: list[dict], summary: dict, path: Path) -> None:
    """Accuracy vs ratio (each arm: seeds as dots, mean +- sd), and over training for the primary arm
    (mean over seeds at the lowest ratio): sigma(c_t) and CKA per time step, the replaced fraction."""
    from sj_common.plots import new_figure, save_figure
    from sj_transfer.plots import step_series

    fig, axes = new_figure(1, 4, size=(15.0, 3.4))
    ax = axes[0, 0]
    arms = list(dict.fromkeys(r["arm"] for r in summary["rows"]))
    ratios = sorted({r["ratio"] for r in summary["rows"]})
    for j, arm in enumerate(arms):
        rs = [r for r in summary["rows"] if r["arm"] == arm]
        off = (j - (len(arms) - 1) / 2) * 0.04  # side by side on a log axis
        xs = [r["ratio"] * (1 + off) for r in rs]
        for x, r in zip(xs, rs):
            ax.plot([x] * len(r["test"]), r["test"], "o", color=f"C{j}", alpha=0.35, ms=3)
        ax.errorbar(
            xs,
            [r["test_mean"] for r in rs],
            yerr=[r["test_sd"] for r in rs],
            fmt="s-",
            color=f"C{j}",
            capsize=3,
            label=arm,
        )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.set_xlabel("event train ratio")
    ax.set_ylabel("event test accuracy (%)")
    ax.set_title("test accuracy (dots: seeds; mean ± sd)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    low = summary["lowest_ratio"]
    hists = [r["history"] for r in runs if r["arm"] == PRIMARY and r["ratio"] == low]
    for k, (prefix, label) in enumerate((("train_w_", "sigma(c_t)"), ("train_cka_", "CKA(static, event)"))):
        ax = axes[0, k + 1]
        series: dict = {}
        for h in hists:
            for t, pts in step_series(h, prefix).items():
                for e, v in pts:
                    series.setdefault(t, {}).setdefault(e, []).append(v)
        for t, by_e in series.items():
            es = sorted(by_e)
            ax.plot(es, [statistics.fmean(by_e[e]) for e in es], "o-", ms=2, label=f"t={t}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{PRIMARY}: {label} per time step (mean of {len(hists)} seeds)", fontsize=8)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=5, ncol=2)
    ax = axes[0, 3]
    for arm in (a for a in arms if a != "baseline"):
        hs = [r["history"] for r in runs if r["arm"] == arm and r["ratio"] == low]
        by_e: dict = {}
        for h in hs:
            for row in h:
                if isinstance(row.get("train_replaced"), float):
                    by_e.setdefault(row["epoch"], []).append(row["train_replaced"])
        es = sorted(by_e)
        if es:
            ax.plot(
                es,
                [statistics.fmean(by_e[e]) for e in es],
                "o-",
                ms=2,
                color=f"C{arms.index(arm)}",
                label=arm,
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("replaced fraction (epoch mean)")
    ax.set_title("sliding: static inputs replaced by their event twin", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=80, colors=64)


def run_study(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="the pre-registered transfer study (PREREGISTRATION.md)")
    ap.add_argument("--study", action="store_true")
    ap.add_argument("--out", default="runs/transfer_study", help="run folders and one JSON per finished run")
    ap.add_argument("--docs", default="docs/transfer_study", help="where the table, JSON and plot go")
    ap.add_argument("--arms", nargs="+", default=list(STUDY_ARMS), choices=list(STUDY_ARMS))
    ap.add_argument("--seeds", type=int, nargs="+", default=STUDY_SEEDS)
    ap.add_argument("--ratios", type=float, nargs="+", default=STUDY_RATIOS)
    ap.add_argument("--report-only", action="store_true", help="tabulate the finished runs, train nothing")
    ap.add_argument(
        "--smoke", action="store_true", help="1 step per run on the clean twin (tests the command)"
    )
    args = ap.parse_args(argv)
    out, docs = Path(args.out), Path(args.docs)
    # --smoke tests the command, not the data: 1 step per run, and the default (clean) twin, whose frame cache
    # other runs share, instead of emulating the noisy twin's 5,000 digits (~10 s)
    smoke = {
        "train.epochs": 1,
        "train.max_steps_per_epoch": 1,
        "train.warmup_epochs": 0,
        "data.preset": "default",
    }
    extra = smoke if args.smoke else {}
    runs = []
    t0 = time.time()
    for ratio in args.ratios:
        for seed in args.seeds:  # every arm of a seed before the next seed: partial results stay paired
            for arm in args.arms:
                rec_path = out / "runs" / f"r{ratio}_s{seed}_{arm}.json"
                if args.report_only:
                    if rec_path.is_file():
                        runs.append(json.loads(rec_path.read_text()))
                    continue
                runs.append(_study_run(arm, ratio, seed, out, extra))
                print(f"[{time.time() - t0:7.0f} s] ratio {ratio} seed {seed} {arm}: done", flush=True)
    summary = summarize(runs, args.arms, args.ratios, args.seeds)
    summary.update(
        setting=STUDY_SETTING,
        arms=STUDY_ARMS,
        smoke=args.smoke,
        smoke_overrides=extra,
        wall_s_this_call=round(time.time() - t0, 1),
        wall_s_runs_sum=round(sum(r["wall_s"] for r in runs), 1),
    )
    if args.smoke:
        summary["verdict"] = "smoke run (1 step per run): no conclusion"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "results.json").write_text(
        json.dumps({"summary": summary, "runs": [{k: v for k, v in r.items()} for r in runs]}, indent=1)
    )
    write_table(summary, docs / "results.md")
    plot_study(runs, summary, docs / "study.png")
    print((docs / "results.md").read_text())
    return summary


if __name__ == "__main__":
    if "--study" in sys.argv[1:]:
        run_study()
    else:
        main()

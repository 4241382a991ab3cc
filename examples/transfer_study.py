"""The pre-registered transfer studies, through the one paired-study runner (:mod:`sj_common.study`).

``--study confirm`` (default): the confirmatory study of issue 19 (docs/transfer_confirm/PREREGISTRATION.md).
``--study issue11``: the first study (docs/transfer_study/PREREGISTRATION.md); ``--published`` tabulates its
published runs (docs/transfer_study/results.json) through the runner, nothing re-run.

The confirmatory study: five arms on the issue-11 setting (packaged config ``mnist5k_study``: noisy twin, VGG (32, P, 64, P),
120 steps), fresh seeds 5-9, event train ratios 0.02 and 0.1, through the one paired-study runner
(:mod:`sj_common.study`): every run one process with one thread, ``--jobs`` at once, each finished run kept
as ``<out>/runs/<name>.json`` and skipped when the command runs again.

    python examples/transfer_study.py                     # the whole study (50 runs), 2 at a time
    python examples/transfer_study.py --report-only       # tabulate what has finished
    python examples/transfer_study.py --smoke --out runs/smoke --docs runs/smoke   # 1 step per run
    python examples/transfer_study.py --study issue11 --published --docs runs/issue11  # re-tabulate issue 11

Writes ``results.json`` (summary and every run's record), ``results.md`` and ``study.png`` into ``--docs``.
Nothing in STUDY may change after the pre-registration's commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from sj_common.study import Criterion, PairedStudy, load_runs, run_study, summarize, write_markdown

#: The pre-registered study. ``mnist5k_study`` is issue 11's setting and its ``full`` arm (the paper's
#: defaults: two heads, learnable c_t, alpha 0.5, sliding k = 3, BN statistics from both passes).
STUDY = PairedStudy(
    name="transfer_confirm",
    recipe="sj_transfer.recipe:RECIPE",
    config="mnist5k_study",
    arms={
        "baseline": {"method.baseline": True},
        "paper": {},
        "shared": {"model.shared_head": True},
        "shared_alpha0": {"model.shared_head": True, "method.alpha": 0.0},
        "finetune": {"method.static_pretrain_epochs": 5},
    },
    control="baseline",
    seeds=[5, 6, 7, 8, 9],
    criterion=Criterion("shared", min_gain=1.0, min_se=2.0),
    secondary=[("shared", "shared_alpha0"), ("shared", "finetune"), ("paper", "baseline")],
    seed_keys=("train.seed", "data.subset_seed"),
    factor="data.train_ratio",
    levels=[0.02, 0.1],
)

#: The first study (issue 11): the ``mnist5k`` config with the calibrated setting, seeds 0-4, ratio 0.02; its
#: criterion: the ``full`` arm's mean paired gain over the baseline > 2 SE (no minimum gain).
ISSUE11 = PairedStudy(
    name="transfer_issue11",
    recipe="sj_transfer.recipe:RECIPE",
    config="mnist5k",
    setting={
        "data.preset": "noisy",
        "data.balanced_sampling": True,
        "data.samples_per_epoch": 384,
        "train.epochs": 10,
        "model.cfg": [32, "P", 64, "P"],
        "model.shared_head": False,  # mnist5k's default then (it is one shared head since issue 19)
    },
    arms={
        "baseline": {"method.baseline": True},
        "full": {"method.regularization": "learnable", "method.event_bn_stats": False},
        "alpha0": {"method.regularization": "learnable", "method.event_bn_stats": False, "method.alpha": 0.0},
        "shared_head": {
            "method.regularization": "learnable",
            "method.event_bn_stats": False,
            "model.shared_head": True,
        },
    },
    control="baseline",
    seeds=[0, 1, 2, 3, 4],
    criterion=Criterion("full", min_gain=0.0, min_se=2.0),
    secondary=[("alpha0", "baseline"), ("shared_head", "baseline")],
    seed_keys=("train.seed", "data.subset_seed"),
    factor="data.train_ratio",
    levels=[0.02],
)
STUDIES = {"confirm": STUDY, "issue11": ISSUE11}
PUBLISHED = {"issue11": "docs/transfer_study/results.json"}


def published_records(path: str | Path) -> list[dict]:
    """The runs of a published ``results.json`` of ``examples/transfer_table.py --study`` (issue 11) as runner
    records (kept per-run values: test/val accuracy, last-epoch history, wall time)."""
    return [
        {
            "arm": r["arm"],
            "level": r["ratio"],
            "seed": r["seed"],
            "threads": 1,
            "process_wall_s": r["wall_s"],
            "results": {"test_acc1": r["test_acc1"], "best_val_acc1": r["val_acc1"], "history": r["history"]},
        }
        for r in json.loads(Path(path).read_text())["runs"]
    ]


#: A smoke run tests the command, not the data: 2 epochs of 1 step (finetune needs 2 epochs), the clean
#: twin (its frame cache is shared with other runs).
SMOKE = {
    "train.epochs": 2,
    "train.max_steps_per_epoch": 1,
    "train.warmup_epochs": 0,
    "data.preset": "default",
}


def _epoch_series(runs: list[dict], arm: str, level, key: str) -> dict[int, float]:
    """Mean over seeds of a per-epoch history value (``train_w_0``, ``train_replaced`` ...)."""
    by: dict[int, list[float]] = {}
    for r in runs:
        if r["arm"] == arm and r["level"] == level:
            for h in r["results"].get("history") or []:
                if isinstance(h.get(key), (int, float)):
                    by.setdefault(h["epoch"], []).append(float(h[key]))
    return {e: statistics.fmean(v) for e, v in sorted(by.items())}


def plot(study: PairedStudy, summary: dict, runs: list[dict], path: Path) -> None:
    """Test accuracy per arm and ratio (seeds as dots, mean +- sd); for the primary arm at each ratio,
    sigma(c_t) and CKA per time step over training; the replaced fraction of every sliding arm."""
    from sj_common.plots import new_figure, save_figure

    fig, axes = new_figure(1, 4, size=(16.0, 3.6))
    ax = axes[0, 0]
    arms = list(study.arms)
    for j, arm in enumerate(arms):
        rs = [r for r in summary["rows"] if r["arm"] == arm]
        xs = [k + (j - (len(arms) - 1) / 2) * 0.12 for k, _ in enumerate(rs)]
        for x, r in zip(xs, rs):
            ax.plot([x] * len(r["test"]), r["test"], "o", color=f"C{j}", alpha=0.35, ms=3)
        ax.errorbar(
            xs,
            [r["test_mean"] for r in rs],
            yerr=[r["test_sd"] or 0.0 for r in rs],
            fmt="s",
            color=f"C{j}",
            capsize=3,
            label=arm,
        )
    ax.set_xticks(range(len(study.levels)), [f"ratio {lv:g}" for lv in study.levels])
    ax.set_ylabel("event test accuracy (%)")
    ax.set_title("test accuracy (dots: seeds; mean ± sd)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    arm = study.criterion.arm
    for k, (prefix, label) in enumerate((("train_w_", "sigma(c_t)"), ("train_cka_", "CKA(static, event)"))):
        ax = axes[0, k + 1]
        steps = sorted(  # the time steps logged (train_w_<t>, train_cka_<t>)
            {
                int(key[len(prefix) :])
                for r in runs
                for h in r["results"].get("history") or []
                for key in h
                if key.startswith(prefix) and key[len(prefix) :].isdigit()
            }
        )
        for ls, lv in zip(("-", "--"), study.levels):
            for t in steps:
                series = _epoch_series(runs, arm, lv, f"{prefix}{t}")
                if series:
                    ax.plot(
                        list(series),
                        list(series.values()),
                        ls,
                        color=f"C{t}",
                        lw=1,
                        label=f"t={t}" if lv == study.levels[0] else None,
                    )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(
            f"{arm}: {label} per step (solid {study.levels[0]:g}, dashed {study.levels[-1]:g})", fontsize=8
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, ncol=2)
    ax = axes[0, 3]
    for j, a in enumerate(arms):
        for ls, lv in zip(("-", "--"), study.levels):
            series = _epoch_series(runs, a, lv, "train_replaced")
            if series:
                ax.plot(list(series), list(series.values()), ls, color=f"C{j}", label=f"{a} {lv:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("replaced fraction (epoch mean)")
    ax.set_title("sliding: static inputs replaced by their event twin", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    save_figure(fig, path, dpi=80, colors=256)


def per_step(runs: list[dict], study: PairedStudy) -> dict:
    """Per arm and ratio, epoch means over seeds of sigma(c_t) and CKA per step and the replaced fraction."""
    out: dict = {}
    for arm in study.arms:
        for lv in study.levels:
            keys = {
                k
                for r in runs
                if r["arm"] == arm and r["level"] == lv
                for h in r["results"].get("history") or []
                for k in h
                if k.startswith(("train_w_", "train_cka", "train_replaced"))
            }
            if keys:
                out[f"{arm}@{lv:g}"] = {k: _epoch_series(runs, arm, lv, k) for k in sorted(keys)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="confirm", choices=list(STUDIES))
    ap.add_argument(
        "--out", default=None, help="run folders and the kept records (default runs/<study name>)"
    )
    ap.add_argument(
        "--docs", default=None, help="where results.json/.md and study.png go (default: the study's)"
    )
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each)")
    ap.add_argument("--report-only", action="store_true", help="tabulate the kept runs, train nothing")
    ap.add_argument("--published", action="store_true", help="tabulate the study's published runs (issue11)")
    ap.add_argument("--arms", nargs="+", default=None, help="a subset of the arms (smoke tests)")
    ap.add_argument(
        "--smoke", action="store_true", help="1 step per epoch on the clean twin (tests the command)"
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    extra = SMOKE if args.smoke else {}
    study = STUDIES[args.study]
    out = args.out or f"runs/{study.name}"
    if args.smoke:  # one seed and one ratio; finetune's 5 static epochs become 1 of the smoke run's 2
        arms = {a: ov for a, ov in study.arms.items() if a != "finetune"}
        if "finetune" in study.arms:
            arms["finetune"] = {"method.static_pretrain_epochs": 1}
        study = dataclasses.replace(study, seeds=study.seeds[:1], levels=study.levels[:1], arms=arms)
    if args.arms:
        keep = {study.control, study.criterion.arm, *args.arms}
        study = dataclasses.replace(
            study,
            arms={a: ov for a, ov in study.arms.items() if a in keep},
            secondary=[c for c in study.secondary if set(c) <= keep],
        )
    if args.published:
        if args.study not in PUBLISHED:
            raise SystemExit(f"--published: only {sorted(PUBLISHED)} have published runs, got {args.study!r}")
        runs = published_records(PUBLISHED[args.study])
    elif args.report_only:
        runs = load_runs(study, out)
    else:
        runs = run_study(study, out, jobs=args.jobs, extra=extra)
    summary = summarize(study, runs)
    if args.smoke:
        summary["verdict"] = "smoke run (1 step per epoch): no conclusion"
    default_docs = {"confirm": "docs/transfer_confirm", "issue11": "runs/issue11_tables"}[args.study]
    args.docs = args.docs or default_docs
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    records = [
        {
            **{k: r[k] for k in ("arm", "level", "seed", "threads", "process_wall_s")},
            "test_acc1": r["results"]["test_acc1"],
            "best_val_acc1": r["results"]["best_val_acc1"],
            "best_epoch": r["results"].get("best_epoch"),
            "static_pretrain": r["results"].get("static_pretrain"),
            "history": r["results"].get("history"),
        }
        for r in runs
    ]
    payload = {
        "summary": summary,
        "study": {
            "config": study.config,
            "arms": study.arms,
            "seeds": study.seeds,
            "levels": study.levels,
            "seed_keys": study.seed_keys,
            "smoke_overrides": extra,
        },
        "per_step": per_step(runs, study),
        "wall_s_runs_sum": round(sum(r["process_wall_s"] for r in runs), 1),
        "wall_s_this_call": round(time.time() - t0, 1),
        "runs": records,
    }
    (docs / "results.json").write_text(json.dumps(payload, indent=1))
    print(write_markdown(summary, docs / "results.md"))
    if runs:
        plot(study, summary, runs, docs / "study.png")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])

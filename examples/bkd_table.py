"""The pre-registered paired study of distillation on the embedded data (issue 14): one command.

For every torch thread setting (``--threads``, default ``1 2``), every training seed (``--seeds``) and every
arm (``--arms``, default ``none kd bkd mixed``: the student alone, plain Hinton KD, BKD, BKD + WSLD), the
student of the ``mnist5k_study`` config is trained with the shared engine; within a seed the arms share the
student initialisation (``seed_everything(seed)`` before the model is built), the training subset
(``data.subset_seed``), the batch order, the steps and the schedule, so they differ only by the distillation
term. One teacher (``teacher.train.seed``) is trained once, by the first thread setting, and shared by all.
The best epoch is selected on val by the engine; the test top-1 of that epoch is the metric.

    python examples/bkd_table.py --out runs/bkd_study --docs docs/bkd_study          # the study
    python examples/bkd_table.py --out runs/cal --calibrate --set data.train_subset=100 --seeds 0 1
    python examples/bkd_table.py --out runs/smoke --seeds 0 1 --set train.epochs=1 --max-steps-per-epoch 2

Each thread setting runs in its own process (one at a time) with ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set
to its thread count, ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) and ``torch.set_num_threads``. Every
finished run is cached as ``<out>/threads<n>/<arm>_s<seed>/cell.json``, so an interrupted study continues
where it stopped. ``--calibrate`` trains the student-alone arm only, without a test pass (the setting is
chosen on train and val accuracy only), and prints them.

Writes under ``--docs`` (default ``--out``): ``table.md``, ``table.json`` (every run, the summary and the
verdict) and ``plot.png`` (per-seed paired gains; each arm's mean with its sample sd).

Logged per run and epoch (``history`` of the engine, averaged over the epoch's steps by the engine):
``train_ce``, the feature loss ``train_bkd`` and the logit loss ``train_wsld`` (mixed) / ``train_kd`` (kd),
as ``distill_step`` logs them; their ratios to the CE are derived here as the ratio of the epoch means
(``distill_step`` is left unchanged, so the numbers are those of ``sj-bkd train``).

Success criterion (pre-registered, ``docs/bkd_study/PREREGISTRATION.md``): the mean paired gain of ``mixed``
over the student alone is above 1 point and above 2 paired standard errors (sd of the gains / sqrt(n)),
under every thread setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from sj_common.study import Criterion, PairedStudy, paired_stats, run_study, summarize

ARMS = ("none", "kd", "bkd", "mixed")
FEATURE_LOSS, LOGIT_LOSS = {"bkd": "bkd", "mixed": "bkd"}, {"kd": "kd", "mixed": "wsld"}
MIN_GAIN, MIN_SE_RATIO = 1.0, 2.0


def _overrides(args) -> dict:
    """``--set key.sub=value`` (values parsed as YAML) and the quiet, smoke-run settings, as recipe overrides."""
    import yaml

    ov = {"train.progress": False, "train.tensorboard": False}
    if args.max_steps_per_epoch:
        ov["train.max_steps_per_epoch"] = args.max_steps_per_epoch
    for a in args.set:
        if "=" not in a:
            raise ValueError(f"--set: expected key.sub=value, got {a!r}")
        key, value = a.split("=", 1)
        ov[key] = yaml.safe_load(value)
    return ov


def _config(args, out, **more):
    """The typed config (``sj_bkd.recipe.RECIPE``) with the overrides; the student runs in ``<out>/student``, a
    teacher stage in ``<out>/teacher``."""
    from sj_bkd.recipe import RECIPE

    return RECIPE.config(args.config, {**_overrides(args), **more}, out=str(out))


def _git_head() -> str | None:
    """The commit of the code that runs (``SJ_BKD_STUDY_COMMIT`` when a snapshot runs outside the checkout)."""
    if os.environ.get("SJ_BKD_STUDY_COMMIT"):
        return os.environ["SJ_BKD_STUDY_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _ratio(a, b):
    return a / b if a is not None and b else None


def _summarise_run(res: dict, arm: str) -> dict:
    """test/val accuracy, the best epoch, train accuracy and the per-epoch losses of one engine result."""
    hist = res["history"]
    best = max((r for r in hist if r.get("best")), key=lambda r: r["epoch"], default=hist[-1])
    losses = []
    for r in hist:
        feat = r.get(f"train_{FEATURE_LOSS[arm]}") if arm in FEATURE_LOSS else None
        logit = r.get(f"train_{LOGIT_LOSS[arm]}") if arm in LOGIT_LOSS else None
        ce = r.get("train_ce")
        losses.append(
            {
                "epoch": r["epoch"],
                "ce": ce,
                "feature": feat,
                "logit": logit,
                "feature_to_ce": _ratio(feat, ce),
                "logit_to_ce": _ratio(logit, ce),
            }
        )
    return {
        "test_acc1": res.get("test_acc1"),
        "best_val_acc1": res["best_val_acc1"],
        "best_epoch": best["epoch"],
        "train_acc1_best_epoch": best.get("train_acc1"),
        "train_acc1_last_epoch": hist[-1].get("train_acc1"),
        "steps": res.get("steps"),
        "wall_time_s": round(res["wall_time_s"], 1),
        "losses": losses,
    }


# ---------------------------------------------------------------------------------------------------
# The shared teacher and the study as the runner sees it
# ---------------------------------------------------------------------------------------------------


def _teacher(cfg) -> tuple[str, dict]:
    """Train the shared teacher once (cached in ``teacher.train.out``); returns (weights path, summary)."""
    from sj_bkd.recipe import build_data, train_teacher

    tdir = Path(cfg.teacher.train.out)
    cache = tdir / "teacher.json"
    if cache.is_file() and (tdir / "teacher.pt").is_file():
        return str(tdir / "teacher.pt"), json.loads(cache.read_text())
    seed = cfg.teacher.train.seed
    t_data = build_data(cfg, role="teacher")
    weights, res = train_teacher(cfg, t_data)
    summary = {
        "test_acc1": res["test_acc1"],
        "best_val_acc1": res["best_val_acc1"],
        "train_images": len(t_data.train),
        "seed": seed,
        "threads": _threads(),
        "wall_time_s": round(res["wall_time_s"], 1),
    }
    cache.write_text(json.dumps(summary, indent=1))
    return str(weights), summary


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def make_study(cfg, seeds, threads, arms) -> PairedStudy:
    """The study as the shared runner (:mod:`sj_common.study`) sees it: arms set ``distill.mode``, the seed
    sets ``train.seed`` (the subset is ``data.subset_seed``, fixed), the factor is the torch thread count."""
    return PairedStudy(
        name="bkd_study",
        recipe="sj_bkd.recipe:RECIPE",
        config=cfg,
        arms={a: {"distill.mode": a} for a in arms},
        control="none",
        seeds=list(seeds),
        criterion=Criterion("mixed" if "mixed" in arms else arms[-1], MIN_GAIN, MIN_SE_RATIO),
        factor="threads",
        levels=list(threads),
        result_key="student",
    )


def flat_run(rec: dict) -> dict:
    """One run as the table reads it: a runner record (the engine's results of the student) summarised by
    :func:`_summarise_run`, or a run of the study's published ``table.json`` (already summarised)."""
    if "results" not in rec:
        return rec
    res = rec["results"]
    return {
        "threads": rec["level"],
        "torch_threads": rec["threads"],
        "arm": rec["arm"],
        "seed": rec["seed"],
        "train_images": res.get("train_images"),
        **_summarise_run(res, rec["arm"]),
        "process_wall_s": rec["process_wall_s"],
    }


def as_records(runs: list[dict]) -> list[dict]:
    """Published ``table.json`` runs -> runner records (``level`` = threads), for :func:`summarize`."""
    return [
        r if "results" in r else {"arm": r["arm"], "level": r["threads"], "seed": r["seed"], "results": r}
        for r in runs
    ]


# ---------------------------------------------------------------------------------------------------
# The table, the verdict and the plot
# ---------------------------------------------------------------------------------------------------


def paired(gains: list[float]) -> dict:
    """:func:`sj_common.study.paired_stats` (mean, sample sd, SE = sd / sqrt(n)) and whether the criterion
    holds: mean > ``MIN_GAIN`` points and mean > ``MIN_SE_RATIO`` standard errors."""
    st = paired_stats(gains)
    return {
        "n": st["n"],
        "mean": st["mean"],
        "sd": st["sd"] or 0.0,
        "se": st["se"] or 0.0,
        "mean_over_se": st["mean"] / st["se"] if st["se"] else None,
        "met": Criterion("", MIN_GAIN, MIN_SE_RATIO).met(st, st["n"]),
    }


def _loss_summary(runs: list[dict]) -> dict:
    """Mean over seeds of the feature/logit loss and their ratio to the CE at the first, middle and last
    epoch, and averaged over all epochs."""
    epochs = len(runs[0]["losses"])
    picks = {"first": 0, "middle": epochs // 2, "last": epochs - 1}
    out = {}
    for key in ("ce", "feature", "logit", "feature_to_ce", "logit_to_ce"):
        if runs[0]["losses"][0][key] is None:
            continue
        vals = {name: statistics.fmean(r["losses"][i][key] for r in runs) for name, i in picks.items()}
        vals["all_epochs"] = statistics.fmean(statistics.fmean(e[key] for e in r["losses"]) for r in runs)
        out[key] = vals
    return out


def summarise(study: PairedStudy, runs: list[dict]) -> dict:
    """Per thread setting: the per-seed table, each arm's mean ± sd (from :func:`sj_common.study.summarize`),
    val and train means, loss summaries, and the paired gains over ``none`` with the criterion."""
    common = summarize(study, as_records(runs))
    flat = {(r["threads"], r["arm"], r["seed"]): r for r in map(flat_run, runs)}
    arms, seeds = list(study.arms), list(study.seeds)
    settings = {}
    for n in study.levels:
        rows = {r["arm"]: r for r in common["rows"] if r["level"] == n}
        per = {arm: [flat[(n, arm, s)] for s in seeds] for arm in arms}
        s = {
            "per_seed": [
                {"seed": sd, **{arm: rows[arm]["test"][i] for arm in arms}} for i, sd in enumerate(seeds)
            ],
            "arms": {
                arm: {
                    "mean": rows[arm]["test_mean"],
                    "sd": rows[arm]["test_sd"] or 0.0,
                    "val_mean": rows[arm]["val_mean"],
                    "train_acc1_best_epoch_mean": statistics.fmean(
                        r["train_acc1_best_epoch"] for r in per[arm]
                    ),
                    "best_epoch_mean": statistics.fmean(r["best_epoch"] for r in per[arm]),
                    "wall_time_s": sum(r["wall_time_s"] for r in per[arm]),
                    "losses": _loss_summary(per[arm]),
                }
                for arm in arms
            },
        }
        if "none" in arms:
            s["gains"] = {
                arm: {"per_seed": rows[arm]["gain"]["gains"], **paired(rows[arm]["gain"]["gains"])}
                for arm in arms
                if arm != "none"
            }
        settings[str(n)] = s
    verdict = None
    if "none" in arms and "mixed" in arms:
        verdict = all(settings[str(n)]["gains"]["mixed"]["met"] for n in study.levels)
    return {"settings": settings, "criterion_met": verdict}


def _fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def table_md(study: dict) -> str:
    arms, seeds = study["arms"], study["seeds"]
    t = study["teacher"]
    lines = [
        f"# Distillation study ({study['config']}): {len(seeds)} paired seeds, torch threads {study['threads']}",
        "",
        f"Setting: {study['setting']}",
        f"Teacher ({t.get('train_images')} train images, seed {t.get('seed')}): test {_fmt(t.get('test_acc1'))} %, "
        f"val {_fmt(t.get('best_val_acc1'))} %. Code: commit {study['commit']}. Study wall time: "
        f"{study['wall_time_s'] / 60:.1f} min.",
        "",
        f"Test top-1 %, best epoch on val. Criterion: mean paired gain of `mixed` over `none` > {MIN_GAIN} point "
        f"and > {MIN_SE_RATIO} paired SE, under every thread setting: "
        f"**{'met' if study['summary']['criterion_met'] else 'not met'}**.",
        "",
    ]
    for n, s in study["summary"]["settings"].items():
        lines += [f"## {n} torch thread{'s' if n != '1' else ''}", ""]
        lines.append(
            "| seed | " + " | ".join(arms) + " | " + " | ".join(f"{a} - none" for a in arms[1:]) + " |"
        )
        lines.append("| --- " * (2 * len(arms)) + "|")
        for i, row in enumerate(s["per_seed"]):
            gains = [_fmt(s["gains"][a]["per_seed"][i], 1) for a in arms[1:]] if "gains" in s else []
            lines.append(
                f"| {row['seed']} | "
                + " | ".join(_fmt(row[a], 1) for a in arms)
                + " | "
                + " | ".join(gains)
                + " |"
            )
        ms = [f"{s['arms'][a]['mean']:.2f} ± {s['arms'][a]['sd']:.2f}" for a in arms]
        gs = (
            [
                f"{s['gains'][a]['mean']:+.2f} ± {s['gains'][a]['se']:.2f} SE"
                + (" (met)" if s["gains"][a]["met"] else "")
                for a in arms[1:]
            ]
            if "gains" in s
            else []
        )
        lines.append("| mean ± sd / gain ± SE | " + " | ".join(ms) + " | " + " | ".join(gs) + " |")
        lines.append(
            "| val mean | "
            + " | ".join(_fmt(s["arms"][a]["val_mean"]) for a in arms)
            + " |"
            + " |" * (len(arms) - 1)
        )
        lines.append(
            "| train acc at best epoch | "
            + " | ".join(_fmt(s["arms"][a]["train_acc1_best_epoch_mean"]) for a in arms)
            + " |"
            + " |" * (len(arms) - 1)
        )
        lines += ["", "Losses over training (mean over seeds; epoch means as the engine logs them):", ""]
        lines.append("| arm | term | first epoch | middle | last epoch | all epochs |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for a in arms:
            for key, v in s["arms"][a]["losses"].items():
                lines.append(
                    f"| {a} | {key} | {v['first']:.4g} | {v['middle']:.4g} | {v['last']:.4g} | {v['all_epochs']:.4g} |"
                )
        lines.append("")
    return "\n".join(lines)


def plot(study: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms, settings = study["arms"], study["summary"]["settings"]
    fig, axes = plt.subplots(
        2, len(settings), figsize=(4.2 * len(settings), 6.4), squeeze=False, sharey="row"
    )
    for j, (n, s) in enumerate(settings.items()):
        ax = axes[0][j]
        if "gains" in s:
            for k, a in enumerate(arms[1:]):
                g = s["gains"][a]
                xs = [k + (i - (len(g["per_seed"]) - 1) / 2) * 0.04 for i in range(len(g["per_seed"]))]
                ax.scatter(xs, g["per_seed"], s=14, alpha=0.7, color=f"C{k + 1}")
                ax.errorbar(k + 0.3, g["mean"], yerr=2 * g["se"], fmt="D", color="k", capsize=4, ms=4)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.axhline(MIN_GAIN, color="C3", lw=0.8, ls="--", label=f"criterion: {MIN_GAIN:g} point")
            ax.legend(fontsize=7, loc="lower right")
            ax.set_xticks(range(len(arms) - 1), [f"{a} - none" for a in arms[1:]])
        ax.set_title(f"{n} thread(s): paired gain (points)\ndots: seeds; diamond: mean ± 2 SE", fontsize=9)
        ax = axes[1][j]
        for k, a in enumerate(arms):
            accs = [r[a] for r in s["per_seed"]]
            ax.scatter([k] * len(accs), accs, s=12, alpha=0.6, color=f"C{k}")
            ax.errorbar(
                k + 0.25, s["arms"][a]["mean"], yerr=s["arms"][a]["sd"], fmt="o", color="k", capsize=4, ms=4
            )
        t = study["teacher"].get("test_acc1")
        if t is not None:
            ax.axhline(t, color="0.4", lw=0.8, ls=":")
            ax.text(len(arms) - 0.6, t, "teacher", fontsize=7, va="bottom", ha="right")
        ax.set_xticks(range(len(arms)), arms)
        ax.set_title("test top-1 %: seeds, mean ± sd", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="mnist5k_study", help="packaged sj_bkd config or YAML file")
    ap.add_argument("--out", default="runs/bkd_study", help="run folder (cached runs)")
    ap.add_argument("--docs", default=None, help="where the table and plot go (default --out)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the config's study.seeds")
    ap.add_argument(
        "--threads", type=int, nargs="+", default=None, help="default: the config's study.threads"
    )
    ap.add_argument("--arms", nargs="+", default=None, choices=ARMS, help="default: the config's study.arms")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key")
    ap.add_argument("--max-steps-per-epoch", type=int, default=None, help="smoke runs")
    ap.add_argument("--calibrate", action="store_true", help="student-alone arm, train/val only, no test")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each one process)")
    return ap


def main(argv=None) -> dict | None:
    args = build_parser().parse_args(argv)
    from sj_common.threads import apply_thread_policy

    apply_thread_policy(1)  # the teacher trains here, with one thread (as the published study's)
    cfg = _config(args, args.out)
    study_cfg = cfg.study or {}
    args.seeds = args.seeds or study_cfg.get("seeds", list(range(8)))
    args.threads = args.threads or study_cfg.get("threads", [1, 2])
    args.arms = args.arms or study_cfg.get("arms", list(ARMS))
    for n in args.threads:
        if n < 1:
            raise ValueError(f"--threads: expected counts >= 1, got {n}")
    if args.calibrate:
        args.arms = ["none"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    commit = _git_head()
    study = make_study(args.config, args.seeds, args.threads, args.arms)
    extra = {**_overrides(args), "teacher.stage": "load"}
    if args.calibrate:  # the setting is chosen on train and val only: no test pass
        extra["data.test_subset"] = 0
    else:
        extra["teacher.weights"], _ = _teacher(cfg)
    runs = [flat_run(r) for r in run_study(study, out, jobs=args.jobs, extra=extra)]
    if args.calibrate:
        keys = ("threads", "seed", "train_images", "best_val_acc1", "best_epoch", "train_acc1_best_epoch")
        cal = [{k: r[k] for k in (*keys, "train_acc1_last_epoch", "wall_time_s")} for r in runs]
        (out / "calibration.json").write_text(json.dumps({"set": args.set, "runs": cal}, indent=1))
        print(json.dumps(cal, indent=1))
        return {"calibration": cal}
    teacher = json.loads((out / "teacher" / "teacher.json").read_text())
    d, tr, dist = cfg.data, cfg.train, cfg.distill
    result = {
        "config": args.config,
        "set": args.set,
        "commit": commit,
        "seeds": args.seeds,
        "threads": args.threads,
        "arms": args.arms,
        "setting": (
            f"student {cfg.student.name} T={d.T} on {d.train_subset} train images "
            f"(subset_seed {d.subset_seed}), {tr.epochs} epochs, batch {tr.batch_size}, "
            f"lr {tr.lr} {tr.optimizer} {tr.scheduler}; teacher {cfg.teacher.name}; "
            f"distill alpha={dist.alpha} lam={dist.lam} tau={dist.tau} beta={dist.beta} kd_tau={dist.kd_tau}"
        ),
        "teacher": teacher,
        "wall_time_s": teacher.get("wall_time_s", 0.0) + sum(r["process_wall_s"] for r in runs),
        "this_invocation_s": round(time.time() - start, 1),
        "summary": summarise(study, runs),
        "runs": runs,
    }
    docs = Path(args.docs) if args.docs else out
    write_outputs(result, docs)
    print(table_md(result))
    return result


def write_outputs(result: dict, docs: Path) -> None:
    """``table.json``, ``table.md`` and ``plot.png`` of a study result into ``docs``."""
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "table.json").write_text(json.dumps(result, indent=1))
    (docs / "table.md").write_text(table_md(result))
    plot(result, docs / "plot.png")


def retabulate(table_json: Path) -> dict:
    """The published study's summary recomputed through the shared runner's statistics from its kept runs
    (``table.json``'s ``runs``), nothing re-run: ``table_md(retabulate(path))`` is the published table."""
    result = json.loads(Path(table_json).read_text())
    study = make_study(result["config"], result["seeds"], result["threads"], result["arms"])
    return {**result, "summary": summarise(study, result["runs"])}


if __name__ == "__main__":
    main()

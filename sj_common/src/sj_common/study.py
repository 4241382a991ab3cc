"""Pre-registered paired studies: arms as config overrides, paired seeds, levels of one factor, a criterion.

One runner for every comparison of methods in this project (the transfer studies, the bkd study): a
:class:`PairedStudy` names a recipe and a packaged config, the settings held equal (``setting``), the arms
(overrides on top of it), the seeds (each run of a seed gets it in every key of ``seed_keys``: same initial
weights, data subset and batch draws in every arm of that seed), and optionally one factor with its levels
(a config key such as ``data.train_ratio``, or ``threads``: the process's torch thread count). Per run it
trains the recipe in its own process with one thread (``jobs`` processes at once) and keeps the engine's
results as one JSON file: a finished run is never repeated, so an interrupted study continues where it
stopped. :func:`summarize` turns the kept runs into per-arm statistics, paired gains against the control arm
(mean and standard error, sample sd / sqrt(n)) and the verdict of the stated criterion; :func:`write_markdown`
writes the table.

Why not an existing tool: experiment managers (hydra's multirun, optuna, wandb sweeps) schedule runs but do
not pair them or evaluate a pre-registered paired criterion, and none is a dependency of this project.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PairedStudy",
    "Criterion",
    "paired_stats",
    "run_study",
    "load_runs",
    "summarize",
    "write_markdown",
]


@dataclass(frozen=True)
class Criterion:
    """Success: ``arm - control`` mean paired gain ``> min_gain`` and ``> min_se * SE`` at every level, with
    every pre-registered pair finished (``n == len(seeds)``)."""

    arm: str
    min_gain: float = 1.0
    min_se: float = 2.0

    def met(self, stats: Mapping[str, Any], n_expected: int) -> bool:
        se = stats.get("se")
        return bool(
            stats.get("n") == n_expected
            and se is not None
            and stats["mean"] > self.min_gain
            and stats["mean"] > self.min_se * se
        )

    def text(self, control: str) -> str:
        return (
            f"`{self.arm} - {control}`: mean paired test gain > {self.min_gain:g} point and > "
            f"{self.min_se:g} paired SE at every level"
        )


@dataclass(frozen=True)
class PairedStudy:
    """What a study runs and how it is judged (see the module docstring).

    Attributes:
        name: the study's name (titles, file names).
        recipe: ``"package.module:NAME"`` of the plugin's :class:`~sj_common.recipe.Recipe` instance.
        config: the packaged config (or a YAML path) every run starts from.
        arms: arm name -> config overrides (applied after ``setting``); the first is listed first.
        control: the arm every gain is paired against.
        seeds: the paired seeds.
        criterion: the pre-registered success criterion (its arm is the primary arm).
        secondary: ``(arm, against)`` comparisons reported with the same statistic, no claim beyond it.
        setting: overrides held equal across arms.
        seed_keys: config keys that take the run's seed.
        factor: a config key varied over ``levels`` (``"threads"``: the process's torch threads), or None.
        levels: the factor's values (``[None]`` without a factor).
        metric / val_metric: the results keys compared (test) and reported (val).
        result_key: where the run's results sit in what ``recipe.train`` returns (``"student"`` for
            sj-bkd, whose train returns ``{"teacher"?, "student"}``); None: the whole dict.
    """

    name: str
    recipe: str
    config: str
    arms: Mapping[str, Mapping[str, Any]]
    control: str
    seeds: Sequence[int]
    criterion: Criterion
    secondary: Sequence[tuple[str, str]] = ()
    setting: Mapping[str, Any] = field(default_factory=dict)
    seed_keys: Sequence[str] = ("train.seed",)
    factor: str | None = None
    levels: Sequence[Any] = (None,)
    metric: str = "test_acc1"
    val_metric: str = "best_val_acc1"
    result_key: str | None = None

    def __post_init__(self) -> None:
        for name in (self.control, self.criterion.arm, *(a for pair in self.secondary for a in pair)):
            if name not in self.arms:
                raise ValueError(f"arms: expected an arm named {name!r}, got {sorted(self.arms)}")
        if not self.seeds:
            raise ValueError("seeds: expected at least one seed, got none")

    def runs(self) -> list[tuple[Any, int, str]]:
        """Every ``(level, seed, arm)``, seed by seed (all arms and levels of a seed before the next), so
        that a partial study stays paired."""
        return [(lv, s, a) for s in self.seeds for lv in self.levels for a in self.arms]

    def overrides(self, level: Any, seed: int, arm: str) -> dict[str, Any]:
        """The config overrides of one run."""
        ov: dict[str, Any] = {**self.setting, **self.arms[arm]}
        if self.factor not in (None, "threads"):
            ov[self.factor] = level
        ov.update({k: seed for k in self.seed_keys})
        ov.update({"train.progress": False, "train.tensorboard": False})
        return ov

    def run_name(self, level: Any, seed: int, arm: str) -> str:
        lv = "" if self.factor is None else f"{self.factor.rsplit('.', 1)[-1]}{level:g}_"
        return f"{lv}s{seed}_{arm}"


def _load_recipe(ref: str):
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _run_one(study: PairedStudy, level: Any, seed: int, arm: str, out: str, extra: Mapping[str, Any]) -> dict:
    """One run in this (worker) process: train, keep its record as ``<out>/runs/<run_name>.json``."""
    from .threads import apply_thread_policy

    threads = level if study.factor == "threads" else 1
    apply_thread_policy(int(threads))
    name = study.run_name(level, seed, arm)
    path = Path(out) / "runs" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    recipe = _load_recipe(study.recipe)
    t0 = time.time()
    cfg = recipe.config(
        study.config, {**study.overrides(level, seed, arm), **extra}, out=str(Path(out) / name)
    )
    res = recipe.train(cfg)
    if study.result_key is not None:
        res = res[study.result_key]
    rec = {
        "arm": arm,
        "level": level,
        "seed": seed,
        "threads": int(threads),
        "process_wall_s": round(time.time() - t0, 1),
        "results": {k: v for k, v in res.items() if k not in ("config", "versions")},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec))
    tmp.replace(path)  # atomic: a killed run leaves no half-written record
    return rec


def run_study(
    study: PairedStudy,
    out: str | Path,
    *,
    jobs: int = 1,
    extra: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train every run of ``study`` not yet kept under ``<out>/runs``; ``jobs`` processes at once.

    Each worker process is started fresh (spawn) with ``OMP_NUM_THREADS`` set to its thread count before
    torch loads (one, or the level of a ``threads`` factor). ``extra``: overrides on top of every run (a
    smoke run's few steps). Returns the records of every run, kept ones included, in :meth:`runs` order.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    extra = dict(extra or {})
    out = Path(out)
    todo = [r for r in study.runs() if not (out / "runs" / f"{study.run_name(*r)}.json").is_file()]
    log(f"{study.name}: {len(study.runs())} runs, {len(study.runs()) - len(todo)} kept, {len(todo)} to train")
    t0 = time.time()
    if todo:
        groups: dict[int, list] = {}
        for r in todo:  # a threads factor: one pool per thread count, so OMP_NUM_THREADS is right at spawn
            groups.setdefault(int(r[0]) if study.factor == "threads" else 1, []).append(r)
        for threads, group in groups.items():
            saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            try:
                with ProcessPoolExecutor(max(1, jobs), mp_context=get_context("spawn")) as pool:
                    futs = {pool.submit(_run_one, study, *r, str(out), extra): r for r in group}
                    for fut in futs:  # in submission order: the log reads seed by seed
                        rec = fut.result()
                        lv, s, a = futs[fut]
                        log(
                            f"[{time.time() - t0:7.0f} s] {study.run_name(lv, s, a)}: "
                            f"{study.metric} {rec['results'].get(study.metric)}"
                        )
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    return load_runs(study, out)


def load_runs(study: PairedStudy, out: str | Path) -> list[dict]:
    """The kept records of ``study`` under ``<out>/runs`` (missing runs left out), in :meth:`runs` order."""
    runs = []
    for r in study.runs():
        path = Path(out) / "runs" / f"{study.run_name(*r)}.json"
        if path.is_file():
            runs.append(json.loads(path.read_text()))
    return runs


def paired_stats(gains: Sequence[float]) -> dict[str, Any]:
    """``{"gains", "n", "mean", "sd", "se"}`` of paired differences (sample sd; se = sd / sqrt(n); sd and se
    None for one pair)."""
    gains = [float(g) for g in gains]
    n = len(gains)
    if n == 0:
        return {"gains": [], "n": 0, "mean": None, "sd": None, "se": None}
    sd = statistics.stdev(gains) if n > 1 else None
    return {
        "gains": gains,
        "n": n,
        "mean": statistics.fmean(gains),
        "sd": sd,
        "se": None if sd is None else sd / math.sqrt(n),
    }


def _value(rec: Mapping[str, Any], key: str) -> Any:
    return rec["results"].get(key) if "results" in rec else rec.get(key)


def summarize(study: PairedStudy, runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per (level, arm): the metric per seed, mean +- sample sd, val mean, last-epoch train accuracy, wall
    time; per non-control arm its paired gain over the control; the secondary comparisons; the verdict
    (``met`` / ``not met`` / ``incomplete``: a pre-registered run is missing)."""
    by = {(r["level"], r["seed"], r["arm"]): r for r in runs}
    rows, comparisons = [], []
    for lv in study.levels:
        for arm in study.arms:
            got = [by[(lv, s, arm)] for s in study.seeds if (lv, s, arm) in by]
            if not got:
                continue
            test = [_value(g, study.metric) for g in got]
            hist_last = [((_value(g, "history") or [{}])[-1]).get("train_acc1") for g in got]
            walls = [g.get("process_wall_s") for g in got]
            row = {
                "level": lv,
                "arm": arm,
                "seeds": [g["seed"] for g in got],
                "test": test,
                "test_mean": statistics.fmean(test),
                "test_sd": statistics.stdev(test) if len(test) > 1 else None,
                "val_mean": statistics.fmean(_value(g, study.val_metric) for g in got),
                "train_acc1_last_mean": (
                    statistics.fmean(hist_last) if all(x is not None for x in hist_last) else None
                ),
                "wall_s_mean": statistics.fmean(walls) if all(w is not None for w in walls) else None,
            }
            if arm != study.control:
                row["gain"] = _paired(study, by, lv, arm, study.control)
            rows.append(row)
        for arm, against in study.secondary:
            comparisons.append(
                {"level": lv, "arm": arm, "against": against, **_paired(study, by, lv, arm, against)}
            )
    crit = study.criterion
    primary = [{"level": lv, **_paired(study, by, lv, crit.arm, study.control)} for lv in study.levels]
    complete = all(k in by for k in ((lv, s, a) for lv, s, a in study.runs()))
    met = all(crit.met(p, len(study.seeds)) for p in primary)
    return {
        "study": study.name,
        "control": study.control,
        "criterion": {**dataclasses.asdict(crit), "text": crit.text(study.control)},
        "primary": primary,
        "verdict": "incomplete" if not complete else ("met" if met else "not met"),
        "complete": complete,
        "rows": rows,
        "secondary": comparisons,
        "factor": study.factor,
        "levels": list(study.levels),
        "seeds": list(study.seeds),
        "runs_finished": len(by),
        "runs_registered": len(study.runs()),
    }


def _paired(study: PairedStudy, by: Mapping, level: Any, arm: str, against: str) -> dict[str, Any]:
    gains = [
        _value(by[(level, s, arm)], study.metric) - _value(by[(level, s, against)], study.metric)
        for s in study.seeds
        if (level, s, arm) in by and (level, s, against) in by
    ]
    return paired_stats(gains)


def _pm(stats: Mapping[str, Any]) -> str:
    if not stats.get("n"):
        return "-"
    se = "n/a" if stats["se"] is None else f"{stats['se']:.2f}"
    return f"{stats['mean']:+.2f} ± {se} (n={stats['n']})"


def write_markdown(summary: Mapping[str, Any], path: str | Path | None = None) -> str:
    """The summary as Markdown (per-arm table, primary and secondary comparisons, verdict); written to
    ``path`` when given. Returned either way."""
    fac = summary["factor"] or "-"
    head = f"| {fac.rsplit('.', 1)[-1]} | arm | test % per seed | test mean ± sd | gain vs {summary['control']} (mean ± SE) | val mean | train acc (last epoch) | wall s (mean) |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        sd = "-" if r["test_sd"] is None else f"{r['test_sd']:.2f}"
        tr = "-" if r["train_acc1_last_mean"] is None else f"{r['train_acc1_last_mean']:.1f}"
        wall = "-" if r["wall_s_mean"] is None else f"{r['wall_s_mean']:.0f}"
        lv = "-" if r["level"] is None else f"{r['level']:g}"
        lines.append(
            f"| {lv} | {r['arm']} | {' / '.join(f'{a:.1f}' for a in r['test'])} | {r['test_mean']:.2f} ± {sd} | "
            f"{_pm(r['gain']) if 'gain' in r else '-'} | {r['val_mean']:.2f} | {tr} | {wall} |"
        )
    if summary["secondary"]:
        lines += ["", "Secondary comparisons (same statistic; no claim beyond it):", ""]
        lines += ["| level | comparison | paired test gain (mean ± SE) |", "|---|---|---|"]
        for c in summary["secondary"]:
            lv = "-" if c["level"] is None else f"{c['level']:g}"
            lines.append(f"| {lv} | {c['arm']} - {c['against']} | {_pm(c)} |")
    crit = summary["criterion"]
    per_level = "; ".join(
        ("" if p["level"] is None else f"{p['level']:g}: ") + _pm(p) for p in summary["primary"]
    )
    text = "\n".join(lines) + "\n"
    if not summary["complete"]:
        text = (
            f"INCOMPLETE: {summary['runs_finished']} of {summary['runs_registered']} pre-registered runs "
            "finished; the criterion is not evaluated.\n\n" + text
        )
    text += f"\nPrimary criterion ({crit['text']}): {per_level}. Verdict: **{summary['verdict']}**\n"
    if path is not None:
        Path(path).write_text(text)
    return text

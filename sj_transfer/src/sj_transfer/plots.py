"""Figures of static-to-event transfer, from the engine's ``history`` rows and the seed/ratio table.

Each function takes plain data, returns a labelled ``matplotlib.figure.Figure`` and, with ``path``,
writes a compressed PNG; matplotlib's backend is never switched (see :mod:`sj_common.plots`; matplotlib
is the ``[plots]`` extra).

The history rows come from :func:`sj_transfer.train.transfer_step`'s logs, averaged over each epoch by
the engine: ``train_cka_<t>`` (linear CKA of the two branches at time step t), ``train_w_<t>``
(sigma(c_t), only with learnable or fixed coefficients), ``train_replace_p`` (the schedule's
probability) and ``train_replaced`` (the fraction of static inputs actually replaced).

* :func:`plot_step_alignment`: per-step CKA and sigma(c_t) over training;
* :func:`plot_replacement`: the replaced fraction against its schedule;
* :func:`plot_accuracy_vs_ratio`: event test accuracy against the train ratio, baseline vs transfer.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sj_common.plots import _finish, integer_axis, new_figure

__all__ = ["plot_step_alignment", "plot_replacement", "plot_accuracy_vs_ratio", "step_series"]


def step_series(history: Sequence[Mapping[str, Any]], prefix: str) -> dict[int, list[tuple[int, float]]]:
    """``{t: [(epoch, value), ...]}`` for the history keys ``<prefix><t>`` (e.g. ``train_cka_``)."""
    pat = re.compile(re.escape(prefix) + r"(\d+)$")
    out: dict[int, list[tuple[int, float]]] = {}
    for row in history:
        for k, v in row.items():
            m = pat.match(k)
            if m and isinstance(v, (int, float)):
                out.setdefault(int(m.group(1)), []).append((row["epoch"], float(v)))
    return dict(sorted(out.items()))


def plot_step_alignment(
    history: Sequence[Mapping[str, Any]], *, title: str | None = None, path: str | Path | None = None
):
    """Left: linear CKA between the static and the event branch at every time step t, per epoch (mean
    over the epoch's training batches). Right: the step weights sigma(c_t) of the domain loss (``1 -
    sigma(c_t)`` weights the event CE); with ``regularization: none`` there are none and the panel says
    ``w_t = 1``."""
    cka = step_series(history, "train_cka_")
    if not cka:
        mean = [(r["epoch"], r["train_cka"]) for r in history if isinstance(r.get("train_cka"), float)]
        if not mean:
            raise ValueError(
                "history: no train_cka_<t> / train_cka entries; expected the rows of a transfer run "
                "(two-branch training), not a baseline run"
            )
        cka = {"mean": mean}
    w = step_series(history, "train_w_")
    if w and all(v == 1.0 for pts in w.values() for _, v in pts):
        w = {}  # regularization 'none' logs w_t = 1: one line says so instead of T identical ones
    fig, axes = new_figure(1, 2, size=(9.0, 3.4))
    ax = axes[0, 0]
    for t, pts in cka.items():
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "o-" if len(xs) < 25 else "-", ms=3, label=f"t = {t}" if t != "mean" else "mean")
    ax.set_xlabel("epoch")
    integer_axis(ax)
    ax.set_ylabel("CKA(static, event)")
    ax.set_title("per-step feature alignment", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    ax = axes[0, 1]
    if w:
        for t, pts in w.items():
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-" if len(xs) < 25 else "-", ms=3, label=f"t = {t}")
        ax.legend(fontsize=6, ncol=2)
    else:
        epochs = [r["epoch"] for r in history]
        ax.plot(epochs, [1.0] * len(epochs), "k--", label="w_t = 1 for every t (regularization: none)")
        ax.legend(fontsize=7)
    ax.set_xlabel("epoch")
    integer_axis(ax)
    ax.set_ylabel("sigma(c_t): domain-loss weight")
    ax.set_title("learnable per-step coefficients", fontsize=9)
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_replacement(
    history: Sequence[Mapping[str, Any]],
    schedule: Callable[[int, int], float] | None = None,
    *,
    title: str | None = None,
    path: str | Path | None = None,
):
    """The fraction of static inputs replaced by their event twins (measured, mean per epoch) and the
    schedule's probability P (mean per epoch, as logged), against training progress (epoch end /
    epochs); ``schedule`` (``P(i, N)``, default :class:`sj_transfer.PowerSchedule` (3)) is drawn as the
    continuous curve."""
    rows = [r for r in history if isinstance(r.get("train_replaced"), float)]
    if not rows:
        raise ValueError(
            "history: no train_replaced entries; expected the rows of a transfer run with sliding "
            "replacement (sliding schedule on)"
        )
    if schedule is None:
        from .sampler import PowerSchedule

        schedule = PowerSchedule(3)
    E = max(r["epoch"] for r in history)
    N = 1000
    fig, axes = new_figure(1, 1, size=(5.0, 3.4))
    ax = axes[0, 0]
    ax.plot(
        [i / N for i in range(N + 1)],
        [schedule(min(i, N - 1), N) for i in range(N + 1)],
        "k-",
        lw=1,
        label="schedule P(i/N)",
    )
    mid = [(r["epoch"] - 0.5) / E for r in rows]
    if all(isinstance(r.get("train_replace_p"), float) for r in rows):
        ax.plot(mid, [r["train_replace_p"] for r in rows], "s", mfc="none", label="P, epoch mean (logged)")
    ax.plot(mid, [r["train_replaced"] for r in rows], "o", label="replaced fraction, epoch mean")
    ax.set_xlabel("training progress i / N")
    ax.set_ylabel("fraction of static inputs replaced")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "sliding replacement", fontsize=9)
    return _finish(fig, path)


def plot_accuracy_vs_ratio(
    table: Mapping[float, Mapping[str, Sequence[float] | float]],
    *,
    title: str | None = None,
    path: str | Path | None = None,
):
    """Event test accuracy (%) against the fraction of event training data kept, baseline vs transfer.

    ``table``: ``{train_ratio: {"baseline": [acc per seed] or acc, "transfer": [...]}}``; several seeds
    are drawn as mean +- sample std (error bars), each seed as a faint dot.
    """
    if not table:
        raise ValueError("table: expected {train_ratio: {'baseline': [...], 'transfer': [...]}}, got none")
    ratios = sorted(float(r) for r in table)
    by_ratio = {float(r): v for r, v in table.items()}
    fig, axes = new_figure(1, 1, size=(5.0, 3.4))
    ax = axes[0, 0]
    for j, (method, marker) in enumerate((("baseline", "o"), ("transfer", "s"))):
        xs, means, stds = [], [], []
        for r in ratios:
            v = by_ratio[r].get(method)
            if v is None:
                continue
            vals = [float(a) for a in (v if isinstance(v, Sequence) else [v])]
            xs.append(r)
            means.append(statistics.fmean(vals))
            stds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
            ax.plot([r] * len(vals), vals, marker, color=f"C{j}", alpha=0.3, ms=3)
        if xs:
            ax.errorbar(xs, means, yerr=stds, fmt=marker + "-", color=f"C{j}", capsize=3, label=method)
    ax.set_xscale("log")
    ax.minorticks_off()  # only the ratios as ticks (a log axis labels minor ticks like 6e-2 otherwise)
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.set_xlabel("event train ratio (fraction of the training set)")
    ax.set_ylabel("event test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "baseline vs static-to-event transfer", fontsize=9)
    return _finish(fig, path)

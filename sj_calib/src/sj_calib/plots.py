"""Figures of ANN-to-SNN conversion and offset-spike calibration, from a :func:`sj_calib.sweep.sweep` result.

Each function takes the sweep's dict (as returned, or read back from ``sweep.json``), returns a labelled
``matplotlib.figure.Figure`` and, with ``path``, writes a compressed PNG; matplotlib's backend is never
switched (see :mod:`sj_common.plots`; matplotlib is the ``[plots]`` extra).

* :func:`plot_accuracy_vs_T`: the QCFS ANN, the plain SNN and the calibrated SNN against T;
* :func:`plot_offset_histogram`: per spiking layer, neurons off by 0, 1, 2, >=3 spikes before/after;
* :func:`plot_firing_rates`: firing rate per layer, plain vs calibrated SNN;
* :func:`plot_sweep`: accuracy against total latency (T, rho + T, D * rho + T), the sweep's ``sweep.png``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from sj_common.plots import _finish, new_figure, plot_layer_rates

__all__ = ["plot_accuracy_vs_T", "plot_offset_histogram", "plot_firing_rates", "plot_sweep"]


def _check_sweep(res: Mapping, *keys: str) -> None:
    missing = [k for k in keys if k not in res]
    if missing:
        raise ValueError(
            f"res: expected a sj_calib sweep result (sweep() or sweep.json) with {list(keys)}, "
            f"missing {missing} (keys: {sorted(res)})"
        )


def plot_accuracy_vs_T(res: Mapping, *, title: str | None = None, path: str | Path | None = None):
    """Top-1 accuracy (%) against T (log2 axis): the QCFS ANN (a line: it has no T), the plain SNN and
    the SNN with offset-spike calibration (T excludes the ``rho`` pre-simulation steps; the legend says
    so)."""
    _check_sweep(res, "ann_acc", "T", "uncalibrated", "calibrated")
    Ts = list(res["T"])
    fig, axes = new_figure(1, 1, size=(5.0, 3.5))
    ax = axes[0, 0]
    ax.axhline(res["ann_acc"], color="k", ls=":", label=f"QCFS ANN ({res['ann_acc']:.2f}%)")
    ax.plot(Ts, res["uncalibrated"]["acc"], "o-", label="SNN (plain conversion)")
    rho = res.get("rho")
    ax.plot(Ts, res["calibrated"]["acc"], "s-", label=f"SNN + offset-spike calibration (rho={rho})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.set_xlabel("time steps T (excluding rho)")
    ax.set_ylabel("top-1 accuracy (%)")
    accs = [*res["uncalibrated"]["acc"], *res["calibrated"]["acc"], res["ann_acc"]]
    ax.set_ylim(max(0.0, math.floor(min(accs) - 2)), min(100.5, max(accs) + 1.5))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "ANN -> SNN conversion and calibration", fontsize=9)
    return _finish(fig, path)


def plot_offset_histogram(
    hist: Mapping, *, log: bool = True, title: str | None = None, path: str | Path | None = None
):
    """One panel per spiking layer: how many (neuron, sample) pairs are off by 0, 1, 2, >=3 spikes in the
    ``rho`` window, before and after the shift. ``hist``: ``res["offset_histogram"]`` of a sweep, or
    :func:`sj_calib.offset_histogram`'s output (``{layer: {"before": [...], "after": [...]}}``)."""
    if "offset_histogram" in hist:
        hist = hist["offset_histogram"]
    if not hist:
        raise ValueError("hist: no layer in the offset histogram (an uncalibrated SNN, rho = 0, has none)")
    n = len(hist)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = new_figure(rows, cols, size=(2.6 * cols, 2.3 * rows + 0.3))
    for i, (name, h) in enumerate(hist.items()):
        ax = axes[i // cols, i % cols]
        buckets = h.get("buckets", ["0", "1", "2", ">=3"])
        xs = range(len(buckets))
        ax.bar([x - 0.2 for x in xs], [max(v, 0) for v in h["before"]], 0.4, label="before")
        ax.bar([x + 0.2 for x in xs], [max(v, 0) for v in h["after"]], 0.4, label="after")
        if log:
            ax.set_yscale("symlog", linthresh=1)
        ax.set_xticks(list(xs), buckets)
        ax.set_xlabel("|offset| (spikes)", fontsize=8)
        ax.set_ylabel("neurons x samples", fontsize=8)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(n, rows * cols):
        axes[j // cols, j % cols].set_visible(False)
    fig.suptitle(title or "offset spikes per layer, before / after calibration", fontsize=9)
    return _finish(fig, path)


def plot_firing_rates(res: Mapping, *, title: str | None = None, path: str | Path | None = None):
    """Firing rate per spiking layer (spikes per neuron per step over the largest T) of the plain and the
    calibrated SNN (``res["uncalibrated"/"calibrated"]["layer_firing_rate"]``)."""
    _check_sweep(res, "uncalibrated", "calibrated")
    T = max(res.get("T", [0]) or [0])
    series = {
        "SNN (plain)": res["uncalibrated"]["layer_firing_rate"],
        "SNN + calibration": res["calibrated"]["layer_firing_rate"],
    }
    return plot_layer_rates(
        series,
        title=title or f"firing rate per layer (T = {T})",
        path=path,
    )


def plot_sweep(res: Mapping, *, title: str | None = None, path: str | Path | None = None):
    """Accuracy against total latency: the plain SNN at T, the calibrated SNN at ``rho + T`` (per-layer
    work) and at ``D * rho + T`` (a streaming deployment), the QCFS ANN as a line (``sweep.png``)."""
    _check_sweep(res, "ann_acc", "T", "uncalibrated", "calibrated", "latency")
    lat = res["latency"]
    fig, axes = new_figure(1, 1, size=(6.0, 4.0))
    ax = axes[0, 0]
    ax.axhline(res["ann_acc"], color="k", ls=":", label=f"QCFS ANN ({res['ann_acc']:.2f}%)")
    ax.plot(res["T"], res["uncalibrated"]["acc"], "o-", label="SNN, uncalibrated (T)")
    ax.plot(
        lat["per_layer_work"], res["calibrated"]["acc"], "s-", label=f"SNN + COS (rho={lat['rho']}): rho+T"
    )
    ax.plot(
        lat["streaming"], res["calibrated"]["acc"], "s--", alpha=0.6, label="SNN + COS: D*rho+T (streaming)"
    )
    for t, x, y in zip(res["T"], lat["per_layer_work"], res["calibrated"]["acc"]):
        ax.annotate(f"T={t}", (x, y), textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("total latency (time steps)")
    ax.set_ylabel("top-1 accuracy (%)")
    lo = min(min(res["uncalibrated"]["acc"]), min(res["calibrated"]["acc"]))
    ax.set_ylim(max(0.0, math.floor(lo - 2)), min(100.5, res["ann_acc"] + 2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path, dpi=110)

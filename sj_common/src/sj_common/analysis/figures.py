"""Figures of the analysis tools: CAM grids, loss-landscape contours, CKA heatmaps.

Each function writes one PNG (parent folders created) and returns the matplotlib ``Figure`` (already
saved; its axes keep their titles and labels). Figures are built with ``matplotlib.figure.Figure``
directly, never through ``pyplot``: no global state, no display backend needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["event_rgb", "plot_cams", "plot_landscapes", "plot_cka_maps"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _save(fig, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi)


def event_rgb(frames) -> np.ndarray:
    """Event frames ``[T, 2, H, W]`` (ON, OFF counts) -> an RGB image ``[H, W, 3]`` in [0, 1].

    Counts summed over time, each polarity scaled by its maximum: ON red, OFF blue, both magenta.
    """
    f = _np(frames).astype(np.float64)
    if f.ndim != 4 or f.shape[1] != 2:
        raise ValueError(f"frames: expected event frames [T, 2, H, W], got shape {f.shape}")
    on, off = f[:, 0].sum(0), f[:, 1].sum(0)
    on, off = on / max(on.max(), 1e-12), off / max(off.max(), 1e-12)
    return np.stack([on, np.zeros_like(on), off], axis=-1)


def plot_cams(
    path: str | os.PathLike,
    events,
    images,
    cams: Mapping[str, object],
    *,
    sample_titles: Sequence[str] | None = None,
    title: str = "Grad-CAM",
    alpha: float = 0.5,
):
    """One row per sample: its event frames, its static image, then the CAM of every model.

    Args:
        events: ``[N, T, 2, H, W]`` event frames (shown summed over time, :func:`event_rgb`).
        images: ``[N, H, W]`` or ``[N, 1, H, W]`` static images of the same samples.
        cams: column title -> ``[N, H, W]`` maps in [0, 1] (overlaid on the event image).
        sample_titles: one row label per sample (e.g. ``"label 3"``).
    """
    from matplotlib.figure import Figure

    ev = _np(events)
    im = _np(images)
    if im.ndim == 4 and im.shape[1] == 1:
        im = im[:, 0]
    if ev.ndim != 5 or im.ndim != 3 or ev.shape[0] != im.shape[0]:
        raise ValueError(
            f"events/images: expected [N, T, 2, H, W] and [N, H, W], got {ev.shape} and {im.shape}"
        )
    if not cams:
        raise ValueError("cams: expected at least one model's maps, got none")
    maps = {k: _np(v) for k, v in cams.items()}
    for k, v in maps.items():
        if v.shape != (ev.shape[0], *ev.shape[-2:]):
            raise ValueError(
                f"cams[{k!r}]: expected [N={ev.shape[0]}, {ev.shape[-2]}, {ev.shape[-1]}], got {v.shape}"
            )
    n, cols = ev.shape[0], 2 + len(maps)
    fig = Figure(figsize=(1.8 * cols, 1.8 * n + 0.6), dpi=90, layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for r in range(n):
        rgb = event_rgb(ev[r])
        gray = rgb.max(-1)
        panels = [("events (ON red, OFF blue)", rgb, None), ("static image", im[r], "gray")]
        for c, (t, img, cmap) in enumerate(panels):
            axes[r, c].imshow(img, cmap=cmap, interpolation="nearest")
            if r == 0:
                axes[r, c].set_title(t, fontsize=8)
        for c, (name, m) in enumerate(maps.items(), start=2):
            ax = axes[r, c]
            ax.imshow(gray, cmap="gray", interpolation="nearest")
            ax.imshow(m[r], cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
            if r == 0:
                ax.set_title(name, fontsize=8)
        if sample_titles is not None:
            axes[r, 0].set_ylabel(str(sample_titles[r]), fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return fig


def plot_landscapes(
    path: str | os.PathLike,
    surfaces: Mapping[str, object],
    lines: Mapping[str, object] | None = None,
    *,
    title: str = "Loss landscape (filter-normalised random directions)",
    levels: int = 20,
    loss_label: str = "loss",
):
    """Contours of 2-D landscapes (one panel per model, shared levels) and the 1-D slices overlaid.

    Args:
        surfaces: model name -> a 2-D :class:`~sj_common.analysis.landscape.Landscape`.
        lines: model name -> a 1-D ``Landscape`` (an extra panel with every curve), optional.
        loss_label: the colour bar's and the 1-D axis' label (e.g. ``"TET loss"``).
    """
    from matplotlib.figure import Figure

    if not surfaces:
        raise ValueError("surfaces: expected at least one 2-D landscape, got none")
    for k, s in surfaces.items():
        if getattr(s, "betas", None) is None or np.ndim(s.loss) != 2:
            raise ValueError(f"surfaces[{k!r}]: expected a 2-D Landscape (from landscape_2d)")
    cols = len(surfaces) + (1 if lines else 0)
    fig = Figure(figsize=(4.0 * cols, 3.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False)[0]
    lo = min(float(np.min(s.loss)) for s in surfaces.values())
    hi = max(float(np.max(s.loss)) for s in surfaces.values())
    lv = np.linspace(lo, hi if hi > lo else lo + 1.0, levels)
    cs = None
    for ax, (name, s) in zip(axes, surfaces.items()):
        a, b = np.meshgrid(s.alphas, s.betas, indexing="ij")
        cs = ax.contourf(a, b, s.loss, levels=lv, cmap="viridis")
        ax.contour(a, b, s.loss, levels=lv, colors="k", linewidths=0.3)
        ax.plot([0], [0], "r*", markersize=8)
        ax.set_title(f"{name}\nloss at theta {s.origin_loss:.3f}", fontsize=9)
        ax.set_xlabel("direction 1 (alpha)")
        ax.set_ylabel("direction 2 (beta)")
        ax.set_aspect("equal")
    if cs is not None:
        fig.colorbar(cs, ax=list(axes[: len(surfaces)]), label=loss_label, shrink=0.9, format="%.3g")
    if lines:
        ax = axes[-1]
        for name, s in lines.items():
            if np.ndim(s.loss) != 1:
                raise ValueError(f"lines[{name!r}]: expected a 1-D Landscape (from landscape_1d)")
            ax.plot(s.alphas, s.loss, marker=".", label=name)
        ax.set_title("1-D slices", fontsize=9)
        ax.set_xlabel("direction (alpha)")
        ax.set_ylabel(loss_label)
        ax.yaxis.set_label_position("right")  # clear of the contour panels' colour bar
        ax.yaxis.tick_right()
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return fig


def plot_cka_maps(
    path: str | os.PathLike,
    maps: Mapping[str, tuple],
    *,
    xlabel: str = "layer (B)",
    ylabel: str = "layer (A)",
    title: str = "Linear CKA",
    annotate: bool = True,
):
    """Heatmaps side by side, one per entry ``name -> (M [m, n], row_names, col_names)`` (as :func:`cka_map`)."""
    from matplotlib.figure import Figure

    if not maps:
        raise ValueError("maps: expected at least one CKA map, got none")
    cols = len(maps)
    fig = Figure(figsize=(4.2 * cols + 0.8, 4.0), dpi=100, layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False)[0]
    im = None
    for ax, (name, (m, rows, colnames)) in zip(axes, maps.items()):
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (len(rows), len(colnames)):
            raise ValueError(
                f"maps[{name!r}]: matrix {m.shape} does not match {len(rows)} x {len(colnames)} names"
            )
        im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="magma", origin="upper")
        ax.set_xticks(range(len(colnames)), [str(c) for c in colnames], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=9)
        if annotate and m.size <= 144:
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if m[i, j] < 0.6 else "black")  # fmt: skip
    fig.colorbar(im, ax=list(axes), label="CKA", shrink=0.9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return fig

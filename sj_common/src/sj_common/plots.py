"""Figures shared by the sj-plugins: event recordings as ON/OFF frames, training curves, per-layer rates.

Every function takes plain data (numpy arrays, dicts, the ``history`` rows of ``sj_common.engine.fit``,
the content of a ``results.json``), returns a labelled :class:`matplotlib.figure.Figure` and, with
``path``, writes it as a compressed PNG (:func:`save_figure`). Nothing here touches pyplot or switches
matplotlib's backend (figures are built with ``matplotlib.figure.Figure`` directly), so inline plots in
Jupyter keep working and no display is needed. matplotlib is the optional ``[plots]`` extra
(``pip install 'sj-common[plots]'``); it is imported on first use.

Why not SpikingJelly's ``visualizing`` module: it draws with pyplot into the current figure (so it depends
on the active backend) and has no ON/OFF event-frame or training-curve figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "new_figure",
    "save_figure",
    "frames_to_rgb",
    "as_frames",
    "plot_event_frames",
    "plot_curves",
    "plot_layer_rates",
    "plot_bars",
    "integer_axis",
]

_HINT = "matplotlib is needed for figures: pip install 'sj-common[plots]'"
#: ON events in red, OFF events in blue on white (colour-blind safe enough for two classes).
ON_RGB, OFF_RGB = np.array([0.84, 0.15, 0.16]), np.array([0.12, 0.47, 0.71])


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (5.0, 3.5), **kw):
    """``(Figure, axes [nrows, ncols])`` without pyplot (no backend is touched)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(_HINT) from e
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig, path: str | Path, dpi: int = 100, colors: int = 128) -> Path:
    """Write ``fig`` to ``path`` as a small PNG: rendered by Agg, quantised to a ``colors`` palette and
    optimised with Pillow (line plots lose nothing visible; files shrink 3-5x). Returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file name, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    from PIL import Image

    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=colors).save(path, optimize=True)
    return path


def integer_axis(ax) -> None:
    """Whole-number ticks on the x axis (epochs): never 2.5 or 7.5."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(fig, path, dpi: int = 100):
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


# -- events ---------------------------------------------------------------------------------------


def as_frames(data: np.ndarray, T: int = 8, sensor_size: tuple[int, int, int] | None = None) -> np.ndarray:
    """Events (structured ``x, y, t, p``) or frames (``[T, P, H, W]``, numpy or torch) -> ``[T, 2, H, W]``
    float counts. Events are binned with :func:`sj_common.data.events_to_frames` (every event counted
    once); ``sensor_size`` ``(W, H, 2)`` defaults to the smallest sensor that holds the events."""
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.dtype.names:
        from .data.frames import events_to_frames

        if len(data) == 0:
            raise ValueError("events: the recording holds no events")
        if sensor_size is None:
            sensor_size = (int(data["x"].max()) + 1, int(data["y"].max()) + 1, 2)
        return events_to_frames(data, sensor_size, T)
    if data.ndim != 4 or data.shape[1] not in (1, 2):
        raise ValueError(
            f"data: expected events (a structured array with x, y, t, p) or frames [T, P, H, W] with P in "
            f"(1, 2), got an array of shape {data.shape}"
        )
    frames = data.astype(np.float32)
    if frames.shape[1] == 1:
        frames = np.concatenate([np.zeros_like(frames), frames], axis=1)
    return frames


def frames_to_rgb(frames: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``[T, 2, H, W]`` counts (channel 0 OFF, 1 ON) -> ``[T, H, W, 3]`` RGB in [0, 1]: white background,
    ON events red, OFF blue, saturation by count (``scale``: the count that saturates, default the
    99th percentile of non-zero counts)."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f"frames: expected [T, 2, H, W], got shape {frames.shape}")
    if scale is None:
        nz = frames[frames > 0]
        scale = float(np.percentile(nz, 99)) if nz.size else 1.0
    off = np.clip(frames[:, 0] / max(scale, 1e-9), 0, 1)[..., None]
    on = np.clip(frames[:, 1] / max(scale, 1e-9), 0, 1)[..., None]
    rgb = 1.0 - on * (1.0 - ON_RGB) - off * (1.0 - OFF_RGB)
    return np.clip(rgb, 0.0, 1.0)


def plot_event_frames(
    recordings: Mapping[str, Any],
    T: int = 8,
    *,
    sensor_size: tuple[int, int, int] | None = None,
    durations_ms: Mapping[str, float] | None = None,
    title: str | None = None,
    path: str | Path | None = None,
    panel: float = 1.15,
):
    """One row per recording, one column per time bin: ON events red, OFF blue.

    ``recordings`` maps a row label to events (structured ``x, y, t, p``, ``t`` in microseconds) or frames
    ``[T, P, H, W]``; events are binned into ``T`` equal time bins over their own duration (the columns
    are labelled with their time window in ms), frames are shown as given (columns labelled by index).
    The last column shows the event count per bin (ON and OFF) over time.
    """
    if not recordings:
        raise ValueError("recordings: expected at least one {label: events or frames}, got none")
    rows = {}
    for name, data in recordings.items():
        is_events = bool(getattr(getattr(data, "dtype", None), "names", None))
        frames = as_frames(data, T, sensor_size)
        span = None
        if is_events:
            t = np.asarray(data["t"], np.int64)
            span = (int(t.min()), int(t.max()))
        rows[name] = (frames, span)
    n_cols = max(f.shape[0] for f, _ in rows.values())
    fig, axes = new_figure(len(rows), n_cols + 1, size=(panel * (n_cols + 2.2), panel * len(rows) + 0.6))
    for r, (name, (frames, span)) in enumerate(rows.items()):
        rgb = frames_to_rgb(frames)
        Tn = frames.shape[0]
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= Tn:
                ax.set_visible(False)
                continue
            ax.imshow(rgb[c], interpolation="nearest")
            if span is not None:
                width = (span[1] - span[0] + 1) / Tn
                lo, hi = (span[0] + c * width) / 1e3, (span[0] + (c + 1) * width) / 1e3
                ax.set_xlabel(f"{lo:.0f}-{hi:.0f} ms", fontsize=7)
            else:
                ax.set_xlabel(f"t = {c}", fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
        ax = axes[r, n_cols]
        bins = np.arange(1, Tn + 1)
        ax.plot(bins, frames[:, 1].reshape(Tn, -1).sum(1), "-", color=ON_RGB, label="ON")
        ax.plot(bins, frames[:, 0].reshape(Tn, -1).sum(1), "--", color=OFF_RGB, label="OFF")
        ax.set_xlabel("time bin", fontsize=7)
        ax.set_ylabel("events", fontsize=7)
        ax.tick_params(labelsize=6)
        if r == 0:
            ax.legend(fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return _finish(fig, path, dpi=110)


# -- curves and bars -------------------------------------------------------------------------------


def plot_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str = "val_acc1",
    *,
    xkey: str = "epoch",
    ylabel: str = "val accuracy (%)",
    xlabel: str = "epoch",
    title: str | None = None,
    extra_keys: Mapping[str, str] | None = None,
    path: str | Path | None = None,
    size: tuple[float, float] = (5.0, 3.4),
):
    """Curves from engine ``history`` rows: ``runs`` maps a label to its rows (``{"epoch": 1, "val_acc1":
    ...}``; epochs are 1-based as the engine writes them and are plotted as given). ``extra_keys`` adds a
    second panel per key (``{"train_loss": "train loss"}``). Rows without ``key`` are skipped; a run with
    one point is drawn as a marker."""
    panels = {key: ylabel, **dict(extra_keys or {})}
    fig, axes = new_figure(1, len(panels), size=(size[0] * len(panels), size[1]))
    drawn = 0
    for ax, (k, label) in zip(axes[0], panels.items()):
        for name, rows in runs.items():
            pts = [
                (r[xkey], r[k])
                for r in rows
                if isinstance(r.get(k), (int, float)) and r.get(xkey) is not None
            ]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-" if len(xs) < 25 else "-", ms=3, label=name)
            drawn += 1
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        integer_axis(ax)
    if not drawn:
        raise ValueError(f"runs: no history row holds {key!r} (keys of the first row: {_first_keys(runs)})")
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def _first_keys(runs) -> list[str]:
    for rows in runs.values():
        for r in rows:
            return sorted(r)
    return []


def plot_layer_rates(
    rates: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    *,
    ylabel: str = "firing rate (spikes / neuron / step)",
    title: str | None = None,
    path: str | Path | None = None,
):
    """Grouped bars, one group per layer: ``{series: {layer: rate}}`` (e.g. uncalibrated vs calibrated) or
    a single ``{layer: rate}`` (e.g. :func:`sj_common.metrics.firing_rates`)."""
    if not rates:
        raise ValueError("rates: expected {layer: rate} or {series: {layer: rate}}, got an empty mapping")
    if all(isinstance(v, (int, float)) for v in rates.values()):
        rates = {"": rates}
    layers: list[str] = []
    for series in rates.values():
        layers += [name for name in series if name not in layers]
    n = len(rates)
    width = 0.8 / n
    fig, axes = new_figure(1, 1, size=(max(4.0, 0.55 * len(layers) * max(n, 1) + 1.5), 3.4))
    ax = axes[0, 0]
    for i, (label, series) in enumerate(rates.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(layers))]
        ax.bar(xs, [float(series.get(name, math.nan)) for name in layers], width, label=label or None)
    ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if n > 1 or next(iter(rates)):
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path)


def plot_bars(
    values: Mapping[str, float],
    *,
    errors: Mapping[str, float] | None = None,
    ylabel: str = "test accuracy (%)",
    xlabel: str = "model",
    title: str | None = None,
    path: str | Path | None = None,
    zoom: bool = True,
):
    """One bar per entry, its value written on it; ``zoom`` starts the axis a little below the smallest
    value (accuracies close together stay readable)."""
    if not values:
        raise ValueError("values: expected {label: number}, got an empty mapping")
    fig, axes = new_figure(1, 1, size=(max(3.5, 1.1 * len(values) + 1.2), 3.2))
    ax = axes[0, 0]
    names, ys = list(values), [float(v) for v in values.values()]
    err = [float((errors or {}).get(k, 0.0)) for k in names]
    bars = ax.bar(range(len(ys)), ys, yerr=err if any(err) else None, capsize=3, color="#4c72b0")
    for b, y in zip(bars, ys):
        ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(ys)), names, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if zoom and ys:
        lo, hi = min(ys), max(ys)
        ax.set_ylim(
            max(0.0, lo - max(5.0, 0.3 * (hi - lo)) - max(err)), hi + max(1.5, 0.1 * (hi - lo)) + max(err)
        )
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path)

"""Figures of blurred knowledge distillation: the head's feature maps for one sample, accuracies and curves.

Each plotting function takes plain data, returns a labelled ``matplotlib.figure.Figure`` and, with
``path``, writes a compressed PNG; matplotlib's backend is never switched (see :mod:`sj_common.plots`;
matplotlib is the ``[plots]`` extra).

* :func:`feature_maps` runs a trained :class:`~sj_bkd.distill.DistillationModel` on one sample and returns
  the four maps of the BKD head (teacher ``F_t``, aligned student ``S = A(mean_t F_s)``, masked ``S * M``,
  regenerated ``G(S * M)``); :func:`plot_feature_maps` draws them, one row each;
* :func:`plot_distillation`: teacher / student / distilled test accuracy, and the students' val curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sj_common.plots import _finish, integer_axis, new_figure, plot_bars

__all__ = ["feature_maps", "plot_feature_maps", "plot_distillation"]


@torch.no_grad()
def feature_maps(model, x: torch.Tensor, *, seed: int = 0) -> dict[str, np.ndarray]:
    """The BKD head's maps for the first sample of ``x`` (a loader batch's input, ``[B, C, H, W]`` images
    or ``[B, T, ...]`` frames): ``{"teacher", "student", "masked", "regenerated"}`` each ``[C_t, H, W]``
    (student: aligned to the teacher's channels), plus ``"mask"`` ``[C_t]`` (1 = kept; drawn with
    ``seed``). ``model``: a :class:`~sj_bkd.distill.DistillationModel` in a blurred mode (``bkd`` /
    ``mixed``) with a CNN teacher."""
    from spikingjelly.activation_based import functional

    from .distill import DistillationModel, student_input
    from .head import BlurredDistillationHead

    if not isinstance(model, DistillationModel):
        raise TypeError(f"model: expected a sj_bkd DistillationModel, got {type(model).__name__}")
    head = model.head
    if (
        not isinstance(head, BlurredDistillationHead)
        or model.student_tap is None
        or head.teacher_kind != "cnn"
    ):
        raise ValueError(
            f"model: expected a blurred-distillation mode ('bkd' or 'mixed') with a CNN teacher, "
            f"got mode={model.mode!r}"
        )
    was = model.training
    model.eval()
    try:
        x1 = x[:1]
        model.student(student_input(x1, model.T, model.sequence_input))
        fs = model.student_tap.pop()
        model._teacher_forward(x1, None)
        (ft,) = model._pop_teacher_features()  # an SNN teacher's: averaged over its time steps
    finally:
        functional.reset_net(model.student)
        model.train(was)
    s = head.align(head.student_map(fs))
    ft = head.teacher_target(ft, 1, tuple(s.shape[-2:]))
    mask = head.make_mask(1, s.device, generator=torch.Generator(device=s.device).manual_seed(seed))
    masked = s * mask
    regen = head.generation(masked)
    return {
        "teacher": ft[0].float().cpu().numpy(),
        "student": s[0].float().cpu().numpy(),
        "masked": masked[0].float().cpu().numpy(),
        "regenerated": regen[0].float().cpu().numpy(),
        "mask": mask[0, :, 0, 0].cpu().numpy(),
    }


def plot_feature_maps(
    maps: Mapping[str, Any],
    channels: int | Sequence[int] = 6,
    *,
    title: str | None = None,
    path: str | Path | None = None,
):
    """Rows teacher / student / masked / regenerated (any of :func:`feature_maps`' keys present), columns
    ``channels`` (a count: the teacher's most active channels, at least one of them masked when the mask
    drops any; or a list of channel indices). Each row shares one colour scale; masked channels are
    marked in the column labels."""
    rows = [k for k in ("teacher", "student", "masked", "regenerated") if k in maps]
    if not rows:
        raise ValueError(
            f"maps: expected some of 'teacher', 'student', 'masked', 'regenerated', got {sorted(maps)}"
        )
    arrs = {k: np.asarray(maps[k], dtype=np.float32) for k in rows}
    for k, a in arrs.items():
        if a.ndim != 3:
            raise ValueError(f"maps[{k!r}]: expected a [C, H, W] map, got shape {a.shape}")
    mask = np.asarray(maps["mask"]) if "mask" in maps else None
    C = arrs[rows[0]].shape[0]
    if isinstance(channels, int):
        ref = arrs.get("teacher", arrs[rows[0]])
        order = list(np.argsort(-np.abs(ref).reshape(C, -1).mean(1)))
        chosen = order[: min(channels, C)]
        if mask is not None and (mask == 0).any() and not any(mask[c] == 0 for c in chosen):
            dropped = [c for c in order if mask[c] == 0][0]
            chosen = chosen[:-1] + [dropped]
        chosen = sorted(int(c) for c in chosen)
    else:
        chosen = [int(c) for c in channels]
    fig, axes = new_figure(len(rows), len(chosen), size=(1.25 * len(chosen) + 0.6, 1.3 * len(rows) + 0.5))
    for r, k in enumerate(rows):
        a = arrs[k][chosen]
        vmax = float(np.abs(a).max()) or 1.0
        for c, ch in enumerate(chosen):
            ax = axes[r, c]
            ax.imshow(a[c], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            dropped = mask is not None and mask[ch] == 0
            ax.set_xlabel(f"ch {ch}" + (" (masked)" if dropped else ""), fontsize=6)
            if c == 0:
                ax.set_ylabel(k, fontsize=8)
    fig.suptitle(
        title or "BKD head: teacher, student, masked and regenerated features (one sample)", fontsize=8
    )
    return _finish(fig, path, dpi=110)


def plot_distillation(
    accuracies: Mapping[str, float],
    histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    errors: Mapping[str, float] | None = None,
    key: str = "val_acc1",
    title: str | None = None,
    path: str | Path | None = None,
):
    """Left: test accuracy (%) per model (``{"teacher": 97.1, "student": 90.2, "distilled": 91.5}``,
    ``errors`` optional std over seeds). Right (with ``histories``, engine history rows per model): the
    ``key`` curve of each model over its epochs (1-based, as the engine writes them)."""
    if not histories:
        return plot_bars(accuracies, errors=errors, title=title or "distillation", path=path)
    fig, axes = new_figure(1, 2, size=(9.0, 3.4))
    ax = axes[0, 0]
    names, ys = list(accuracies), [float(v) for v in accuracies.values()]
    err = [float((errors or {}).get(k, 0.0)) for k in names]
    bars = ax.bar(
        range(len(ys)), ys, yerr=err if any(err) else None, capsize=3, color=[f"C{i}" for i in range(len(ys))]
    )
    for b, y in zip(bars, ys):
        ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(ys)), names, fontsize=8)
    lo, hi = min(ys), max(ys)
    ax.set_ylim(max(0.0, lo - max(5.0, 0.3 * (hi - lo)) - max(err)), min(101.0, hi + 2.0 + max(err)))
    ax.set_xlabel("model")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    for i, (name, rows) in enumerate(histories.items()):
        pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if pts:
            xs, vs = zip(*pts)
            color = f"C{names.index(name)}" if name in names else f"C{i + len(names)}"
            ax.plot(xs, vs, "o-" if len(xs) < 25 else "-", ms=3, color=color, label=name)
    ax.set_xlabel("epoch")
    integer_axis(ax)
    ax.set_ylabel(key.replace("val_acc1", "val accuracy (%)"))
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.suptitle(title or "teacher, student and distilled student", fontsize=10)
    return _finish(fig, path)

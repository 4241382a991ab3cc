"""Loss landscapes of multi-step SNNs along filter-normalised random directions (Li et al., NeurIPS 2018).

``L(a, b) = loss(theta + a * d1 + b * d2)`` on a fixed evaluation subset, around trained weights
``theta``. Each direction is Gaussian and *filter-normalised*: every filter (the slice along dim 0 of a
weight with ``dim > 1``: a conv output channel, a linear output row) is rescaled to the norm of the same
filter of ``theta``, so that the scale invariance of ReLU/BN/spiking nets does not distort the
comparison between networks. Parameters with ``dim <= 1`` (BatchNorm weights and biases, all biases)
get a zero direction, as the method prescribes ("ignore biasbn"): they are kept at their trained values.
BatchNorm running statistics are buffers, not parameters: they are untouched and, in eval mode, used
as trained. The SNN is reset (``functional.reset_net``) before and after every batch.

Why written here rather than taken from ``loss-landscapes`` (PyPI, 3.0.6, checked on torch 2.14.1): it
imports and runs, but its ``random_line``/``random_plane`` with ``normalization='filter'`` raise
``ZeroDivisionError`` on any all-zero 1-D parameter (a freshly initialised BatchNorm bias); they rescale
each element of a 1-D parameter to that element's magnitude instead of zeroing BatchNorm/bias
directions (not Li et al.'s rule); they draw uniform [0, 1) directions (every component positive), not
Gaussian ones; ``random_line`` starts one step away from the weights and walks one way only, and
``random_plane`` reaches its points by repeated in-place additions (the centre is not the trained
weights bit-exactly); the extent is ``||theta|| / distance`` (larger ``distance``, smaller slice); no
axis coordinates are returned; and its metric calls ``model(x)`` with no place for the SNN reset. The
~100 lines below do exactly the method.

Cost (measured on the embedded default, the ``sj_transfer`` mnist5k network: T=8, 17x17 frames, conv
16-P-32-P, one thread): one evaluation of 256 samples takes 0.32 s of CPU time, so an 11 x 11 2-D grid
on 256 samples is 121 evaluations, about 40 s of CPU per model, and a 21-point 1-D slice about 7 s. On
the project's shared 2-core machine under load (load average 8) the same 2-D grid took 118-150 s of wall
time per model. Cost scales with ``points**2 * samples``; ``examples/transfer_analysis.py`` writes the
timings of its run to ``analysis.json``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

__all__ = ["LOSSES", "Landscape", "random_direction", "evaluate", "landscape_1d", "landscape_2d", "grid"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Landscape:
    """A landscape slice. ``loss``/``acc``: ``[n]`` (1-D, along ``alphas``) or ``[n, n]`` (2-D, ``[i, j]`` at
    ``(alphas[i], betas[j])``); ``origin_loss``: the loss at ``theta`` (the grid's centre);
    ``seconds``: wall time; ``evaluations``: loss evaluations of the whole subset."""

    alphas: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    origin_loss: float
    seconds: float
    evaluations: int
    betas: np.ndarray | None = None
    seed: int = 0
    info: dict = field(default_factory=dict)


def grid(radius: float, points: int) -> np.ndarray:
    """``points`` (odd) evenly spaced coordinates in ``[-radius, radius]`` whose centre is exactly 0."""
    if not isinstance(points, int) or points < 3 or points % 2 == 0:
        raise ValueError(
            f"points: expected an odd int >= 3 (the centre is the trained weights), got {points!r}"
        )
    if not radius > 0:
        raise ValueError(f"radius: expected a positive number, got {radius!r}")
    half = points // 2
    return np.arange(-half, half + 1, dtype=np.float64) * (float(radius) / half)


def random_direction(net: nn.Module, seed: int = 0, index: int = 0) -> list[torch.Tensor]:
    """A filter-normalised Gaussian direction, one tensor per parameter of ``net`` (in ``parameters()`` order).

    ``d_f <- d_f / ||d_f|| * ||theta_f||`` for every filter ``f`` of a parameter with ``dim > 1``; zero for
    parameters with ``dim <= 1`` (BatchNorm and biases). Each parameter's draw is seeded by ``(seed,
    index, its name)``, so two networks that share parameter names and shapes (a transfer model and its
    baseline, which lacks the static head) get the same direction on the shared parameters, and
    ``index`` 0 and 1 give the two directions of a 2-D slice.
    """
    out = []
    for name, p in net.named_parameters():
        w = p.detach()
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
            continue
        g = torch.Generator().manual_seed(
            (int(seed) * 1_000_003 + int(index) * 7_919 + zlib.crc32(name.encode())) % 2**63
        )
        d = torch.randn(w.shape, generator=g, dtype=w.dtype).to(w.device)
        dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        wn = w.flatten(1).norm(dim=1)
        out.append(d * (wn / dn).view(-1, *([1] * (w.dim() - 1))))
    return out


def _ce_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = net(x)  # [T, B, K]
    mean = logits.mean(0)
    return F.cross_entropy(mean, y, reduction="sum"), (mean.argmax(1) == y).sum()


def _tet_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from sj_common.engine.steps import tet_loss

    logits = net(x)
    return tet_loss(logits, y, lam=0.0) * y.shape[0], (logits.mean(0).argmax(1) == y).sum()


#: Built-in losses: ``"ce"``: cross-entropy of the time-averaged logits (what the engine scores);
#: ``"tet"``: the mean over steps of the per-step cross-entropies (TET, Deng et al. 2022, without its
#: MSE term: the objective SNNs trained with TET minimise).
LOSSES = {"ce": _ce_loss, "tet": _tet_loss}

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _loss_fn(loss: str, loss_fn: LossFn | None) -> LossFn:
    if loss_fn is not None:
        return loss_fn
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {sorted(LOSSES)} (or a loss_fn), got {loss!r}")
    return LOSSES[loss]


def evaluate(
    net: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn | None = None,
    loss: str = "ce",
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``net`` on ``batches`` of ``(x [T, B, ...], y [B])``, reset per batch.

    ``loss``: a key of :data:`LOSSES` on ``net(x) [T, B, K]``; or ``loss_fn(net, x, y) -> (summed loss,
    number correct)``. Sums accumulate in float64.
    """
    fn = _loss_fn(loss, loss_fn)
    total, correct, n = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            functional.reset_net(net)
            try:
                s, c = fn(net, x, y)
            finally:
                functional.reset_net(net)
            total += float(s)
            correct += float(c)
            n += int(y.shape[0])
    if n == 0:
        raise ValueError("batches: expected at least one sample, got none")
    return total / n, correct / n


def _check_batches(batches) -> list[Batch]:
    batches = list(batches)
    for i, b in enumerate(batches):
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and b[0].dim() >= 3 and b[1].dim() == 1):
            raise ValueError(f"batches[{i}]: expected (x [T, B, ...], y [B]), got {type(b).__name__}")
    return batches


def _surface(net, batches, dirs, coords, loss_fn: LossFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Loss/accuracy at every point of ``coords`` (tuples of coefficients of ``dirs``); weights restored."""
    params = list(net.parameters())
    theta = [p.detach().clone() for p in params]
    loss, acc = np.zeros(len(coords)), np.zeros(len(coords))
    was_training = net.training
    net.eval()
    try:
        for k, c in enumerate(coords):
            with torch.no_grad():
                for p, t, *ds in zip(params, theta, *dirs):
                    q = t.clone()
                    for a, d in zip(c, ds):
                        q.add_(d, alpha=float(a))  # a == 0 leaves theta bit-exact
                    p.copy_(q)
            loss[k], acc[k] = evaluate(net, batches, loss_fn)
    finally:
        with torch.no_grad():
            for p, t in zip(params, theta):
                p.copy_(t)
        net.train(was_training)
    return loss, acc, len(coords)


def landscape_1d(
    net: nn.Module,
    batches: Sequence[Batch],
    *,
    radius: float = 1.0,
    points: int = 21,
    seed: int = 0,
    loss: str = "ce",
    loss_fn: LossFn | None = None,
) -> Landscape:
    """1-D slice ``loss(theta + a d)``, ``a`` in :func:`grid` ``(radius, points)``, one seeded direction.

    ``batches``: the fixed evaluation subset, a list of ``(x [T, B, ...], y [B])`` (materialise it once).
    ``loss``: a key of :data:`LOSSES` (``"ce"``, ``"tet"``), or ``loss_fn`` as in :func:`evaluate`.
    The network is evaluated in eval mode; its weights and mode are restored afterwards.
    """
    batches, fn = _check_batches(batches), _loss_fn(loss, loss_fn)
    d = random_direction(net, seed, 0)
    a = grid(radius, points)
    t0 = time.perf_counter()
    loss, acc, n = _surface(net, batches, [d], [(x,) for x in a], fn)
    return Landscape(a, loss, acc, float(loss[points // 2]), time.perf_counter() - t0, n, seed=int(seed))


def landscape_2d(
    net: nn.Module,
    batches: Sequence[Batch],
    *,
    radius: float = 1.0,
    points: int = 11,
    seed: int = 0,
    loss: str = "ce",
    loss_fn: LossFn | None = None,
) -> Landscape:
    """2-D slice ``loss(theta + a d1 + b d2)`` on a ``points x points`` grid (two seeded directions).

    Cost: ``points**2`` evaluations of the subset (see the module docstring for measured times).
    """
    batches, fn = _check_batches(batches), _loss_fn(loss, loss_fn)
    d1, d2 = random_direction(net, seed, 0), random_direction(net, seed, 1)
    a = grid(radius, points)
    t0 = time.perf_counter()
    coords = [(x, y) for x in a for y in a]
    loss, acc, n = _surface(net, batches, [d1, d2], coords, fn)
    loss, acc = loss.reshape(points, points), acc.reshape(points, points)
    c = points // 2
    return Landscape(
        a, loss, acc, float(loss[c, c]), time.perf_counter() - t0, n, betas=a.copy(), seed=int(seed)
    )

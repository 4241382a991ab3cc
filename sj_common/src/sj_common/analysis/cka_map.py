"""Layer-wise (and step-wise) CKA maps of multi-step SNNs.

Linear CKA (Kornblith et al., ICML 2019, biased HSIC estimator) between every pair of recorded layers of
two models, or of one model on two inputs (e.g. the static and the event branch of a transfer model,
which share their feature extractor), or between every pair of time steps of one layer.

The CKA itself is implemented here in float64 (:func:`linear_cka`), not imported from
``sj_transfer.cka``: ``sj_common`` must not depend on a plugin (``sj_transfer`` depends on
``sj_common``). It is the same estimator as ``sj_transfer.linear_cka`` (``<Kc, Lc>_F / (||Kc||_F
||Lc||_F)`` with centred Gram matrices) without the training-time concerns (no ``eps``, no autograd,
always float64, for analysis); ``sj_transfer.cka`` could reuse it later for its non-differentiable uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

__all__ = ["linear_cka", "cka_map", "cka_time_map", "collect_features", "default_layers"]


def _gram(x: torch.Tensor) -> torch.Tensor:
    """Centred Gram matrix ``Xc Xc^T`` (``Xc``: columns centred), float64 ``[B, B]``."""
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    x = x - x.mean(dim=0, keepdim=True)
    return x @ x.T


def _cka_gram(k: torch.Tensor, l: torch.Tensor) -> float:
    nk, nl = float((k * k).sum().sqrt()), float((l * l).sum().sqrt())
    if nk == 0.0 or nl == 0.0:
        return 0.0  # a side without variation across the samples aligns with nothing
    return float((k * l).sum()) / (nk * nl)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of ``x [B, ...]`` and ``y [B, ...]`` (the same ``B`` samples; flattened per sample), float64.

    In [0, 1]; 1 for ``x`` against itself (or any rotation / isotropic scaling of it); 0 when either
    side is constant across the samples.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name}: expected features [B, ...] with B >= 2 samples, got {shape}")
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"y: expected the same number of samples as x ({x.shape[0]} >= 2), got {y.shape[0]}")
    return _cka_gram(_gram(x), _gram(y))


def cka_map(
    feats_a: dict[str, torch.Tensor], feats_b: dict[str, torch.Tensor] | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """``(M [len(a), len(b)], names_a, names_b)`` with ``M[i, j] = linear_cka(a_i, b_j)``.

    ``feats_*``: layer name -> features ``[B, ...]`` of the same samples (see :func:`collect_features`).
    ``feats_b=None`` compares ``feats_a`` with itself: then ``M`` is symmetric (computed once per pair)
    with ones on the diagonal (up to float64 rounding).
    """
    if not feats_a:
        raise ValueError("feats_a: expected at least one layer, got none")
    same = feats_b is None
    feats_b = feats_a if same else feats_b
    if not feats_b:
        raise ValueError("feats_b: expected at least one layer, got none")
    na, nb = list(feats_a), list(feats_b)
    ga = {n: _gram(v) for n, v in feats_a.items()}
    gb = ga if same else {n: _gram(v) for n, v in feats_b.items()}
    sizes = {g.shape[0] for g in list(ga.values()) + list(gb.values())}
    if len(sizes) != 1:
        raise ValueError(
            f"feats_b: expected every layer to hold the same samples, got batch sizes {sorted(sizes)}"
        )
    m = np.zeros((len(na), len(nb)))
    for i, a in enumerate(na):
        for j, b in enumerate(nb):
            if same and j < i:
                m[i, j] = m[j, i]
            else:
                m[i, j] = _cka_gram(ga[a], gb[b])
    return m, na, nb


def cka_time_map(x: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
    """``M [T, T']`` with ``M[s, t] = linear_cka(x[s], y[t])`` for multi-step features ``[T, B, ...]``.

    ``y=None`` compares the steps of ``x`` with each other (symmetric, ones on the diagonal).
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        raise ValueError(f"x: expected multi-step features [T, B, ...], got {getattr(x, 'shape', type(x))}")
    fa = {str(t): x[t] for t in range(x.shape[0])}
    if y is None:
        return cka_map(fa)[0]
    if not isinstance(y, torch.Tensor) or y.dim() < 3:
        raise ValueError(f"y: expected multi-step features [T, B, ...], got {getattr(y, 'shape', type(y))}")
    return cka_map(fa, {str(t): y[t] for t in range(y.shape[0])})[0]


def default_layers(net: nn.Module) -> list[str]:
    """Names of every spiking neuron layer of ``net`` (SpikingJelly ``BaseNode``), in registration order."""
    from spikingjelly.activation_based import neuron

    return [n for n, m in net.named_modules() if n and isinstance(m, neuron.BaseNode)]


def collect_features(
    net: nn.Module,
    batches: Iterable[torch.Tensor],
    layers: Sequence[str] | None = None,
    forward: Callable[[nn.Module, torch.Tensor], object] | None = None,
    time: str = "flatten",
) -> dict[str, torch.Tensor]:
    """Outputs of the named modules of ``net`` over ``batches`` of inputs ``x [T, B, ...]``.

    Args:
        layers: module names (``net.named_modules()``; default :func:`default_layers`).
        forward: ``f(net, x)`` (default ``net(x)``), e.g. ``lambda n, x: n(x, head="static")``.
        time: how a multi-step output ``[T, B, ...]`` (or ``[T*B, ...]`` inside a ``SeqToANNContainer``)
            becomes one sample's features: ``"flatten"`` (``[B, T*...]``: all steps), ``"mean"`` (time
            average ``[B, ...]``) or ``"steps"`` (keep ``[T, B, ...]``, for :func:`cka_time_map`).

    Returns: name -> float32 tensor on the CPU, the batches concatenated along the sample axis. The
    network is reset before and after every batch and evaluated without gradients.
    """
    if time not in ("flatten", "mean", "steps"):
        raise ValueError(f"time: expected 'flatten', 'mean' or 'steps', got {time!r}")
    names = list(layers) if layers is not None else default_layers(net)
    modules = dict(net.named_modules())
    missing = [n for n in names if n not in modules or not n]
    if missing or not names:
        raise ValueError(f"layers: expected module names of net, got unknown {missing or names!r}")
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    current: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(module, inputs, output):
            current[name] = output.detach()

        return fn

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    try:
        with torch.no_grad():
            for x in batches:
                if not isinstance(x, torch.Tensor) or x.dim() < 3:
                    raise ValueError(
                        f"batches: expected inputs [T, B, ...], got {getattr(x, 'shape', type(x))}"
                    )
                T, B = x.shape[:2]
                current.clear()
                functional.reset_net(net)
                try:
                    forward(net, x) if forward is not None else net(x)
                finally:
                    functional.reset_net(net)
                for n in names:
                    if n not in current:
                        raise ValueError(f"layers: module {n!r} was not called by the forward pass")
                    o = current[n]
                    if not (o.dim() >= 2 and tuple(o.shape[:2]) == (T, B)) and o.shape[0] == T * B:
                        o = o.reshape(T, B, *o.shape[1:])  # a module inside a SeqToANNContainer
                    if o.dim() < 2 or tuple(o.shape[:2]) != (T, B):
                        raise ValueError(
                            f"layers: module {n!r} returned {tuple(o.shape)}, not a multi-step output [T={T}, B={B}, ...]"
                        )
                    if time == "flatten":
                        o = o.transpose(0, 1).reshape(B, -1)
                    elif time == "mean":
                        o = o.mean(0)
                    out[n].append(o.float().cpu())
    finally:
        for h in handles:
            h.remove()
    dim = 1 if time == "steps" else 0
    return {n: torch.cat(v, dim=dim) for n, v in out.items()}

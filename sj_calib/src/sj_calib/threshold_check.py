"""The conversion check: does the QCFS ANN agree with its float twin on an example batch?

An IF neuron with threshold theta = lambda, run for T steps on constant input, reproduces the QCFS activation
with L = T levels; as T grows the SNN approaches the *float twin*: the same network with every QCFS replaced
by ``clamp(z, 0, lambda)`` (no quantisation). When the learned thresholds sit far above the activations
(lambda barely moved from a large ``init_threshold``), the QCFS ANN only works through its coarse levels and
disagrees with its float twin, and the SNN's accuracy then swings with T (a BatchNorm CNN trained 2 epochs
with lambda starting at 8.0: see ``docs/calib_dropin/results.json``).

The check: top-1 agreement = share of the example samples whose argmax is the same for the QCFS ANN and its
float twin; :func:`sj_calib.convert` warns (:class:`ConversionWarning`) below :data:`MIN_AGREEMENT`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .qcfs import QCFS

__all__ = ["ConversionWarning", "MIN_AGREEMENT", "float_twin", "check_conversion"]

#: warn when fewer than this share of the example samples keep their top-1 class in the float twin
MIN_AGREEMENT = 0.9


class ConversionWarning(UserWarning):
    """The converted SNN is likely to lose accuracy (see :func:`check_conversion`)."""


class _Clip(nn.Module):
    """``clamp(z, 0, lambda)``: the un-quantised QCFS, the limit of the IF neuron for large T."""

    def __init__(self, threshold: torch.Tensor):
        super().__init__()
        self.threshold = threshold

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.clamp(min=0).minimum(self.threshold)


def float_twin(ann: nn.Module) -> nn.Module:
    """A copy of ``ann`` (eval mode) with every :class:`QCFS` replaced by ``clamp(z, 0, lambda)``."""
    if isinstance(ann, QCFS):
        return _Clip(ann.threshold.detach())
    twin = copy.deepcopy(ann).eval()
    for name, m in list(twin.named_modules()):
        if isinstance(m, QCFS):
            twin.set_submodule(name, _Clip(m.threshold.detach()))
    return twin


@torch.no_grad()
def check_conversion(ann: nn.Module, example_input: torch.Tensor) -> dict:
    """Compare the QCFS ANN with its float twin on ``example_input`` (a static batch ``[B, ...]``).

    Returns ``{"agreement": share of samples with the same top-1 class (0..1), "samples": B,
    "layers": {qcfs name: {"threshold": lambda, "p99": 99th percentile of its input}}}``; ``ann`` is run in
    eval mode on a copy (its own mode and buffers are untouched).
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2 or len(example_input) < 1:
        got = tuple(example_input.shape) if isinstance(example_input, torch.Tensor) else type(example_input)
        raise ValueError(f"example_input: expected a static batch [B, ...] with B >= 1, got {got}")
    model = copy.deepcopy(ann).eval()
    stats: dict[str, dict[str, float]] = {}

    def hook(name):
        def fn(mod, args):
            z = args[0].detach().flatten().float()
            # torch.quantile refuses more than 2**24 elements: subsample evenly beyond that
            z = z[:: max(1, z.numel() // 2**24 + 1)]
            stats[name] = {"threshold": float(mod.threshold.detach()), "p99": float(z.quantile(0.99))}

        return fn

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, QCFS)]
    try:
        q = model(example_input)
    finally:
        for h in handles:
            h.remove()
    f = float_twin(model)(example_input)
    if q.dim() != 2:
        raise ValueError(f"ann: expected [B, classes] outputs for the check, got shape {tuple(q.shape)}")
    agreement = int((q.argmax(1) == f.argmax(1)).sum()) / len(example_input)  # exact: 9 of 10 is 0.9
    return {"agreement": agreement, "samples": len(example_input), "layers": stats}


def warning_text(check: dict) -> str:
    """The :class:`ConversionWarning` message for a failed :func:`check_conversion` result."""
    high = sorted(
        ((n, st) for n, st in check["layers"].items() if st["threshold"] > st["p99"]),
        key=lambda item: item[1]["threshold"] / max(item[1]["p99"], 1e-12),
        reverse=True,
    )
    layers = "; ".join(f"{n!r}: lambda {st['threshold']:.3g} > p99 {st['p99']:.3g}" for n, st in high[:4])
    return (
        f"ann: the QCFS ANN and its float twin (every QCFS as clamp(z, 0, lambda), which the SNN approaches "
        f"as T grows) agree on the top-1 class of only {100 * check['agreement']:.1f}% of example_input "
        f"({check['samples']} samples; warning below {100 * MIN_AGREEMENT:.0f}%): the SNN's accuracy will "
        "likely swing with T. "
        + (f"Thresholds above the 99th percentile of their input: {layers}. " if layers else "")
        + "Train with init_threshold near the activations' scale (replace_relu_by_qcfs(..., init_threshold=2.0) "
        "after BatchNorm) or longer, so that lambda can settle."
    )

"""Surrogate gradients of the method, as SpikingJelly surrogate functions.

* :class:`QGateGrad` (VGG-SNN, N-Caltech101, CIFAR10-DVS): forward Heaviside, backward
  ``alpha - alpha^2 |x|`` on ``|x| <= 1/alpha`` (a triangle), ``alpha = 2``. That is exactly SpikingJelly's
  ``surrogate.PiecewiseQuadratic(alpha=2)``, so QGateGrad *is* that class (a subclass that only changes the
  default alpha and the name); tests prove the gradients equal on a grid. Being a PiecewiseQuadratic, it
  inherits that class's CUDA code generation (used by 0.0.0.0.14's CuPy neurons).
* :func:`back_ei_gate_grad` (N-Omniglot): a rectangle of height 1 on ``|x| < 0.5``: SpikingJelly 2.x's
  ``surrogate.Rect(alpha=1)``; 0.0.0.0.14 has no ``Rect``, so a small equivalent is defined here (a
  SpikingJelly-line difference that could move to ``sj_common.compat``).
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import surrogate

__all__ = ["QGateGrad", "back_ei_gate_grad", "RectGrad"]


class QGateGrad(surrogate.PiecewiseQuadratic):
    """The paper's QGateGrad: ``surrogate.PiecewiseQuadratic`` with ``alpha = 2`` by default.

    Input ``x = v - v_threshold`` of any shape; output spikes of the same shape.
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True):
        super().__init__(alpha=alpha, spiking=spiking)


class _rect(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        if x.requires_grad:
            ctx.save_for_backward(x)
            ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() < 0.5 / ctx.alpha).to(grad_output) * ctx.alpha, None


class RectGrad(torch.nn.Module):
    """Heaviside forward, rectangle ``alpha * 1[|x| < 0.5/alpha]`` backward (= 2.x ``surrogate.Rect``).

    Only used on SpikingJelly 0.0.0.0.14, which lacks ``Rect``; torch backend only (no CuPy code).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True):
        super().__init__()
        if not spiking:
            raise ValueError("spiking: RectGrad only supports spiking=True")
        self.alpha = alpha
        self.spiking = spiking

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _rect.apply(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def back_ei_gate_grad(alpha: float = 1.0) -> torch.nn.Module:
    """The N-Omniglot surrogate: ``surrogate.Rect(alpha)`` where available, else :class:`RectGrad`."""
    rect = getattr(surrogate, "Rect", None)
    return rect(alpha=alpha) if rect is not None else RectGrad(alpha=alpha)

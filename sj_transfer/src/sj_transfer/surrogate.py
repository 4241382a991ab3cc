"""Surrogate gradients of the method, as SpikingJelly surrogate functions.

* :class:`QGateGrad` (VGG-SNN, N-Caltech101, CIFAR10-DVS): forward Heaviside, backward
  ``alpha - alpha^2 |x|`` on ``|x| <= 1/alpha`` (a triangle), ``alpha = 2``. That is exactly SpikingJelly's
  ``surrogate.PiecewiseQuadratic(alpha=2)``, so QGateGrad *is* that class (a subclass that only changes the
  default alpha and the name); tests prove the gradients equal on a grid. Being a PiecewiseQuadratic, it
  inherits that class's CUDA code generation (used by 0.0.0.0.14's CuPy neurons).
* :func:`back_ei_gate_grad` (N-Omniglot): a rectangle of height 1 on ``|x| < 0.5``: SpikingJelly 2.x's
  ``surrogate.Rect(alpha=1)``; 0.0.0.0.14 has no ``Rect``, so ``sj_common.compat.rect_surrogate`` falls
  back to an equivalent (:class:`~sj_common.compat.RectGrad`, re-exported here).
"""

from __future__ import annotations

import torch
from sj_common.compat import RectGrad, rect_surrogate
from spikingjelly.activation_based import surrogate

__all__ = ["QGateGrad", "back_ei_gate_grad", "RectGrad"]


class QGateGrad(surrogate.PiecewiseQuadratic):
    """The paper's QGateGrad: ``surrogate.PiecewiseQuadratic`` with ``alpha = 2`` by default.

    Input ``x = v - v_threshold`` of any shape; output spikes of the same shape.
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True):
        super().__init__(alpha=alpha, spiking=spiking)


def back_ei_gate_grad(alpha: float = 1.0) -> torch.nn.Module:
    """The N-Omniglot surrogate: ``surrogate.Rect(alpha)`` where available, else :class:`RectGrad`."""
    return rect_surrogate(alpha)

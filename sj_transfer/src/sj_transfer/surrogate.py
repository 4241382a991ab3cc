"""Surrogate gradients of the method, as SpikingJelly's own surrogate functions.

* :func:`QGateGrad` (VGG-SNN, N-Caltech101, CIFAR10-DVS): forward Heaviside, backward
  ``alpha - alpha^2 |x|`` on ``|x| <= 1/alpha`` (a triangle), ``alpha = 2``. That is exactly SpikingJelly's
  ``surrogate.PiecewiseQuadratic(alpha=2)``, and :func:`QGateGrad` returns that class itself (a factory,
  not a subclass). Why: SpikingJelly 2.x runs a neuron on its fused kernels (torch on CPU, Triton/CUDA on
  GPU) only when the surrogate's class is one of its own (``spikingjelly._ops.surrogate._surrogate_spec``
  checks the class's module and name); any subclass, even one that changes nothing, sends every LIF
  neuron to the step-by-step Python reference loop (same numbers, many times slower). On 0.0.0.0.14 the
  same object carries that line's CuPy code generation.
* :func:`back_ei_gate_grad` (N-Omniglot): a rectangle of height 1 on ``|x| < 0.5``: SpikingJelly 2.x's
  ``surrogate.Rect(alpha=1)``; 0.0.0.0.14 has no ``Rect``, so ``sj_common.compat.rect_surrogate`` falls
  back to an equivalent (:class:`~sj_common.compat.RectGrad`, re-exported here). SpikingJelly 2.x has no
  fused kernel for ``Rect``: neurons using it run the reference loop (SpikingJelly's limitation).
"""

from __future__ import annotations

import torch
from sj_common.compat import RectGrad, rect_surrogate
from spikingjelly.activation_based import surrogate

__all__ = ["QGateGrad", "back_ei_gate_grad", "RectGrad"]


def QGateGrad(alpha: float = 2.0, spiking: bool = True) -> surrogate.PiecewiseQuadratic:
    """The paper's QGateGrad: ``surrogate.PiecewiseQuadratic(alpha, spiking)``, ``alpha = 2`` by default.

    A factory that returns SpikingJelly's own class (see the module docstring for why not a subclass).
    The module's input is ``x = v - v_threshold`` of any shape; its output spikes have the same shape.
    """
    return surrogate.PiecewiseQuadratic(alpha=alpha, spiking=spiking)


def back_ei_gate_grad(alpha: float = 1.0) -> torch.nn.Module:
    """The N-Omniglot surrogate: ``surrogate.Rect(alpha)`` where available, else :class:`RectGrad`."""
    return rect_surrogate(alpha)

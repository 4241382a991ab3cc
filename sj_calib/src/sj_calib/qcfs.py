"""QCFS activation (quantization-clip-floor-shift, Bu et al., ICLR 2022) and helpers to put it into a model.

Reused from SpikingJelly: ``activation_based.quantize.floor`` (straight-through floor) and
``quantize.clamp`` (gradient on the closed interval), present on both SpikingJelly lines. SpikingJelly has no QCFS *training* activation (its ``SignedQCFSSequenceEncoder`` is a
spike encoder for LLM activations), hence this module.
"""

from __future__ import annotations

import copy

import torch
from spikingjelly.activation_based import quantize
from torch import nn

from .sharing import untie_shared

__all__ = ["QCFS", "replace_relu_by_qcfs", "replace_maxpool_by_avgpool", "qcfs_layers"]


class QCFS(nn.Module):
    """QCFS activation ``h(z) = lam * clip(floor(z * L / lam + 1/2) / L, 0, 1)``, a drop-in ReLU.

    Order of operations as the reference code: divide by ``lam``, multiply by ``L`` and add the
    shift 1/2, floor (straight-through gradient), divide by ``L``, clamp to [0, 1], multiply by ``lam``.
    Autograd then gives dh/dz = 1 inside ``[-lam/(2L), lam(1 + 1/(2L)))`` and 0 outside, and
    dh/dlam = q - z/lam inside, 1 above, 0 below (q: the quantized value before the clamp).

    Args:
        L: number of quantization levels (>= 1). After conversion it is the number of time steps at
            which the IF neuron reproduces this activation exactly (for constant input).
        init_threshold: initial value of the learnable per-layer ceiling ``lam`` (the reference's 8.0). Start it near
            the scale of the pre-activations (about 2 after BatchNorm): ``lam`` learns slowly, and one left far
            above the activations makes the SNN's accuracy swing with T (see :func:`replace_relu_by_qcfs`).
        shift: the shift phi (the method's 1/2; the conversion assumes 1/2, matching v_0 = theta/2).

    Shape: any ``[B, ...]`` (or ``[T, B, ...]``: the activation is element-wise); output has the same shape.
    """

    def __init__(self, L: int = 4, init_threshold: float = 8.0, shift: float = 0.5):
        super().__init__()
        if not isinstance(L, int) or isinstance(L, bool) or L < 1:
            raise ValueError(f"L: expected an int >= 1 (quantization levels), got {L!r}")
        if not init_threshold > 0:
            raise ValueError(f"init_threshold: expected > 0, got {init_threshold!r}")
        self.L = L
        self.shift = float(shift)
        #: learnable per-layer ceiling lambda, shape [1]; becomes the IF threshold theta after conversion
        self.threshold = nn.Parameter(torch.tensor([float(init_threshold)]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lam = self.threshold
        q = quantize.floor(z / lam * self.L + self.shift) / self.L
        # SpikingJelly's clamp passes the gradient on the closed interval [0, 1], as the reference's does;
        # torch.clamp (torch >= 2.1x) gives 0 at the bounds, which would freeze every neuron at q = 0.
        return quantize.clamp(q, 0.0, 1.0) * lam

    def extra_repr(self) -> str:
        return f"L={self.L}, threshold={self.threshold.item():.4g}, shift={self.shift}"


def _is_relu(m: nn.Module) -> bool:
    # The reference swaps every module whose class name contains "relu" (ReLU, ReLU6, LeakyReLU would all
    # match). We swap exactly nn.ReLU / nn.ReLU6: replacing a LeakyReLU silently changes the function.
    return type(m) in (nn.ReLU, nn.ReLU6)


def replace_relu_by_qcfs(model: nn.Module, L: int = 4, init_threshold: float = 8.0) -> nn.Module:
    """Swap every ``nn.ReLU`` / ``nn.ReLU6`` module of ``model`` (in place) for a fresh :class:`QCFS`.

    Works on torchvision-style models whose activations are modules. ReLUs called functionally inside a
    ``forward`` (``F.relu``) cannot be found this way: rewrite them as modules first.

    Every *use* gets its own QCFS (own threshold, own spiking layer after conversion): a ReLU instance
    held under several names, or called at several places by one block's ``forward`` (torchvision's
    ``BasicBlock`` calls ``self.relu`` twice), is split first (:func:`sj_calib.sharing.untie_shared`; such
    a block becomes a ``torch.fx.GraphModule`` with the same class name and submodules ``relu``,
    ``relu_1``). A ``ValueError`` when ``model``'s own ``forward`` calls one ReLU at several places: it
    cannot change its class in place.

    Args:
        L: quantization levels of every QCFS.
        init_threshold: the initial ceiling lambda of every QCFS (the reference's 8.0). Pick it near the
            scale of the pre-activations (e.g. 1-2 after BatchNorm): lambda learns slowly, and a threshold
            far above the activations leaves most neurons silent at small ``T`` after conversion and makes
            the accuracy swing with T (``docs/calib_dropin/results.json``: a BatchNorm CNN trained 2 epochs).
            ``sj_calib.convert(ann, example_input=...)`` warns when it sees this.

    Returns ``model``.
    """
    untie_shared(model, (nn.ReLU, nn.ReLU6), copy.deepcopy)
    _swap_relu(model, L, init_threshold)
    return model


def _swap_relu(model: nn.Module, L: int, init_threshold: float) -> None:
    for name, child in list(model.named_children()):
        if _is_relu(child):
            setattr(model, name, QCFS(L=L, init_threshold=init_threshold))
        else:
            _swap_relu(child, L, init_threshold)


def replace_maxpool_by_avgpool(model: nn.Module) -> nn.Module:
    """Swap every ``nn.MaxPool2d`` for ``nn.AvgPool2d`` with the same geometry, in place (do it BEFORE
    training, as the method does: average pooling of spikes is exact after conversion, max pooling is not).
    Returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.MaxPool2d):
            if child.dilation not in (1, (1, 1)) or child.return_indices:
                raise ValueError(f"{name}: cannot replace a dilated / index-returning MaxPool2d by AvgPool2d")
            setattr(
                model,
                name,
                nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode),
            )
        else:
            replace_maxpool_by_avgpool(child)
    return model


def qcfs_layers(model: nn.Module) -> list[tuple[str, QCFS]]:
    """``(name, module)`` of every QCFS in ``model``, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QCFS)]

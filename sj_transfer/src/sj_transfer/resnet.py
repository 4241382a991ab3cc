"""The reference's CEP-DVS network (``Transfer_ResNet18``), from SpikingJelly parts.

A pre-activation ResNet-18 on ``2 x 48 x 48`` frames, all multi-step (``[T, B, C, H, W]``)::

    stem: conv 3x3 2 -> 64
    4 stages x 2 blocks, widths 64 / 128 / 256 / 512, strides 1 / 2 / 2 / 2       48 -> 48 -> 24 -> 12 -> 6
    block: BN - LIF - conv 3x3 (stride) - BN - LIF - conv 3x3, plus the shortcut
    final: BN - adaptive average pool - flatten (512)  -> static head, event head (linear 512 -> K)

The CKA feature is **analog**: the pooled output of the final BatchNorm, ``[T, B, 512]`` (not a membrane
potential), as the reference taps it. [choice] Where the shape changes, the shortcut is a 1x1 convolution
(stride 2) of the block's first activation (the spikes after BN - LIF), as the common pre-activation
ResNet does; the reference's exact shortcut is not in the spec. BatchNorm per time step over the batch
(``bn_per_step=True``, the reference's step-by-step loop) or over ``T * B`` (SpikingJelly's default).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from .models import check_frames, check_head, reference_lif
from .surrogate import QGateGrad

__all__ = ["TransferResNet18"]


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Module:
    return layer.SeqToANNContainer(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False))


class _PreActBlock(nn.Module):
    """``x [T, B, cin, H, W] -> [T, B, cout, H / stride, W / stride]``."""

    def __init__(self, cin: int, cout: int, stride: int, bn, lif):
        super().__init__()
        self.bn1, self.lif1, self.conv1 = bn(cin), lif(), _conv(cin, cout, 3, stride)
        self.bn2, self.lif2, self.conv2 = bn(cout), lif(), _conv(cout, cout, 3)
        self.shortcut = _conv(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lif1(self.bn1(x))
        out = self.conv2(self.lif2(self.bn2(self.conv1(a))))
        return out + (x if self.shortcut is None else self.shortcut(a))


class TransferResNet18(nn.Module):
    """Spiking pre-activation ResNet-18 with shared features, a static head and an event head.

    Args:
        num_classes: ``K`` (20 for CEP-DVS).
        in_channels: 2 polarities.
        image_size: input height = width (48).
        tau, v_threshold: LIF parameters (2.0, 0.5; hard reset to 0, detached).
        surrogate_function: default :class:`~sj_transfer.surrogate.QGateGrad` (alpha 2).
        static_head: build the static head (False for the event-only baseline).
        bn_per_step: BatchNorm statistics per time step (the reference) instead of over ``T * B``.
        widths, blocks: stage widths and blocks per stage ((64, 128, 256, 512), (2, 2, 2, 2)).
        backend: neuron backend override (0.0.0.0.14 only).

    Shapes: ``forward(x [T, B, C, H, W], head="event") -> logits [T, B, K]``; ``forward_features`` also
    returns the tap ``[T, B, widths[-1]]``.
    """

    shared_head = False

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 2,
        image_size: int = 48,
        tau: float = 2.0,
        v_threshold: float = 0.5,
        surrogate_function: nn.Module | None = None,
        static_head: bool = True,
        bn_per_step: bool = False,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        backend: str | None = None,
    ):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
        if len(widths) != len(blocks) or not widths or min(blocks) < 1:
            raise ValueError(
                f"widths, blocks: expected equal lengths and >= 1 block each, got {widths}, {blocks}"
            )
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        sg = surrogate_function if surrogate_function is not None else QGateGrad()
        container = layer.MultiStepContainer if bn_per_step else layer.SeqToANNContainer

        def bn(c: int) -> nn.Module:
            return container(nn.BatchNorm2d(c))

        def lif() -> nn.Module:
            return reference_lif(tau, v_threshold, sg, backend)

        stages: list[nn.Module] = [_conv(in_channels, widths[0], 3)]
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                stages.append(_PreActBlock(cin, w, stride, bn, lif))
                cin = w
        self.features = nn.Sequential(*stages)
        self.final = nn.Sequential(bn(cin), layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.feature_dim = cin
        self.bn_per_step = bool(bn_per_step)
        self.event_head = layer.SeqToANNContainer(nn.Linear(cin, num_classes))
        self.static_head = layer.SeqToANNContainer(nn.Linear(cin, num_classes)) if static_head else None

    def forward_features(self, x: torch.Tensor, head: str = "event") -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [T, B, K], pooled final BN output [T, B, 512])``; the caller resets the network."""
        check_frames(x, self.in_channels, self.image_size)
        check_head(head, has_static=self.static_head is not None)
        feat = self.final(self.features(x))
        return (self.static_head if head == "static" else self.event_head)(feat), feat

    def forward(self, x: torch.Tensor, head: str = "event") -> torch.Tensor:
        """``x [T, B, C, H, W] -> logits [T, B, K]`` of the chosen head (the event head by default)."""
        return self.forward_features(x, head)[0]

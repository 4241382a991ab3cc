"""The reference's N-Omniglot network (``Transfer_SCNN``), from SpikingJelly parts.

Input ``2 x 28 x 28`` frames, no BatchNorm::

    conv 5x5 2 -> 15 (no padding, no bias) - LIF - avgpool 2      28 -> 24 -> 12
    conv 5x5 15 -> 40 (no bias)            - LIF - avgpool 2      12 ->  8 ->  4
    flatten 640 - linear 640 -> 300 - LIF (``node1``) - linear 300 -> K

**One classifier head for both domains** (the static images train the tested head too). The CKA feature is
``node1``'s membrane potential after reset, ``[T, B, 300]`` (SpikingJelly's ``store_v_seq``). Initialisation
as the reference: conv weights Kaiming-normal, linear weights uniform in [-0.1, 0.1] (biases PyTorch's
default). The surrogate is the reference's BackEIGateGrad, a rectangle of height 1 on ``|x| < 0.5``
(:func:`~sj_transfer.surrogate.back_ei_gate_grad`, SpikingJelly 2.x's ``surrogate.Rect``). The reference
hard-codes 1,623 classes; here ``num_classes`` is an argument.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from .models import check_frames, check_head, reference_lif
from .surrogate import back_ei_gate_grad

__all__ = ["TransferSCNN"]


class TransferSCNN(nn.Module):
    """Spiking CNN with one head shared by the static and the event branch.

    Args:
        num_classes: ``K`` (1,623 for N-Omniglot).
        in_channels: 2 polarities.
        image_size: input height = width (28).
        hidden: width of the spiking hidden layer ``node1`` (300).
        tau, v_threshold: LIF parameters (2.0, 0.5; hard reset to 0, detached).
        surrogate_function: default :func:`~sj_transfer.surrogate.back_ei_gate_grad` (Rect, alpha 1).
        backend: neuron backend override (0.0.0.0.14 only).

    Shapes: ``forward(x [T, B, C, H, W], head="event") -> logits [T, B, K]``; ``forward_features`` also
    returns the tap ``[T, B, hidden]``. ``head`` may be "static" or "event": both use the one head.
    """

    shared_head = True

    def __init__(
        self,
        num_classes: int = 1623,
        in_channels: int = 2,
        image_size: int = 28,
        hidden: int = 300,
        tau: float = 2.0,
        v_threshold: float = 0.5,
        surrogate_function: nn.Module | None = None,
        backend: str | None = None,
    ):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
        size = ((image_size - 4) // 2 - 4) // 2
        if size < 1:
            raise ValueError(
                f"image_size: expected at least 16 (two 5x5 convs and two pools), got {image_size}"
            )
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes

        def lif(**kw):
            sg = surrogate_function if surrogate_function is not None else back_ei_gate_grad()
            return reference_lif(tau, v_threshold, sg, backend, **kw)

        self.features = nn.Sequential(
            layer.SeqToANNContainer(nn.Conv2d(in_channels, 15, 5, bias=False)),
            lif(),
            layer.SeqToANNContainer(nn.AvgPool2d(2)),
            layer.SeqToANNContainer(nn.Conv2d(15, 40, 5, bias=False)),
            lif(),
            layer.SeqToANNContainer(nn.AvgPool2d(2)),
            layer.SeqToANNContainer(nn.Flatten(), nn.Linear(40 * size * size, hidden)),
        )
        self.node1 = lif(store_v_seq=True)  # the CKA tap: membrane potential after reset
        self.head = layer.SeqToANNContainer(nn.Linear(hidden, num_classes))
        self.feature_dim = hidden
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.uniform_(m.weight, -0.1, 0.1)

    @property
    def tap(self) -> nn.Module:
        return self.node1

    def forward_features(self, x: torch.Tensor, head: str = "event") -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [T, B, K], node1 membrane potential after reset [T, B, hidden])``; the caller resets."""
        check_frames(x, self.in_channels, self.image_size)
        check_head(head, has_static=True)  # one head serves both domains
        spikes = self.node1(self.features(x))
        return self.head(spikes), self.node1.v_seq

    def forward(self, x: torch.Tensor, head: str = "event") -> torch.Tensor:
        """``x [T, B, C, H, W] -> logits [T, B, K]``."""
        return self.forward_features(x, head)[0]

"""The paper's VGG-SNN with shared features and two heads (``Transfer_VGG_SNN``), from SpikingJelly parts.

``features``: [conv3x3 - BN - LIF] blocks and 2x2 average pools, all multi-step (``[T, B, C, H, W]``):
``SeqToANNContainer(Conv2d, BatchNorm2d)`` + ``sj_common.compat.lif_node`` (tau 2, input decay, threshold
0.5, hard reset to 0 detached, QGateGrad). Two linear heads (static, event) on the flattened last
feature map, applied per step. The CKA feature is the **membrane potential after reset** of the last
spiking layer (before the final pool), recorded with SpikingJelly's ``store_v_seq``: it carries more
information than the binary spikes (as in the reference).

BatchNorm: by default it normalises over ``T * B`` (SpikingJelly's
``SeqToANNContainer``); ``bn_per_step=True`` is the reference's: each time step is normalised with its own
batch statistics over ``B`` (SpikingJelly's ``MultiStepContainer``, one BN module called ``T`` times, so the
running statistics are updated ``T`` times per pass). Either way the two branches run as separate passes
(never concatenated), so BN statistics are never mixed across domains within one call.

``shared_head=True``: one classifier head for both domains (the reference's N-Omniglot model), so the static
images also train the head that is tested; ``head="static"`` then uses the event head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from sj_common.compat import lif_node
from spikingjelly.activation_based import layer

from .surrogate import QGateGrad

__all__ = ["TransferVGGSNN", "PAPER_CFG", "SMALL_CFG"]

#: The paper's feature extractor: 8 conv layers, 4 pools (48 -> 3).
PAPER_CFG: tuple = (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")
#: A CPU-sized version for the embedded MNIST-5k default (3 conv layers, 3 pools: 34 -> 4).
SMALL_CFG: tuple = (16, "P", 32, "P", 64, "P")


def reference_lif(tau: float, v_threshold: float, surrogate_function: nn.Module, backend: str | None, **kw):
    """The reference networks' multi-step LIF: input-decaying, hard reset to 0, reset detached from the graph
    (SpikingJelly's ``LIFNode`` through :func:`sj_common.compat.lif_node`); ``kw``: e.g. ``store_v_seq``."""
    return lif_node(
        backend=backend,
        tau=float(tau),
        decay_input=True,
        v_threshold=float(v_threshold),
        v_reset=0.0,
        detach_reset=True,
        surrogate_function=surrogate_function,
        **kw,
    )


def check_frames(x: torch.Tensor, in_channels: int, image_size: int) -> None:
    """Refuse what is not multi-step frames ``[T, B, in_channels, image_size, image_size]`` (every network here)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected multi-step frames [T, B, {in_channels}, H, W], got {shape}")
    if tuple(x.shape[2:]) != (in_channels, image_size, image_size):
        raise ValueError(
            f"x: expected [T, B, {in_channels}, {image_size}, {image_size}], got {tuple(x.shape)}"
        )


def check_head(head: str, has_static: bool) -> None:
    """``head`` is ``'event'`` or ``'static'``, and ``'static'`` only where the network has a static head."""
    if head not in ("event", "static"):
        raise ValueError(f"head: expected 'event' or 'static', got {head!r}")
    if head == "static" and not has_static:
        raise ValueError("head: 'static' requested but this network was built with static_head=False")


class TransferVGGSNN(nn.Module):
    """VGG-SNN with shared spiking features, a static head and an event head.

    Args:
        num_classes: number of classes ``K`` (both heads).
        in_channels: input channels (2 polarities).
        image_size: input height = width (48 in the paper).
        cfg: conv widths and ``"P"`` (2x2 average pool), in order (:data:`PAPER_CFG` by default).
        tau, v_threshold: LIF parameters (2.0, 0.5).
        surrogate_function: spike surrogate (default :func:`~sj_transfer.surrogate.QGateGrad`: SpikingJelly's ``PiecewiseQuadratic``, alpha 2).
        static_head: build the static head (False for the event-only baseline).
        shared_head: one head for both domains: ``head="static"`` uses the event head (no static head is
            built; ``static_head`` is then ignored). Default False (two heads, the VGG-SNN reference).
        bn_per_step: BatchNorm per time step over the batch (the reference) instead of over ``T * B``
            (default False). The parameters and state-dict keys are the same either way.
        backend: neuron backend override (0.0.0.0.14 only; None = fastest available).

    Shapes: ``forward(x [T, B, C, H, W], head="event") -> logits [T, B, K]``;
    ``forward_features`` also returns the tap ``[T, B, C_last, H_last, W_last]``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 2,
        image_size: int = 48,
        cfg: Sequence = PAPER_CFG,
        tau: float = 2.0,
        v_threshold: float = 0.5,
        surrogate_function: nn.Module | None = None,
        static_head: bool = True,
        backend: str | None = None,
        shared_head: bool = False,
        bn_per_step: bool = False,
    ):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
        if not any(v != "P" for v in cfg):
            raise ValueError(f"cfg: expected at least one conv width, got {list(cfg)!r}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        layers: list[nn.Module] = []
        c, size = in_channels, image_size
        for v in cfg:
            if v == "P":
                layers.append(layer.SeqToANNContainer(nn.AvgPool2d(2)))
                size //= 2
                continue
            # MultiStepContainer loops over T (BN statistics per step); SeqToANNContainer merges T into B
            container = layer.MultiStepContainer if bn_per_step else layer.SeqToANNContainer
            layers.append(container(nn.Conv2d(c, int(v), 3, padding=1, bias=False), nn.BatchNorm2d(int(v))))
            sg = surrogate_function if surrogate_function is not None else QGateGrad()
            layers.append(reference_lif(tau, v_threshold, sg, backend))
            c = int(v)
        if size < 1:
            raise ValueError(f"image_size: {image_size} is too small for {list(cfg).count('P')} pools")
        self.features = nn.Sequential(*layers)
        # index, not a second attribute: a module registered twice would appear twice in modules()
        self._tap_index = max(i for i, m in enumerate(layers) if hasattr(m, "v_threshold"))
        self.tap.store_v_seq = True  # membrane potential after reset, every step
        self.feature_dim = c * size * size
        self.event_head = layer.SeqToANNContainer(nn.Flatten(), nn.Linear(self.feature_dim, num_classes))
        self.shared_head, self.bn_per_step = bool(shared_head), bool(bn_per_step)
        self.static_head = (
            layer.SeqToANNContainer(nn.Flatten(), nn.Linear(self.feature_dim, num_classes))
            if static_head and not shared_head
            else None
        )

    @property
    def tap(self) -> nn.Module:
        """The last spiking layer, whose ``v_seq`` is the CKA feature."""
        return self.features[self._tap_index]

    def forward_features(self, x: torch.Tensor, head: str = "event") -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [T, B, K], membrane potential after reset of the last LIF [T, B, C, h, w])``.

        The caller resets the network between passes (``functional.reset_net``); the wrapper in
        :mod:`sj_transfer.train` does.
        """
        check_frames(x, self.in_channels, self.image_size)
        check_head(head, has_static=self.static_head is not None or self.shared_head)
        spikes = self.features(x)
        v_seq = self.tap.v_seq
        use_static = head == "static" and not self.shared_head
        logits = (self.static_head if use_static else self.event_head)(spikes)
        return logits, v_seq

    def forward(self, x: torch.Tensor, head: str = "event") -> torch.Tensor:
        """``x [T, B, C, H, W] -> logits [T, B, K]`` of the chosen head (the event head by default)."""
        return self.forward_features(x, head)[0]

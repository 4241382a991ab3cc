"""Small spiking VGGs built from SpikingJelly's own ``SpikingVGG.make_layers``.

SpikingJelly's ``spiking_vgg11..19`` are ImageNet networks (3 input channels, a 512*7*7 -> 4096 -> 4096
classifier, about 130 M parameters): far too large for 34x34 event frames on a CPU. We reuse its layer
builder for the convolutional trunk and replace only what is ImageNet-specific: the first convolution
(any number of input channels, e.g. 2 polarities) and the classifier (global average pool + one linear
layer).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based.model.spiking_vgg import SpikingVGG
from torch import nn

from . import compat

__all__ = ["SmallSpikingVGG", "small_spiking_vgg", "check_frames"]


def check_frames(x: torch.Tensor, channels: int, name: str = "x") -> None:
    """Raise a ValueError unless ``x`` is a time-first frame sequence ``[T, B, channels, H, W]``."""
    if x.dim() != 5 or x.shape[2] != channels:
        raise ValueError(
            f"{name}: expected [T, B, {channels}, H, W] (time first), got shape {tuple(x.shape)}"
        )


class SmallSpikingVGG(nn.Module):
    """A spiking VGG for small inputs, in SpikingJelly's multi-step mode.

    Args:
        cfg: channel counts and ``"M"`` (2x2 max pool), as in SpikingJelly's ``SpikingVGG`` configs.
        in_channels: input channels (2 for ON/OFF event frames, 1 or 3 for images).
        num_classes: output classes.
        batch_norm: a ``BatchNorm2d`` after every convolution.
        neuron: ``"lif"`` or ``"if"``; neuron keyword arguments go in ``neuron_kwargs``.
        pool_size: the trunk's output is average-pooled to ``pool_size x pool_size`` before the linear
            classifier (1 = global pooling; a few cells keep where a feature is, which small digits need).

    Shapes:
        input ``[T, B, in_channels, H, W]`` -> output ``[T, B, num_classes]`` (membrane-free logits per
        step; average over T for a prediction).
    """

    def __init__(
        self,
        cfg: Sequence[int | str] = (32, "M", 64, "M", 128, "M"),
        in_channels: int = 2,
        num_classes: int = 10,
        batch_norm: bool = True,
        neuron: str = "lif",
        neuron_kwargs: dict | None = None,
        pool_size: int = 1,
    ):
        super().__init__()
        if not cfg or not isinstance(cfg[0], int):
            raise ValueError(f"cfg: expected a list starting with a channel count, got {list(cfg)!r}")
        make = {"lif": compat.lif_node, "if": compat.if_node}.get(neuron)
        if make is None:
            raise ValueError(f"neuron: expected 'lif' or 'if', got {neuron!r}")
        kwargs = {"detach_reset": True, **(neuron_kwargs or {})}
        self.features = SpikingVGG.make_layers(list(cfg), batch_norm=batch_norm, neuron=make, **kwargs)
        # make_layers hard-codes 3 input channels: replace the first convolution.
        first = self.features[0]
        self.features[0] = layer.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
        last_channels = [v for v in cfg if isinstance(v, int)][-1]
        self.classifier = nn.Sequential(
            layer.AdaptiveAvgPool2d(pool_size),
            layer.Flatten(),
            layer.Linear(last_channels * pool_size * pool_size, num_classes),
        )
        self.in_channels = in_channels
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x, self.in_channels)
        return self.classifier(self.features(x))


def small_spiking_vgg(**kwargs) -> SmallSpikingVGG:
    """Build a :class:`SmallSpikingVGG` (keyword arguments as its constructor)."""
    return SmallSpikingVGG(**kwargs)

"""CML + Spikingformer, the transformer student of BKDSNN (the paper's CML+Spikingformer rows).

SpikingJelly ships Spikformer but neither Spikingformer's pre-LIF residual blocks nor the CML tokenizer
(Conv -> BN -> MaxPool -> LIF), so the network is assembled here from SpikingJelly's multi-step layers
(``layer.Conv2d/BatchNorm2d/MaxPool2d``) and LIF neurons (``sj_common.compat.lif_node``: tau 2,
detach_reset, Sigmoid surrogate, the reference's settings). Every tensor is ``[T, B, C, H, W]``; the
token axis is the flattened ``H * W`` grid, so a 1x1 conv is the reference's 1x1 Conv1d.

Fixes of the authors' reference code: ``forward_features`` returns the last block's residual stream once
(the CIFAR reference ran ``attn`` twice and so advanced the LIF states twice); ``dim % heads`` is checked
with a clear error (the reference's ``vit-ti`` configs used 256 dims with 12 heads: use 16 heads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from sj_common.compat import lif_node
from sj_common.models import check_frames
from spikingjelly.activation_based import functional, layer

__all__ = ["SpikingformerCML", "SpikingTokenizer", "SpikingSelfAttention", "SpikingMLP", "SpikingformerBlock"]


def _lif(**kw):
    return lif_node(tau=2.0, detach_reset=True, **kw)


def _conv_bn(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(layer.Conv2d(cin, cout, k, padding=k // 2, bias=False), layer.BatchNorm2d(cout))


class SpikingTokenizer(nn.Module):
    """CML tokenizer: 5 stages of Conv3x3 -> BN -> [MaxPool] with the LIF at the start of the next stage.

    Widths ``D/8, D/4, D/2, D, D``; ``pool_stages`` says after which stages (0..3) a 3x3/2 max pool runs
    (ImageNet: 0, 1, 2, 3 -> 224/16 = 14; CIFAR: 2, 3 -> 32/4 = 8). Pooling the real-valued BN output
    before the LIF is CML's exact-gradient downsampling. The last stage (D -> D: LIF -> Conv3x3 -> BN,
    ``proj4`` of the BKDSNN reference) is the tokenizer's output, with **no residual**: BKDSNN's
    ``Spikingformer-CML`` tokenizer returns ``proj4_bn(...)`` (random reference weights, loaded through our
    converter, give the reference's logits), and the paper's CML+Spikingformer numbers come from that
    network. (Spikformer's SPS adds its relative position embedding to its input, ``x + RPE(x)``; that is
    another model's tokenizer, not offered here.)

    Shapes: ``[T, B, in_channels, H, W]`` -> ``[T, B, D, H / 2^p, W / 2^p]`` (p = len(pool_stages)).
    """

    def __init__(self, in_channels: int, dim: int, pool_stages: Sequence[int] = (0, 1, 2, 3)) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"dim: expected a multiple of 8 (stage widths D/8, D/4, D/2), got {dim}")
        widths = [dim // 8, dim // 4, dim // 2, dim]
        bad = [s for s in pool_stages if s not in range(4)]
        if bad:
            raise ValueError(f"pool_stages: expected stage indices in 0..3, got {list(pool_stages)}")
        stages, cin = [], in_channels
        for i, w in enumerate(widths):
            mods = [] if i == 0 else [_lif()]
            mods += [*_conv_bn(cin, w, 3)]
            if i in pool_stages:
                mods.append(layer.MaxPool2d(3, 2, 1))
            stages.append(nn.Sequential(*mods))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.rpe = nn.Sequential(_lif(), *_conv_bn(dim, dim, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rpe(self.stages(x))


class SpikingSelfAttention(nn.Module):
    """Spikingformer SSA: LIF -> 1x1 conv+BN -> LIF for q, k, v; ``q (k^T v) * 0.125`` -> LIF(v_th 0.5) -> 1x1 conv+BN.

    Shapes: ``[T, B, D, H, W]`` -> same. ``q (k^T v)`` equals ``(q k^T) v`` (no softmax) and costs
    ``N * d^2`` instead of ``N^2 * d`` per head.
    """

    def __init__(self, dim: int, heads: int, scale: float = 0.125) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(
                f"heads: dim={dim} is not divisible by heads={heads} (e.g. use 16 heads for 256 dims)"
            )
        self.heads, self.scale = heads, scale
        self.in_lif = _lif()
        self.q, self.k, self.v = _conv_bn(dim, dim), _conv_bn(dim, dim), _conv_bn(dim, dim)
        self.q_lif, self.k_lif, self.v_lif = _lif(), _lif(), _lif()
        self.attn_lif = _lif(v_threshold=0.5)
        self.proj = _conv_bn(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, D, H, W] -> [T, B, heads, N, D/heads]
        t, b, d, h, w = x.shape
        return x.reshape(t, b, self.heads, d // self.heads, h * w).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, d, h, w = x.shape
        x = self.in_lif(x)
        q = self._split(self.q_lif(self.q(x)))
        k = self._split(self.k_lif(self.k(x)))
        v = self._split(self.v_lif(self.v(x)))
        y = q @ (k.transpose(-2, -1) @ v) * self.scale  # [T, B, heads, N, d]
        y = y.transpose(-1, -2).reshape(t, b, d, h, w)
        return self.proj(self.attn_lif(y))


class SpikingMLP(nn.Module):
    """Spikingformer MLP: LIF -> 1x1 conv -> BN -> LIF -> 1x1 conv -> BN (hidden = ratio * D). ``[T,B,D,H,W]``."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.net = nn.Sequential(_lif(), *_conv_bn(dim, hidden), _lif(), *_conv_bn(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SpikingformerBlock(nn.Module):
    """Pre-LIF residual block: ``x + SSA(x)`` then ``x + MLP(x)``. Shapes ``[T, B, D, H, W]`` -> same."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads)
        self.mlp = SpikingMLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikingformerCML(nn.Module):
    """CML + Spikingformer ``depth-dim`` (e.g. 8-384 for ImageNet, 4-384 / 2-384 / 4-256 for CIFAR).

    Input ``[T, B, in_channels, H, W]`` (a static image repeated T times, or event frames); output
    ``[T, B, num_classes]`` per-step logits (average over T for a prediction: GAP over tokens, mean over
    T, Linear commute). The distillation tap is ``blocks`` (the last block's residual stream,
    ``[T, B, D, H', W']``), or ``blocks.<i>`` for an earlier one.

    The head acts on the real-valued residual stream with no neuron before it, ``head(GAP(x))`` per step,
    as BKDSNN's reference (``head(mean_T(GAP(x)))``: global average over the tokens, mean over T, Linear;
    T and Linear commute), the network the paper's numbers come from; the authors' released weights load with
    :func:`sj_common.reference.load_reference_checkpoint` (``source='bkdsnn'``).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        dim: int = 384,
        depth: int = 8,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        pool_stages: Sequence[int] = (0, 1, 2, 3),
    ) -> None:
        super().__init__()
        self.tokenizer = SpikingTokenizer(in_channels, dim, pool_stages)
        self.blocks = nn.Sequential(*[SpikingformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.head = layer.Linear(dim, num_classes)
        self.in_channels = in_channels
        functional.set_step_mode(self, "m")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x, self.in_channels)
        return self.blocks(self.tokenizer(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # real-valued residual stream: no LIF before the head (reference)
        return self.head(x.flatten(3).mean(3))  # GAP over tokens, per step: [T, B, D] -> [T, B, K]

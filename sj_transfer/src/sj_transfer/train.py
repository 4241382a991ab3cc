"""The two-branch training wrapper and the step function for ``sj_common.engine.fit``.

:class:`TransferModel` is the one ``nn.Module`` the engine trains: it holds the network (shared features,
static and event heads) and the :class:`~sj_transfer.loss.DomainTransferLoss` with its learnable
per-step coefficients, so the optimizer, checkpoints and DDP see every parameter. Its ``forward`` runs
the static pass and the event pass one after the other with ``functional.reset_net`` before each
(state never leaks between branches) and returns the loss, so DDP sees the whole graph.

Any network works that has ``forward_features(x [T, B, ...], head: "static" | "event") ->
(logits [T, B, K], features [T, B, ...])`` (as :class:`~sj_transfer.models.TransferVGGSNN`).

:func:`transfer_step` is the engine's step function. Training batches ``(static [B, T, ...], event
[B, T, ...], y)`` (from ``sj_common.data.PairedStaticEvent``) go through the event augmentation, the
sliding replacement (``ctx.step`` of ``ctx.total_steps``) and the two-branch forward; ``(event, y)``
batches train the event-only baseline or are evaluated with the event head only (the reference also
ran the static branch at evaluation and threw it away, doubling its cost: skipped here).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from .loss import DomainTransferLoss, TransferLossOutput
from .sampler import SlidingReplacement
from .tet import tet_loss

__all__ = [
    "TransferModel",
    "TransferForward",
    "transfer_step",
    "static_pretrain_step",
    "RandomCropFrames",
    "FlipRotateFrames",
]


@dataclass
class TransferForward:
    """``loss`` (None without a target), ``event_logits [T, B, K]``, and the loss parts (two-branch only)."""

    loss: torch.Tensor | None
    event_logits: torch.Tensor
    parts: TransferLossOutput | None = None


class TransferModel(nn.Module):
    """Network + domain transfer loss in one module.

    Args:
        net: a network with ``forward_features(x, head)`` (see the module docstring).
        loss: the :class:`DomainTransferLoss` (its coefficients are trained with ``net``).
        baseline: train on event data alone with the event head (TET with the loss's lambda and MSE
            target, unweighted); the static head and the coefficients are then unused (build the
            network with ``static_head=False`` and the loss with ``regularization="none"`` for DDP).
        event_bn_stats: keep BatchNorm *running* statistics from the event pass only (the static pass
            still normalises with its own batch statistics in training, but leaves the running
            estimates and the batch count ``num_batches_tracked`` untouched). Why: only the event head is evaluated, with running statistics; in
            the reference they are an average over both passes, i.e. partly
            static-image statistics, which mis-normalise event inputs at test time. Training itself is
            unchanged. Default ``False`` (the reference's behaviour).

    ``forward(static, event, target=None)``: ``static``/``event`` ``[T, B, ...]``; ``static=None`` runs
    the event branch only. Returns :class:`TransferForward`.
    """

    def __init__(
        self, net: nn.Module, loss: DomainTransferLoss, baseline: bool = False, event_bn_stats: bool = False
    ):
        super().__init__()
        if not hasattr(net, "forward_features"):
            raise TypeError(
                f"net: expected a network with forward_features(x, head) -> (logits, features), "
                f"got {type(net).__name__} without it"
            )
        self.net = net
        self.loss = loss
        self.baseline = baseline
        self.event_bn_stats = bool(event_bn_stats)

    def forward(self, static: torch.Tensor | None, event: torch.Tensor, target: torch.Tensor | None = None):
        if static is None or self.baseline:
            functional.reset_net(self.net)
            event_logits, _ = self.net.forward_features(event, "event")
            loss = None
            if target is not None:
                loss = tet_loss(event_logits, target, None, self.loss.tet_lambda, self.loss.mse_target)
            return TransferForward(loss, event_logits)
        if static.shape != event.shape:
            raise ValueError(
                f"static: expected the event input's shape {tuple(event.shape)} ([T, B, C, H, W]), got {tuple(static.shape)}"
            )
        if target is None:
            raise ValueError(
                "target: expected [B] int64 labels for the two-branch (training) forward, got None"
            )
        functional.reset_net(self.net)
        with _frozen_bn_running_stats(self.net, self.event_bn_stats and self.training):
            static_logits, static_feat = self.net.forward_features(static, "static")
        functional.reset_net(self.net)  # nothing of the static pass leaks into the event pass
        event_logits, event_feat = self.net.forward_features(event, "event")
        parts = self.loss(static_logits, event_logits, static_feat, event_feat, target)
        return TransferForward(parts.loss, event_logits, parts)


@contextmanager
def _frozen_bn_running_stats(net: nn.Module, active: bool):
    """Within the block, BatchNorm layers normalise with batch statistics (training) and touch no buffer:
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` stay as they were.

    How: ``track_running_stats`` is off for the block, so BatchNorm neither updates nor counts (torch's
    own switch; SyncBatchNorm and SpikingJelly's BatchNorm follow it). Why not momentum 0: BatchNorm then
    still counts the batch in ``num_batches_tracked``, which a checkpoint keeps and which sets the
    averaging factor of a ``momentum=None`` (cumulative average) layer. Why not restoring the buffers
    afterwards: they are saved for the backward pass, and an in-place restore breaks it."""
    bns = [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    bns = bns if active else []
    try:
        for m in bns:
            m.track_running_stats = False
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


class RandomCropFrames:
    """Random crop with zero padding, one offset per sample shared by all its frames and channels.

    The reference's event augmentation (``RandomCrop(48, padding=48 // 12)``), done on the batch (on the
    device) because torchvision's transform draws one offset per call. ``x [T, B, C, H, W]`` ->
    same shape.
    """

    def __init__(self, padding: int, generator: torch.Generator | None = None):
        if padding < 0:
            raise ValueError(f"padding: expected >= 0, got {padding}")
        self.padding, self.generator = int(padding), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if p == 0:
            return x
        if x.dim() != 5:
            raise ValueError(f"x: expected [T, B, C, H, W], got {tuple(x.shape)}")
        T, B, C, H, W = x.shape
        padded = F.pad(x, (p, p, p, p))
        off = torch.randint(0, 2 * p + 1, (B, 2), generator=self.generator).tolist()
        return torch.stack([padded[:, b, :, i : i + H, j : j + W] for b, (i, j) in enumerate(off)], dim=1)


class FlipRotateFrames:
    """The reference's ``--DVS-DA`` event augmentation: horizontal flip (probability 0.5) and a rotation by an
    angle uniform in ``[-degrees, degrees]``, one draw per sample shared by all its frames and channels.

    torchvision's ``RandomHorizontalFlip`` / ``RandomRotation(15)`` (nearest interpolation, zero fill), as
    the reference applies them to the frame tensor; done here per sample on the batch because torchvision's
    transforms draw one parameter per call. ``x [T, B, C, H, W]`` -> same shape. Apply after the crop.
    """

    def __init__(self, degrees: float = 15.0, flip: bool = True, generator: torch.Generator | None = None):
        if not 0.0 <= float(degrees) <= 180.0:
            raise ValueError(f"degrees: expected a number in [0, 180], got {degrees!r}")
        self.degrees, self.flip, self.generator = float(degrees), bool(flip), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        if x.dim() != 5:
            raise ValueError(f"x: expected [T, B, C, H, W], got {tuple(x.shape)}")
        B = x.shape[1]
        flips = (torch.rand(B, generator=self.generator) < 0.5).tolist() if self.flip else [False] * B
        angles = ((torch.rand(B, generator=self.generator) * 2 - 1) * self.degrees).tolist()
        out = []
        for b in range(B):
            xb = x[:, b]  # [T, C, H, W]
            if flips[b]:
                xb = xb.flip(-1)
            if self.degrees:
                xb = TF.rotate(xb, angles[b], interpolation=TF.InterpolationMode.NEAREST, fill=0.0)
            out.append(xb)
        return torch.stack(out, dim=1)


def _tensor_logs(parts: TransferLossOutput) -> dict[str, torch.Tensor]:
    """:meth:`TransferLossOutput.logs` (same keys, same values) as detached 0-dim tensors: no host sync."""
    out = {
        "loss_static": parts.static_loss.detach(),
        "loss_event": parts.event_loss.detach(),
        "loss_domain": parts.domain_loss.detach(),
        "cka": parts.cka.detach().mean(),
    }
    out.update({f"w_{t}": w for t, w in enumerate(parts.weights.detach())})
    return out


def transfer_step(
    sliding: SlidingReplacement | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
):
    """Step function for ``sj_common.engine.fit`` (train and eval).

    Args:
        sliding: the sliding replacement (None: the static branch always sees static images).
        augment: batch transform of the event frames ``[T, B, ...]`` in training (e.g.
            :class:`RandomCropFrames`); applied before the replacement, so a replaced static input is
            the augmented event input, as in the method.
        preprocess: applied to every frame batch ``[B, T, ...]`` (both branches, train and eval), e.g.
            a resize.

    Batches: ``(static, event, y)`` with ``[B, T, ...]`` frames (two-branch training) or ``(event, y)``
    (baseline training, and evaluation: event head only). Logits for accuracy: the event head's mean
    over T. Logs: the loss parts, mean CKA, each step's CKA (``cka_<t>``) and ``w_t``, ``P`` and the
    replaced fraction.
    """
    from sj_common.engine import StepOutput

    def step(model, batch, ctx):
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(f"batch: expected (static, event, y) or (event, y), got {type(batch).__name__}")
        event, y = batch[-2], batch[-1]
        if event.dim() != 5:
            raise ValueError(f"event: expected frames [B, T, C, H, W], got {tuple(event.shape)}")
        prep = preprocess or (lambda x: x)
        event = prep(event).transpose(0, 1).contiguous()
        if ctx.train and augment is not None:
            event = augment(event)
        # logs: Python floats computed on the host, or detached 0-dim tensors that the engine sums on the
        # device (float(tensor) here would be a host sync per step)
        logs: dict[str, float | torch.Tensor] = {}
        if ctx.train and len(batch) == 3:
            static = prep(batch[0]).transpose(0, 1).contiguous()
            if sliding is not None:
                static, mask = sliding(static, event, ctx.step, ctx.total_steps)
                logs["replace_p"] = sliding.probability(ctx.step, ctx.total_steps)
                logs["replaced"] = mask.float().mean()
            out = model(static, event, y)
        else:
            out = model(None, event, y)
        if out.parts is not None:
            logs.update(_tensor_logs(out.parts))
            logs.update({f"cka_{t}": c for t, c in enumerate(out.parts.cka.detach())})  # per step (plots)
        return StepOutput(loss=out.loss, logits=out.event_logits.mean(0), target=y, logs=logs)

    return step


def static_pretrain_step(step):
    """The event-only ``step`` (a :func:`transfer_step` without sliding) trained on the static images.

    Training batches ``(static, event, y)`` become ``(static, y)``: the static frames take the event
    input's place (same preprocessing and augmentation), the event frames are ignored; ``(event, y)``
    batches (evaluation on the event val split) pass unchanged. Used by the pre-train-then-fine-tune
    alternative (``method.static_pretrain_epochs``), not by the method.
    """

    def pretrain(model, batch, ctx):
        if ctx.train and isinstance(batch, (tuple, list)) and len(batch) == 3:
            batch = (batch[0], batch[2])
        return step(model, batch, ctx)

    return pretrain

"""SyncBatchNorm for SpikingJelly networks: ``TrainConfig.sync_bn`` (BatchNorm statistics over every rank).

Under DDP each process normalises with the statistics of its own part of the batch (``batch_size`` per
process); with ``sync_bn: true`` every BatchNorm layer becomes a SyncBatchNorm and normalises with the
statistics of the whole global batch, as on one large GPU (what SpikingJelly's and torchvision's reference
scripts do with ``--sync-bn``).

Why not plain ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``: it turns SpikingJelly's multi-step
``layer.BatchNorm2d`` (``step_mode='m'``, input ``[T, B, C, H, W]``, normalised over ``T * B``) into a
single-step SyncBatchNorm that reads ``B`` as the channel axis. :class:`SpikingSyncBatchNorm` keeps the
step modes; plain ``nn.BatchNorm*d`` (e.g. inside ``SeqToANNContainer``) become the same class in
single-step mode, which is exactly ``nn.SyncBatchNorm``.
"""

from __future__ import annotations

import warnings

import torch
from spikingjelly.activation_based import base, functional
from torch import nn

__all__ = ["SpikingSyncBatchNorm", "convert_sync_batchnorm", "apply_sync_bn"]


class SpikingSyncBatchNorm(nn.SyncBatchNorm, base.StepModule):
    """``torch.nn.SyncBatchNorm`` with SpikingJelly's step modes.

    ``step_mode='s'``: input ``[B, C, ...]``, exactly ``nn.SyncBatchNorm``. ``step_mode='m'``: input
    ``[T, B, C, ...]``, normalised over ``T * B`` (and every rank's batch) like SpikingJelly's
    ``layer.BatchNorm*d``; output the same shape. Parameters and buffers are those of ``nn.SyncBatchNorm``
    (the same ``state_dict`` keys as the BatchNorm it replaces). Outside DDP, or in eval mode, it is an
    ordinary BatchNorm (torch's fallback). Survives ``functional.reset_net`` (it has no state).
    """

    def __init__(self, num_features: int, *args, step_mode: str = "s", **kwargs) -> None:
        super().__init__(num_features, *args, **kwargs)
        self.step_mode = step_mode

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step_mode={self.step_mode}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            return super().forward(x)
        if x.dim() < 3:
            raise ValueError(
                f"x: expected a sequence [T, B, C, ...] (step_mode='m'), got shape {tuple(x.shape)}"
            )
        return functional.seq_to_ann_forward(x, super().forward)


def convert_sync_batchnorm(net: nn.Module, process_group=None) -> nn.Module:
    """Replace every BatchNorm of ``net`` (in place) by a :class:`SpikingSyncBatchNorm` holding the same
    parameters and buffers (the same tensors: an optimizer built before still trains them), with the
    BatchNorm's step mode (SpikingJelly's layers) or single-step (``nn.BatchNorm*d``). Returns ``net``.

    ``process_group``: the ranks to synchronise over (default: all). Layers already synchronised are kept.
    """
    if isinstance(net, nn.modules.batchnorm._BatchNorm):
        raise ValueError(
            f"net: expected a network holding BatchNorm layers, got a bare {type(net).__name__} "
            "(wrap it in a module: the conversion replaces children in place)"
        )
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
            # torch's own conversion, with the step mode kept
            sync = SpikingSyncBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
                process_group,
                step_mode=getattr(child, "step_mode", "s"),
                bias=child.bias is not None,
            )
            if child.affine:
                sync.weight, sync.bias = child.weight, child.bias
            sync.running_mean, sync.running_var = child.running_mean, child.running_var
            sync.num_batches_tracked = child.num_batches_tracked
            sync.train(child.training)
            setattr(net, name, sync)
        else:
            convert_sync_batchnorm(child, process_group)
    return net


def apply_sync_bn(net: nn.Module, enabled: bool, distributed: bool, device: torch.device) -> nn.Module:
    """The engine's ``TrainConfig.sync_bn``: convert ``net`` when the run is distributed, before DDP wraps it.

    A single process has nothing to synchronise: ``net`` stays as it is, with a warning (so that one
    config serves a torchrun job and a one-GPU debug run). torch's SyncBatchNorm synchronises CUDA (and
    XPU/HPU) tensors only: a distributed CPU (gloo) run with ``sync_bn`` is refused before training.
    """
    if not enabled:
        return net
    if not distributed:
        warnings.warn(
            "TrainConfig.sync_bn: a single process has nothing to synchronise; BatchNorm is left as it is "
            "(SyncBatchNorm is used under torchrun with several processes)",
            stacklevel=3,
        )
        return net
    if device.type not in ("cuda", "xpu", "hpu"):
        raise ValueError(
            f"TrainConfig.sync_bn: torch's SyncBatchNorm synchronises GPU tensors only, got device "
            f"{str(device)!r} in a distributed run; set sync_bn: false (each process then normalises its own "
            "batch)"
        )
    return convert_sync_batchnorm(net)

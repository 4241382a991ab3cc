"""Metrics of a spiking classifier: top-k accuracy, per-layer firing rates, synaptic operations and energy."""

from __future__ import annotations

import torch

__all__ = ["topk_correct", "topk_accuracy"]


def _check_logits(logits: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits: expected a [B, num_classes] tensor, got {got}")
    if not isinstance(target, torch.Tensor) or target.dim() != 1 or target.shape[0] != logits.shape[0]:
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target: expected a [B] = [{logits.shape[0]}] tensor of class indices, got {got}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target: expected an integer tensor of class indices, got dtype {target.dtype}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= logits.shape[1]):
        raise ValueError(
            f"target: expected class indices in [0, {logits.shape[1] - 1}] (logits have {logits.shape[1]} "
            f"classes), got values in [{int(target.min())}, {int(target.max())}]"
        )


@torch.no_grad()
def topk_correct(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k`` in ``topk``.

    ``k`` larger than the number of classes ``C`` is computed as ``k = C`` (every sample is then
    correct), so top-5 on a 2-class problem reads 100 % rather than failing.
    """
    _check_logits(logits, target)
    if any(int(k) < 1 for k in topk):
        raise ValueError(f"topk: expected integers >= 1, got {tuple(topk)}")
    kmax = min(max(topk), logits.shape[1])
    pred = logits.topk(kmax, dim=1).indices  # [B, kmax]
    hit = pred.eq(target[:, None])
    return [int(hit[:, : min(int(k), kmax)].any(dim=1).sum()) for k in topk]


def topk_accuracy(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[float]:
    """Top-k accuracies in % for ``logits [B, C]`` and ``target [B]`` (``k > C`` is taken as ``k = C``)."""
    n = target.shape[0] if isinstance(target, torch.Tensor) and target.dim() == 1 else None
    correct = topk_correct(logits, target, topk)
    if not n:
        raise ValueError("target: expected at least one sample, got an empty batch")
    return [100.0 * c / n for c in correct]

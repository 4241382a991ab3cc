"""TET loss (Deng et al. 2022) with optional per-time-step weights, as transfer.md section 3 uses it.

SpikingJelly's ``functional.temporal_efficient_training_cross_entropy`` is the unweighted mean of the
per-step cross-entropies only; the method also needs the MSE term towards the threshold and a weight per
step (``1 - sigmoid(c_t)`` for the event branch), so the per-step terms are computed here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["tet_loss", "per_step_cross_entropy", "check_sequence_logits"]


def check_sequence_logits(logits: torch.Tensor, target: torch.Tensor, name: str = "logits") -> None:
    """Raise a clear error unless ``logits`` is ``[T, B, K]`` and ``target`` is ``[B]`` int64 class indices."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name}: expected multi-step logits of shape [T, B, num_classes], got {shape}")
    if not isinstance(target, torch.Tensor) or target.dim() != 1:
        shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target: expected class indices of shape [B], got {shape}")
    if target.dtype != torch.long:
        raise TypeError(f"target: expected dtype torch.int64 class indices, got {target.dtype}")
    if logits.shape[1] != target.shape[0]:
        raise ValueError(
            f"target: expected batch size {logits.shape[1]} (from {name} [T, B, K]), got {target.shape[0]}"
        )


def per_step_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of every time step: ``logits [T, B, K]``, ``target [B]`` -> ``[T]`` (mean over B)."""
    check_sequence_logits(logits, target)
    T, B, K = logits.shape
    ce = F.cross_entropy(
        logits.reshape(T * B, K).float(), target.repeat(T), reduction="none", label_smoothing=label_smoothing
    )
    return ce.view(T, B).mean(1)


def tet_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    step_weights: torch.Tensor | None = None,
    lam: float = 1e-3,
    mse_target: float = 0.5,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``(1 - lam) mean_t w_t CE(o_t, y) + lam mean_t w_t MSE(o_t, mse_target)``.

    Args:
        logits: ``[T, B, K]`` per-step outputs.
        target: ``[B]`` int64 labels.
        step_weights: ``[T]`` weights ``w_t`` (``None``: all 1, plain TET).
        lam: weight of the MSE regulariser (1e-3 in the method).
        mse_target: value the outputs are pulled towards (the neuron threshold, 0.5 in the method).

    Returns:
        A 0-dim float32 tensor.
    """
    ce = per_step_cross_entropy(logits, target, label_smoothing)
    mse = (logits.float() - mse_target).square().mean(dim=(1, 2))  # [T], mean over B x K
    per_step = (1.0 - lam) * ce + lam * mse
    if step_weights is not None:
        if step_weights.shape != per_step.shape:
            raise ValueError(
                f"step_weights: expected shape ({per_step.shape[0]},) (one weight per time step), got {tuple(step_weights.shape)}"
            )
        per_step = per_step * step_weights.float()
    return per_step.mean()

"""Step functions and the one TET loss of the sj-plugins.

:func:`tet_loss` is the single implementation of TET (Deng et al., ICLR 2022): the engine's
``classification_step(loss="tet")`` and ``sj_transfer`` (which adds per-step weights and the MSE
term) both call it. SpikingJelly's ``functional.temporal_efficient_training_cross_entropy`` is only
the unweighted mean of the per-step cross-entropies, without the MSE term, step weights or label
smoothing, so the per-step terms are computed here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import StepContext, StepFn, StepOutput

__all__ = ["classification_step", "tet_loss", "per_step_cross_entropy", "check_sequence_logits"]


def check_sequence_logits(logits: torch.Tensor, target: torch.Tensor, name: str = "logits") -> None:
    """Raise a clear error unless ``logits`` is ``[T, B, K]`` and ``target`` is ``[B]`` int64 class indices.

    Shapes and dtypes only (metadata, no host sync); the class range is checked by the engine once.
    """
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
        step_weights: ``[T]`` weights ``w_t`` (``None``: all 1).
        lam: weight of the MSE regulariser (1e-3 in the TET paper); ``lam=0`` with no weights is
            plain TET, computed as one cross-entropy over all ``(t, b)`` (the same value: every
            step has ``B`` samples).
        mse_target: value the outputs are pulled towards (the neuron threshold, 0.5 in the method).
        label_smoothing: of every per-step cross-entropy.

    Returns:
        A 0-dim float32 tensor.
    """
    if step_weights is None and lam == 0:
        check_sequence_logits(logits, target)
        T = logits.shape[0]
        return F.cross_entropy(
            logits.flatten(0, 1).float(), target.repeat(T), label_smoothing=label_smoothing
        )
    ce = per_step_cross_entropy(logits, target, label_smoothing)
    mse = (logits.float() - mse_target).square().mean(dim=(1, 2))  # [T], mean over B x K
    per_step = (1.0 - lam) * ce + lam * mse
    if step_weights is not None:
        if step_weights.shape != per_step.shape:
            raise ValueError(
                f"step_weights: expected shape ({per_step.shape[0]},) (one weight per time step), "
                f"got {tuple(step_weights.shape)}"
            )
        per_step = per_step * step_weights.float()
    return per_step.mean()


def classification_step(sequence_input: bool, loss: str = "ce") -> StepFn:
    """A step function for ``(x, y)`` batches.

    ``sequence_input=True``: ``x`` is ``[B, T, ...]`` (as data loaders stack it) and is transposed to
    ``[T, B, ...]``; the model returns ``[T, B, C]``; ``logits`` are the mean over ``T``; ``loss="ce"``
    is the cross-entropy of that mean, ``loss="tet"`` the mean over ``t`` of the per-step
    cross-entropies (:func:`tet_loss` with ``lam=0``). ``sequence_input=False``: ``x [B, ...]`` ->
    model -> ``[B, C]`` (only ``"ce"``). Label smoothing comes from ``ctx.config.label_smoothing``.
    Checks shapes and dtypes only (no host sync); the engine checks the class range once per run.
    """
    if loss not in ("ce", "tet"):
        raise ValueError(f"loss: expected 'ce' or 'tet', got {loss!r}")
    if loss == "tet" and not sequence_input:
        raise ValueError("loss='tet' needs per-step outputs: expected sequence_input=True, got False")

    def step(model: nn.Module, batch: Any, ctx: StepContext) -> StepOutput:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"batch: expected an (x, y) pair, got {type(batch).__name__}")
        x, y = batch
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype.is_floating_point:
            got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y: expected a [B] tensor of integer class indices, got {got}")
        y = y.long()
        if sequence_input and x.dim() < 3:
            raise ValueError(f"x: expected [B, T, ...] (sequence_input=True), got shape {tuple(x.shape)}")
        smoothing = ctx.config.label_smoothing if ctx.train else 0.0
        if sequence_input:
            out = model(x.transpose(0, 1).contiguous())
            T, B = x.shape[1], x.shape[0]
            if out.dim() != 3 or out.shape[0] != T or out.shape[1] != B:
                raise ValueError(f"model output: expected [T, B, C] = [{T}, {B}, C], got {tuple(out.shape)}")
            logits = out.mean(0)
            if loss == "tet":
                value = tet_loss(out, y, lam=0.0, label_smoothing=smoothing)
            else:
                value = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        else:
            out = model(x)
            if out.dim() != 2 or out.shape[0] != x.shape[0]:
                raise ValueError(f"model output: expected [B, C] = [{x.shape[0]}, C], got {tuple(out.shape)}")
            logits = out
            value = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        return StepOutput(loss=value, logits=logits, target=y)

    return step

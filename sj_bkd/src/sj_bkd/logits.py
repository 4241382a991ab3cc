"""Logit distillation losses: Hinton KD and WSLD (weighted soft labels; the BKDSNN paper's logit term).

SpikingJelly ships no distillation losses and torch has only the pieces (``kl_div``, ``log_softmax``), so
the two formulas live here. Teacher logits are always detached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["kd_loss", "wsld_loss", "soft_target"]


def _check_logits(z_s: torch.Tensor, z_t: torch.Tensor) -> None:
    if z_s.dim() != 2:
        raise ValueError(
            f"z_s: expected student logits [B, K], got shape {tuple(z_s.shape)} (average over T first)"
        )
    if z_t.shape != z_s.shape:
        raise ValueError(
            f"z_t: expected teacher logits of the student's shape {tuple(z_s.shape)}, got {tuple(z_t.shape)}"
        )


def soft_target(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Labels ``[B]`` (int64, in ``[0, K)``) or soft targets ``[B, K]`` -> float ``[B, K]``."""
    if target.dim() == 1:
        if target.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"target: expected int64 labels [B] or float [B, K], got dtype {target.dtype}")
        # No range check that reads the labels back (one host sync per step on a GPU): scatter_ refuses an
        # index outside [0, K) itself (on CPU at once, on CUDA as a device-side assert), and the training
        # engine validates the labels once per run and at every epoch end without syncing.
        labels = target.long().unsqueeze(1)
        try:
            return torch.zeros(target.shape[0], num_classes, device=target.device).scatter_(1, labels, 1.0)
        except RuntimeError as e:
            lo, hi = int(target.min()), int(target.max())  # only on the error path
            raise ValueError(f"target: labels must lie in [0, {num_classes}), got range [{lo}, {hi}]") from e
    if target.dim() == 2 and target.shape[1] == num_classes and torch.is_floating_point(target):
        return target.float()
    raise ValueError(
        f"target: expected labels [B] or soft targets [B, {num_classes}], got {tuple(target.shape)} {target.dtype}"
    )


def kd_loss(z_s: torch.Tensor, z_t: torch.Tensor, tau: float = 4.0) -> torch.Tensor:
    """Hinton KD: ``tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))`` averaged over the batch.

    Shapes: ``z_s``, ``z_t`` ``[B, K]``. Returns a float32 scalar.
    """
    _check_logits(z_s, z_t)
    if tau <= 0:
        raise ValueError(f"tau: expected > 0, got {tau}")
    log_p_s = F.log_softmax(z_s.float() / tau, dim=1)
    log_p_t = F.log_softmax(z_t.detach().float() / tau, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * tau * tau


def wsld_loss(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    target: torch.Tensor,
    tau: float = 2.0,
    beta: float = 1.0,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Weighted soft label distillation (Zhou et al., ICLR 2021), as BKDSNN computes it::

        ce_n  = -sum_k softmax(z_t / tau)_k * log_softmax(z_s / tau)_k
        CE^s_n, CE^t_n = cross-entropy of detached z_s, z_t with the target y at tau = 1
        w_n   = 1 - exp(-max(CE^s_n / (CE^t_n + eps), 0))
        loss  = beta * tau^2 * mean_n(w_n * ce_n)

    ``ce_n`` is a cross-entropy, not a KL divergence (same gradient, offset by the teacher entropy).
    The reference's ``torch.zeros(1).cuda()`` (CUDA only) and dim-less ``LogSoftmax()`` (the softmax axis
    guessed by torch) are fixed: the loss runs on any device and softmaxes over classes.

    Shapes: ``z_s``, ``z_t`` ``[B, K]``; ``target`` ``[B]`` labels or ``[B, K]`` soft targets (mixup,
    label smoothing). Returns a float32 scalar.
    """
    _check_logits(z_s, z_t)
    if tau <= 0:
        raise ValueError(f"tau: expected > 0, got {tau}")
    if target.shape[0] != z_s.shape[0]:
        raise ValueError(f"target: batch {target.shape[0]} != logits batch {z_s.shape[0]}")
    y = soft_target(target, z_s.shape[1]).to(z_s.device)
    z_s32, z_t32 = z_s.float(), z_t.detach().float()
    ce = -(F.softmax(z_t32 / tau, dim=1) * F.log_softmax(z_s32 / tau, dim=1)).sum(1)
    with torch.no_grad():
        ce_s = -(y * F.log_softmax(z_s32, dim=1)).sum(1)
        ce_t = -(y * F.log_softmax(z_t32, dim=1)).sum(1)
        w = 1.0 - torch.exp(-torch.clamp(ce_s / (ce_t + eps), min=0.0))
    return beta * tau * tau * (w * ce).mean()

"""Sliding training (the method's sliding replacement): replace the static branch's input by the event input.

At global iteration ``i`` of ``N`` (counted from 0 over the whole run) every sample ``b`` of the batch
independently has its static input replaced, with probability ``P(i)``, by its **own** event input (the
exact tensor the event branch sees); labels are unchanged; nothing happens at evaluation.

* :class:`PowerSchedule` (the method): ``P(i) = min(1, (i / N) ** k)``, ``k = 3``.
* :class:`StepSchedule` (the paper's "without sliding training" ablation): ``P = 0`` for the first half
  of the run and ``1`` after (the reference's ``e <= E/2``, expressed as a fraction of iterations).

:class:`SlidingReplacement` is a batch transform: it works in the engine's step function and in a
user's own loop (``x_static = sliding(x_static, x_event, iteration=i, total=N)``). A transform rather
than a sampler because the replacement needs both branches' tensors of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "PowerSchedule",
    "StepSchedule",
    "SlidingReplacement",
    "replacement_probability",
    "make_schedule",
]


def _check_iter(iteration: int, total: int) -> None:
    if int(total) < 1:
        raise ValueError(f"total: expected a positive number of iterations, got {total!r}")
    if int(iteration) < 0:
        raise ValueError(f"iteration: expected >= 0 (counted from 0 over the whole run), got {iteration!r}")


def replacement_probability(iteration: int, total: int, power: float = 3.0) -> float:
    """``min(1, (iteration / total) ** power)``, the method's schedule."""
    _check_iter(iteration, total)
    return min(1.0, (iteration / total) ** power)


@dataclass(frozen=True)
class PowerSchedule:
    """``P(i) = min(1, (i / N) ** power)``; ``power = 3`` in the method (mean P over a run: 1/(power+1))."""

    power: float = 3.0

    def __call__(self, iteration: int, total: int) -> float:
        return replacement_probability(iteration, total, self.power)


@dataclass(frozen=True)
class StepSchedule:
    """``P = 0`` while ``i / N < switch``, then ``1`` (the no-sliding ablation with ``switch = 0.5``)."""

    switch: float = 0.5

    def __call__(self, iteration: int, total: int) -> float:
        _check_iter(iteration, total)
        return 1.0 if iteration / total >= self.switch else 0.0


def make_schedule(name: str, power: float = 3.0):
    """``"sliding"`` -> :class:`PowerSchedule` (power), ``"no_sliding"`` -> :class:`StepSchedule`, ``"none"`` -> P = 0."""
    if name == "sliding":
        return PowerSchedule(power)
    if name == "no_sliding":
        return StepSchedule(0.5)
    if name == "none":
        return StepSchedule(float("inf"))
    raise ValueError(f"schedule: expected 'sliding', 'no_sliding' or 'none', got {name!r}")


class SlidingReplacement:
    """Per-sample replacement of the static input by the sample's own event input.

    Args:
        schedule: a callable ``(iteration, total) -> P`` (default :class:`PowerSchedule` with k = 3), or a
            name for :func:`make_schedule`.
        batch_dim: the batch dimension of the inputs: 1 for multi-step ``[T, B, ...]`` (default), 0 for
            loader layout ``[B, T, ...]``.
        generator: optional ``torch.Generator`` (CPU) for the per-sample draws; default: the global RNG
            (seeded by the engine).
        T: the number of time steps, optional: when given, every call checks that the time dimension
            (``1 - batch_dim``) holds ``T`` steps, so that a batch-first ``[B, T, ...]`` tensor given with
            ``batch_dim=1`` (which would draw one replacement per time step, not per sample) is an error.

    ``__call__(static, event, iteration, total)`` returns ``(mixed_static, mask)`` where ``mask [B]`` is
    True where the event input was used. ``static`` and ``event`` must have the same shape.
    """

    def __init__(
        self,
        schedule="sliding",
        batch_dim: int = 1,
        generator: torch.Generator | None = None,
        T: int | None = None,
    ):
        self.schedule = make_schedule(schedule) if isinstance(schedule, str) else schedule
        if batch_dim not in (0, 1):
            raise ValueError(f"batch_dim: expected 1 ([T, B, ...]) or 0 ([B, T, ...]), got {batch_dim!r}")
        if T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
            raise ValueError(f"T: expected None or a positive int (the number of time steps), got {T!r}")
        self.batch_dim = batch_dim
        self.generator = generator
        self.T = T

    def probability(self, iteration: int, total: int) -> float:
        return float(self.schedule(iteration, total))

    def mask(self, batch_size: int, iteration: int, total: int, device=None) -> torch.Tensor:
        """``[batch_size]`` bool, each True with probability ``P(iteration)`` independently."""
        p = self.probability(iteration, total)
        if p <= 0.0:
            return torch.zeros(batch_size, dtype=torch.bool, device=device)
        u = torch.rand(batch_size, generator=self.generator)
        # non_blocking: a blocking copy to a GPU waits for its whole stream (a host sync every step)
        return (u < p).to(device, non_blocking=True)

    def __call__(
        self, static: torch.Tensor, event: torch.Tensor, iteration: int, total: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(static, torch.Tensor) or not isinstance(event, torch.Tensor):
            raise TypeError("static, event: expected torch.Tensors")
        if static.shape != event.shape:
            raise ValueError(
                f"event: expected the static input's shape {tuple(static.shape)} (replacement is per sample), "
                f"got {tuple(event.shape)}"
            )
        if static.dim() < 2:
            raise ValueError(
                f"static: expected [T, B, ...] or [B, T, ...] with at least 2 dims, got {tuple(static.shape)}"
            )
        time_dim = 1 - self.batch_dim
        if self.T is not None and static.shape[time_dim] != self.T:
            layout = "[T, B, ...]" if self.batch_dim == 1 else "[B, T, ...]"
            flipped = static.shape[self.batch_dim] == self.T
            raise ValueError(
                f"static: with batch_dim={self.batch_dim} the inputs are {layout}, so dim {time_dim} must hold "
                f"T={self.T} time steps, got shape {tuple(static.shape)}"
                + (
                    f"; it looks {'batch-first [B, T, ...]' if self.batch_dim == 1 else 'time-first [T, B, ...]'}: "
                    f"pass batch_dim={time_dim} or transpose(0, 1) first"
                    if flipped
                    else ""
                )
            )
        B = static.shape[self.batch_dim]
        m = self.mask(B, iteration, total)  # drawn on the CPU: no device sync for the check below
        if not bool(m.any()):
            return static, m.to(static.device, non_blocking=True)
        m = m.to(static.device, non_blocking=True)  # a blocking copy would wait for the GPU stream
        view = [1] * static.dim()
        view[self.batch_dim] = B
        return torch.where(m.view(view), event.to(static.dtype), static), m

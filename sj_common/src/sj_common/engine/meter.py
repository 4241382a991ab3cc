"""Running sums of a training or evaluation pass, kept on the device: no host sync per batch."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..metrics import topk_hits
from . import distributed as D
from .config import StepOutput


class Meter:
    """Sums over batches of loss, top-1/top-5 hits, sample count and the extra logs.

    Every sum is a float64 tensor on the batches' device, added to in place, so :meth:`update` never
    reads a value back to the host; :meth:`sums` and :meth:`result` convert once (per epoch, or at a
    checkpoint). float64 keeps the sums the same as Python-float accumulation and makes a mid-epoch
    resume, which restarts from :meth:`sums`, add up bit-identically. The running minimum and maximum
    target are kept too, so :meth:`result` can refuse out-of-range class indices without a per-batch
    check.
    """

    def __init__(self, state: Mapping[str, float] | None = None) -> None:
        self._init = dict(state or {})
        self._sums: dict[str, torch.Tensor] = {}
        self._t_range: torch.Tensor | None = None  # [min, max] of the targets seen
        self._classes: int | None = None

    def _add(self, key: str, value: torch.Tensor | float, device: torch.device) -> None:
        acc = self._sums.get(key)
        if acc is None:
            acc = self._sums[key] = torch.tensor(self._init.get(key, 0.0), dtype=torch.float64, device=device)
        acc.add_(value)

    def update(self, out: StepOutput, n: int, extra: Mapping[str, float | torch.Tensor] = ()) -> None:
        """Add one batch of ``n`` samples. Log values may be floats or (preferably, no sync) 0-dim tensors."""
        logits, target = out.logits.detach(), out.target
        device = logits.device
        hits = topk_hits(logits.float(), target, (1, 5)).double()
        self._add("n", float(n), device)
        self._add("correct1", hits[0], device)
        self._add("correct5", hits[1], device)
        if out.loss is not None:
            self._add("loss", out.loss.detach().double() * n, device)
        for k, v in {**out.logs, **dict(extra)}.items():
            v = v.detach().double() if isinstance(v, torch.Tensor) else float(v)
            self._add(f"log/{k}", v * n, device)
        if target.numel():
            r = torch.stack([target.min(), target.max()])
            self._t_range = (
                r
                if self._t_range is None
                else torch.stack(
                    [torch.minimum(self._t_range[0], r[0]), torch.maximum(self._t_range[1], r[1])]
                )
            )
            self._classes = logits.shape[1]

    def sums(self) -> dict[str, float]:
        """The sums as Python floats (one host sync); the state a checkpoint stores."""
        out = dict(self._init)
        keys = list(self._sums)
        if keys:
            out.update(zip(keys, torch.stack([self._sums[k] for k in keys]).tolist()))
        return out

    def check_targets(self) -> None:
        """Refuse out-of-range class indices seen since the start (one host sync)."""
        if self._t_range is None:
            return
        lo, hi = self._t_range.tolist()
        if lo < 0 or hi >= self._classes:
            raise ValueError(
                f"target: expected class indices in [0, {self._classes - 1}] (logits have {self._classes} "
                f"classes), got values in [{lo}, {hi}]"
            )

    def result(self, device: torch.device, reduce: bool = True) -> dict[str, float]:
        """``{"acc1", "acc5", "loss", "n", ...logs}`` (accuracies in %, means per sample); summed over
        ranks when ``reduce``."""
        self.check_targets()
        sums = self.sums()
        keys = sorted(sums)
        values = [sums[k] for k in keys]
        sums = dict(zip(keys, D.all_reduce_sum(values, device) if reduce else values))
        n = max(sums.get("n", 0.0), 1.0)
        res = {"acc1": 100.0 * sums.get("correct1", 0.0) / n, "acc5": 100.0 * sums.get("correct5", 0.0) / n}
        res["loss"] = sums["loss"] / n if "loss" in sums else None
        res.update({k[4:]: v / n for k, v in sums.items() if k.startswith("log/")})
        res["n"] = int(sums.get("n", 0))
        return res

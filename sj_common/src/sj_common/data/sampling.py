"""Class-balanced sampling with replacement as a seeded, sharded, resumable sampler.

* :class:`ClassBalancedSampler`: every draw picks a class uniformly at random, then a sample of that class
  uniformly at random (with replacement; the reference's ``WeightedRandomSampler`` with weights ``1 / n_c``).
* :class:`DrawIndex`: what it yields, an ``int`` index that also says which draw of the epoch it is, so a
  data set that draws something at random per access (:class:`~sj_common.data.PairedStaticEvent`'s static
  partner) draws afresh for every repeat of a sample, statelessly.

Why not torch's ``WeightedRandomSampler``: its draws come from a running generator (not a function of
``(seed, epoch)``), it has no shard per rank and cannot skip the items a resumed run has already seen. This
sampler is a :class:`~sj_common.engine.ShardedSampler` (padding, ``rank::num_replicas`` shards and
``start`` are its), so under DDP each rank gets its share of one epoch's draws and a resumed run repeats
them exactly, with any number of DataLoader workers.
"""

from __future__ import annotations

import numpy as np

from ..engine.distributed import ShardedSampler

__all__ = ["ClassBalancedSampler", "DrawIndex"]

_STREAM = 0xBA1A  # keeps these draws apart from other streams seeded by (seed, epoch)


class DrawIndex(int):
    """An index into a data set (an ``int``) with ``.draw``: its position in the epoch's order.

    Data sets index with it as with any ``int``; one that draws at random per access keys its draw with
    ``.draw`` so that a sample drawn twice in an epoch gets two independent draws. Survives pickling (the
    DataLoader sends indices to its workers).
    """

    draw: int

    def __new__(cls, index: int, draw: int) -> DrawIndex:
        self = super().__new__(cls, index)
        self.draw = int(draw)
        return self

    def __getnewargs__(self) -> tuple[int, int]:
        return int(self), self.draw

    def __repr__(self) -> str:
        return f"DrawIndex({int(self)}, draw={self.draw})"


class ClassBalancedSampler(ShardedSampler):
    """Class-balanced draws with replacement, a function of ``(seed, epoch)``, sharded over ranks.

    Draw ``k`` of an epoch picks a class uniformly among the classes present in ``targets``, then one of its
    samples uniformly, so every class is drawn equally often in expectation (the reference's
    ``WeightedRandomSampler`` with per-sample weights ``1 / n_c``). The epoch's ``num_samples`` draws come
    from ``numpy.random.default_rng([seed, epoch, ...])``: every epoch draws anew (:meth:`set_epoch`), a
    run and its resume draw the same, and rank ``r`` of ``R`` takes draws ``r, r + R, ...`` (padded as
    :class:`~sj_common.engine.ShardedSampler`), so the ranks draw different items whose union is the
    one-process run's draws.

    Args:
        targets: class index of every sample of the data set (``dataset.targets``), 1-D integers.
        num_samples: draws per epoch over all ranks (None: ``len(targets)``, the reference's).
        seed, epoch, rank, num_replicas, start, pad: as :class:`~sj_common.engine.ShardedSampler`.

    Yields :class:`DrawIndex` (``int`` indices into the data set with ``.draw``, the draw's position in the
    epoch). Use with ``fit(..., train_sampler=ClassBalancedSampler(train.targets, seed=cfg.seed))``, or in
    your own loop: ``DataLoader(ds, sampler=s)`` and ``s.set_epoch(e)`` before every epoch.
    """

    def __init__(
        self,
        targets,
        num_samples: int | None = None,
        *,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        num_replicas: int = 1,
        start: int = 0,
        pad: bool = True,
    ) -> None:
        t = np.asarray(targets)
        if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(
                f"targets: expected a non-empty 1-D sequence of class indices, got shape {t.shape}, "
                f"dtype {t.dtype}"
            )
        if num_samples is not None and (
            isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1
        ):
            raise ValueError(f"num_samples: expected None or an int >= 1, got {num_samples!r}")
        super().__init__(
            len(t) if num_samples is None else num_samples,
            seed=seed,
            epoch=epoch,
            rank=rank,
            num_replicas=num_replicas,
            start=start,
            pad=pad,
        )
        self.num_targets = len(t)
        pools = [np.flatnonzero(t == c) for c in np.unique(t)]
        self._sizes = np.array([len(p) for p in pools], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])
        self._flat = np.concatenate(pools)

    @property
    def num_classes(self) -> int:
        """Classes present in ``targets`` (the classes drawn from)."""
        return len(self._sizes)

    def check_fits(self, length: int, name: str = "train_set") -> None:
        if length != self.num_targets:
            raise ValueError(
                f"{name}: expected a data set of length {self.num_targets} (the sampler's targets), "
                f"got length {length}"
            )

    def epoch_order(self) -> list[int]:
        rng = np.random.default_rng([int(self.seed) & (2**64 - 1), int(self.epoch), _STREAM])
        cls = rng.integers(self.num_classes, size=self.n)
        pick = rng.integers(0, self._sizes[cls])
        idx = self._flat[self._offsets[cls] + pick]
        return [DrawIndex(i, k) for k, i in enumerate(idx.tolist())]

    def __repr__(self) -> str:
        return (
            f"ClassBalancedSampler(num_samples={self.n}, classes={self.num_classes}, seed={self.seed}, "
            f"epoch={self.epoch}, rank={self.rank}/{self.num_replicas})"
        )

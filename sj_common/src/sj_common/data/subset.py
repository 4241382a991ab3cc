"""A subset of a data set that keeps ``.targets`` and ``.classes`` (``torch.utils.data.Subset`` drops them)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from torch.utils.data import Dataset

__all__ = ["Subset"]


class Subset(Dataset):
    """Rows ``indices`` of ``base``, in that order, with ``.targets`` (int64 numpy array) and ``.classes`` kept.

    torch's ``Subset`` keeps neither, and every sj-plugins data set promises both (stratified splits,
    class counts and the paired static/event sampler read ``.targets`` without loading samples).

    Args:
        base: a data set with ``.targets``; ``.classes`` is optional (``None`` when absent).
        indices: row numbers of ``base`` (any integer sequence or array).
    """

    def __init__(self, base: Dataset, indices: Iterable[int]):
        if not hasattr(base, "targets"):
            raise TypeError(f"base: expected a data set with .targets, got {type(base).__name__} without it")
        self.base = base
        self.indices = np.asarray(
            list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64
        )
        n = len(base)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(
                f"indices: expected rows in [0, {n}) of base, got {self.indices.min()}..{self.indices.max()}"
            )
        self.targets = np.asarray(base.targets, dtype=np.int64)[self.indices]
        classes = getattr(base, "classes", None)
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[int(self.indices[i])]

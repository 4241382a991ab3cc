"""Seeded, stratified index splits and subsets.

Why our own: torch's ``random_split`` is not stratified, and scikit-learn's ``train_test_split`` would make
scikit-learn a dependency for two small functions. Both functions work on the label array alone (a data
set's ``.targets``), so no sample is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["stratified_split", "stratified_subset"]


def _as_targets(targets, name: str = "targets") -> np.ndarray:
    t = np.asarray(targets)
    if t.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {t.shape}")
    if t.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {t.dtype}")
    return t


def stratified_subset(targets, ratio: float, seed: int = 0) -> np.ndarray:
    """Keep a fraction ``ratio`` of every class, chosen at random (seeded).

    Args:
        targets: 1-D integer labels, one per sample (a data set's ``.targets``).
        ratio: in (0, 1]. A class of ``n_c`` samples keeps ``max(1, floor(ratio * n_c))`` of them
            (``floor`` as the transfer method's reference does with ``int(n_c * r)``; never an empty class).
        seed: seed of the numpy Generator that picks the samples.

    Returns:
        Sorted int64 indices into ``targets``. ``ratio=1`` returns every index.
    """
    t = _as_targets(targets)
    ratio = float(ratio)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(t):  # sorted class order: the same draws for the same seed
        idx = np.flatnonzero(t == c)
        k = max(1, int(np.floor(ratio * len(idx) + 1e-9)))
        keep.append(idx if k == len(idx) else rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


def stratified_split(targets, fractions: Sequence[float], seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split indices into disjoint parts with the same class proportions (seeded).

    Args:
        targets: 1-D integer labels, one per sample.
        fractions: one positive fraction per part, summing to 1 (e.g. ``(0.7, 0.1, 0.2)``). Per class the
            counts are ``floor(f * n_c)``, the remainder going to the parts with the largest fractional
            parts (largest-remainder rounding), so every sample lands in exactly one part.
        seed: seed of the numpy Generator that shuffles each class.

    Returns:
        One sorted int64 index array per fraction; together they are a partition of ``range(len(targets))``.
    """
    t = _as_targets(targets)
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size < 1:
        raise ValueError(f"fractions must be a non-empty sequence of floats, got {fractions!r}")
    if np.any(f <= 0):
        raise ValueError(f"fractions must all be > 0, got {list(fractions)}")
    if abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1 (nothing is dropped silently), got sum {f.sum():.6g}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    for c in np.unique(t):
        idx = rng.permutation(np.flatnonzero(t == c))
        exact = f * len(idx)
        counts = np.floor(exact + 1e-9).astype(np.int64)
        short = len(idx) - counts.sum()
        if short > 0:  # largest remainders first; ties go to the earlier part
            order = np.argsort(-(exact - counts), kind="stable")
            counts[order[:short]] += 1
        for part, chunk in zip(parts, np.split(idx, np.cumsum(counts)[:-1])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)

"""Seeded, stratified index splits and subsets.

Why our own: torch's ``random_split`` is not stratified, and scikit-learn's ``train_test_split`` would make
scikit-learn a dependency for two small functions. Both functions work on the label array alone (a data
set's ``.targets``), so no sample is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["stratified_split", "stratified_subset", "train_test_split"]


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


def stratified_split(
    targets, fractions: Sequence[float], seed: int | None = 0, *, rounding: str = "largest_remainder"
) -> tuple[np.ndarray, ...]:
    """Split indices into disjoint parts with the same class proportions (seeded).

    The one stratified split of sj-plugins: the embedded data sets and the recipes' validation split use
    the default rounding; N-Caltech101, CIFAR10-DVS and the static Caltech101 use ``rounding="round"``
    (the transfer reference's per-class split, 7,839 / 870 for N-Caltech101 at 0.9).

    Args:
        targets: 1-D integer labels, one per sample.
        fractions: one positive fraction per part, summing to 1 (e.g. ``(0.7, 0.1, 0.2)``).
        seed: seed of the numpy Generator that shuffles each class (classes in sorted order, one
            ``permutation`` each). ``None``: no shuffle, each class's samples in their given (file) order,
            the first ones to the first part (the transfer reference's positional split).
        rounding: per-class part sizes of a class of ``n_c`` samples.
            ``"largest_remainder"`` (default): ``floor(f * n_c)``, the remainder to the parts with the largest
            fractional parts (ties to the earlier part). ``"round"``: part boundaries at
            ``round(cumsum(f) * n_c)`` with Python's round (half to even): for two parts
            ``round(f_0 * n_c)`` samples in the first (a class of 45 at 0.9: 40 / 5, where the largest
            remainder gives 41 / 4). Either way every sample lands in exactly one part.

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
    if rounding not in ("largest_remainder", "round"):
        raise ValueError(f"rounding must be 'largest_remainder' or 'round', got {rounding!r}")
    rng = None if seed is None else np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    for c in np.unique(t):
        idx = np.flatnonzero(t == c)
        if rng is not None:
            idx = rng.permutation(idx)
        if rounding == "round":
            cuts = [min(max(round(float(v) * len(idx)), 0), len(idx)) for v in np.cumsum(f)[:-1]]
            counts = np.diff(np.r_[0, cuts, len(idx)])
        else:
            exact = f * len(idx)
            counts = np.floor(exact + 1e-9).astype(np.int64)
            short = len(idx) - counts.sum()
            if short > 0:  # largest remainders first; ties go to the earlier part
                order = np.argsort(-(exact - counts), kind="stable")
                counts[order[:short]] += 1
        for part, chunk in zip(parts, np.split(idx, np.cumsum(counts)[:-1])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def train_test_split(targets, train_fraction: float, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices: per class ``round(train_fraction * n_c)`` to train (Python rounding, the
    transfer reference's), the rest to test; :func:`stratified_split` with ``rounding="round"``.
    ``seed=None`` keeps file order (the first files train). Used by N-Caltech101, CIFAR10-DVS, Caltech101."""
    if isinstance(train_fraction, bool) or not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    f = float(train_fraction)
    return stratified_split(targets, (f, 1.0 - f), seed, rounding="round")

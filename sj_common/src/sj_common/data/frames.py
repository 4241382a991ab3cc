"""Events -> frames ``[T, 2, H, W]`` and a disk cache for frames.

:func:`events_to_frames` bins events into ``T`` equal time bins over the sample's own duration and counts
events per bin, polarity and pixel, as ``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)`` does, with
the same ``[T, P, H, W]`` axis order. Why not call ToFrame directly: ToFrame uses bins of
``(t_last - t_first) // T`` microseconds, half-open, so the last event (and any in the rounding remainder) is
silently dropped; it also needs tonic (GPL-3.0, an optional extra). Our default ``bins="cover"`` spreads the
bins over ``[t_first, t_last]`` so every event is counted exactly once; ``bins="tonic"`` reproduces ToFrame
bit for bit (a test checks both against tonic on a real N-MNIST recording). Both are a single
``np.bincount``, no Python loop.

:class:`FrameCache` stores one ``.npz`` per sample, keyed by (data set id, index, T, parameters hash),
written atomically (temporary file + rename), so a killed run never leaves a half-written frame behind;
:class:`CachedFrames` wraps any data set with it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["events_to_frames", "ToFrames", "FrameCache", "CachedFrames"]


def events_to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    T: int,
    *,
    bins: str = "cover",
    binarize: bool = False,
    dtype=np.float32,
) -> np.ndarray:
    """Bin events into ``T`` frames of per-polarity counts.

    Args:
        events: structured array with fields ``x, y, t, p`` (tonic's event arrays), any order of ``t``.
        sensor_size: tonic-style ``(W, H, P)``; ``P`` is 2 (polarity 0 = OFF, 1 = ON) or 1 (all events in one
            channel).
        T: number of time bins.
        bins: ``"cover"`` (default): ``T`` bins of ``(t_last - t_first + 1) / T`` microseconds starting at
            ``t_first``; every event counted. ``"tonic"``: exactly ``tonic.transforms.ToFrame(n_time_bins=T)``
            (bins of ``(t_last - t_first) // T``; events past ``T`` bins are dropped, the last one always).
        binarize: 1 where a pixel had at least one event in the bin, instead of the count.
        dtype: output dtype (counts are exact in float32 up to 2**24).

    Returns:
        ``[T, P, H, W]`` array of counts. No events -> all zeros.
    """
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    T = int(T)
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in "xytp" if f not in names]
    if missing:
        raise ValueError(f"events must be a structured array with fields x, y, t, p; missing {missing}")
    if len(sensor_size) != 3:
        raise ValueError(f"sensor_size must be (W, H, P), got {sensor_size!r}")
    W, H, P = (int(s) for s in sensor_size)
    if P not in (1, 2):
        raise ValueError(f"sensor_size[2] (polarities) must be 1 or 2, got {P}")
    if bins not in ("cover", "tonic"):
        raise ValueError(f"bins must be 'cover' or 'tonic', got {bins!r}")
    out = np.zeros((T, P, H, W), dtype)
    if len(events) == 0:
        return out
    x, y, t = (np.asarray(events[f], np.int64) for f in "xyt")
    p = np.asarray(events["p"]).astype(np.int64)
    if x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H:
        raise ValueError(
            f"events outside the sensor {W}x{H}: x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]"
        )
    if P == 1:
        p = np.zeros_like(p)
    elif p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"polarities must be 0 or 1 for a 2-polarity sensor, got range [{p.min()}, {p.max()}]"
        )
    if bins == "cover":
        t0 = t.min()
        b = (t - t0) * T // (t.max() - t0 + 1)
        keep = slice(None)
    else:  # tonic's SliceByTimeBins: times[0] / times[-1] of the array as given, half-open windows
        t0 = t[0]
        width = (t[-1] - t0) // T
        # tonic uses searchsorted on the (assumed sorted) times: event in bin i iff start_i <= t < start_i + w
        b = (t - t0) // width if width > 0 else np.full_like(t, T)
        keep = (t >= t0) & (b < T)
    flat = ((b * P + p) * H + y) * W + x
    counts = np.bincount(flat[keep], minlength=T * P * H * W)
    out[...] = counts.reshape(T, P, H, W)
    if binarize:
        out = (out > 0).astype(dtype)
    return out


@dataclass(frozen=True)
class ToFrames:
    """Transform twin of :func:`events_to_frames` (tonic style): ``ToFrames((34, 34, 2), T=8)(events)``.

    Returns a float32 ``[T, P, H, W]`` numpy array; see :func:`events_to_frames` for the arguments.
    """

    sensor_size: tuple[int, int, int]
    T: int
    bins: str = "cover"
    binarize: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return events_to_frames(events, self.sensor_size, self.T, bins=self.bins, binarize=self.binarize)


class FrameCache:
    """One ``.npz`` per sample under ``cache_dir/<dataset_id>/``, keyed by ``(index, T, params_hash)``.

    ``get_or_compute(index, T, fn)`` returns the cached array or computes ``fn()``, stores it atomically and
    returns it. ``params_hash`` (e.g. :meth:`SaccadeEmulator.params_hash` or a hash of transform
    parameters) must change whenever the frames would; the data set id names the source.
    """

    def __init__(self, cache_dir: str | os.PathLike, dataset_id: str, params_hash: str = ""):
        if not dataset_id or any(c in dataset_id for c in "/\\"):
            raise ValueError(
                f"dataset_id must be a non-empty name without path separators, got {dataset_id!r}"
            )
        self.dir = Path(cache_dir) / dataset_id
        self.params_hash = params_hash

    def path(self, index: int, T: int) -> Path:
        key = hashlib.sha1(f"{self.params_hash}".encode()).hexdigest()[:10]
        return self.dir / f"{int(index):07d}-T{int(T)}-{key}.npz"

    def load(self, index: int, T: int) -> np.ndarray | None:
        path = self.path(index, T)
        if not path.is_file():
            return None
        with np.load(path) as z:
            return z["frames"]

    def save(self, index: int, T: int, frames: np.ndarray) -> Path:
        path = self.path(index, T)
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, frames=np.asarray(frames))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def get_or_compute(self, index: int, T: int, fn: Callable[[], np.ndarray]) -> np.ndarray:
        frames = self.load(index, T)
        if frames is None:
            frames = np.asarray(fn())
            self.save(index, T, frames)
        return frames


class CachedFrames(Dataset):
    """Wrap a data set whose items are ``(frames, label)`` with a :class:`FrameCache`.

    The first access of an index computes ``dataset[i]`` and stores its frames; later accesses (also in later
    runs) read the ``.npz``. ``transform`` runs after the cache (put random augmentation there, not in the
    wrapped data set). ``.targets`` / ``.classes`` are the wrapped set's.
    """

    def __init__(self, dataset, cache: FrameCache, T: int, transform=None):
        self.dataset, self.cache, self.T, self.transform = dataset, cache, int(T), transform
        self.targets = np.asarray(dataset.targets, dtype=np.int64)
        self.classes = list(getattr(dataset, "classes", []))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        frames = self.cache.get_or_compute(i, self.T, lambda: _to_numpy(self.dataset[i][0]))
        x = torch.from_numpy(np.asarray(frames, np.float32))
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

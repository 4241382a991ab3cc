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
import numbers
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .eventarray import check_events

__all__ = ["events_to_frames", "ToFrames", "FrameCache", "CachedFrames"]


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r} (the number of time bins)")
    return int(T)


def _bin_index(t: np.ndarray, T: int, bins: str) -> tuple[np.ndarray, np.ndarray | slice]:
    """Time bin of every event and which events are kept, in overflow-free integer arithmetic.

    ``d = t - t_first`` is taken modulo 2**64 in uint64 (exact: ``0 <= d < 2**64``), and the bin edges are
    computed with Python integers, so a recording that spans +-2**62 microseconds bins as exactly as a short
    one (a plain ``(t - t0) * T`` overflows int64)."""
    t0, t1 = int(t.min()), int(t.max())
    span = t1 - t0  # Python int: no overflow
    d = t.astype(np.uint64) - np.uint64(t0 % 2**64)  # wraps modulo 2**64: exact since 0 <= t - t0 < 2**64
    if bins == "cover":
        # bin = floor(d * T / (span + 1)); event in bin >= k iff d >= ceil(k (span + 1) / T)
        s = span + 1
        edges = np.array([-(-k * s // T) for k in range(1, T)], dtype=np.uint64)
        return np.searchsorted(edges, d, side="right").astype(np.int64), slice(None)
    # tonic: half-open windows of span // T microseconds from t_first; a width of 0 (span < T: one event,
    # one shared timestamp) would make every window empty, so it is 1 us here (bin = t - t_first)
    width = max(span // T, 1)
    b = d // np.uint64(width)
    keep = b < np.uint64(T)
    return b.astype(np.int64), keep


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
        events: structured array with fields ``x, y, t, p`` (tonic's event arrays), any order of ``t``;
            ``x`` in ``[0, W)``, ``y`` in ``[0, H)``, ``p`` in {0, 1} (any ``p`` when ``P == 1``), ``t``
            integral microseconds within +-2**62 (else ValueError naming the field and first index).
        sensor_size: tonic-style ``(W, H, P)``; ``P`` is 2 (polarity 0 = OFF, 1 = ON) or 1 (all events in one
            channel).
        T: number of time bins, a positive int (not a float, not a bool).
        bins: ``"cover"`` (default): ``T`` bins of ``(t_last - t_first + 1) / T`` microseconds starting at
            ``t_first``; every event counted. ``"tonic"``: exactly ``tonic.transforms.ToFrame(n_time_bins=T)``
            on sorted events (bins of ``(t_last - t_first) // T`` microseconds; events past ``T`` bins are
            dropped, the last one always), except where tonic's width is 0 (see below).
        binarize: 1 where a pixel had at least one event in the bin, instead of the count.
        dtype: output dtype (counts are exact in float32 up to 2**24).

    Zero duration and short recordings: one event, or events that all share one timestamp, land in bin 0
    (both modes; never all-zero frames). With ``bins="tonic"`` and a duration shorter than ``T``
    microseconds (tonic's width 0, where tonic returns all-zero frames) the bins are 1 us wide: event at
    ``t`` in bin ``t - t_first``, every event counted. The bin arithmetic is exact for any span of
    timestamps (uint64 offsets, Python-int bin edges).

    Returns:
        ``[T, P, H, W]`` array of counts. No events -> all zeros.
    """
    T = _check_T(T)
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in "xytp" if f not in names]
    if missing:
        raise ValueError(f"events must be a structured array with fields x, y, t, p; missing {missing}")
    if sensor_size is None or len(sensor_size) != 3:
        raise ValueError(f"sensor_size must be (W, H, P), got {sensor_size!r}")
    W, H, P = (int(s) for s in sensor_size)
    if W < 1 or H < 1:
        raise ValueError(f"sensor_size must be (W, H, P) with W, H >= 1, got {sensor_size!r}")
    if P not in (1, 2):
        raise ValueError(f"sensor_size[2] (polarities) must be 1 or 2, got {P}")
    if bins not in ("cover", "tonic"):
        raise ValueError(f"bins must be 'cover' or 'tonic', got {bins!r}")
    out = np.zeros((T, P, H, W), dtype)
    if len(events) == 0:
        return out
    check_events(events, (W, H, P), source="events_to_frames", monotonic=False)
    x, y, t = (np.asarray(events[f]).astype(np.int64) for f in "xyt")
    p = np.zeros(len(t), np.int64) if P == 1 else np.asarray(events["p"]).astype(np.int64)
    b, keep = _bin_index(t, T, bins)
    flat = ((b * P + p) * H + y) * W + x
    counts = np.bincount(flat[keep], minlength=T * P * H * W)
    out[...] = counts.reshape(T, P, H, W)
    if binarize:
        out = (out > 0).astype(dtype)
    return out


class ToFrames:
    """Events -> float32 tensor ``[T, P, H, W]`` of per-bin, per-polarity counts over the sample's own
    duration (:func:`events_to_frames`), optionally resized to ``size``: ``ToFrames((34, 34, 2), T=8)(ev)``.

    The one frame transform of sj-plugins (:func:`sj_common.data.events.event_dataset` uses it). Args as
    :func:`events_to_frames`, plus:

    * ``size``: ``(H, W)`` or an int; frames are resized bilinearly with ``align_corners=True`` (the
      transfer reference's framing). Needed when ``sensor_size`` is None.
    * ``resize``: ``"bilinear"`` (default, above) or ``"sum"``: events are binned straight into the
      ``size`` grid (pixel ``x * W_out // W``, ``y * H_out // H``), so every event is still counted once.
      Why: a large reduction (N-Omniglot's 250 -> 28) point-samples with bilinear ``align_corners=True``
      and loses most of a thin stroke's events (and torch's "area" mode double-counts at overlapping
      window edges when the factor is not an integer).
    * ``normalize``: None (counts, default) or ``"max"``: each (frame, polarity) divided by its largest value
      (an all-zero one stays zero), last. That is the N-Omniglot reference's ``frequency`` frames: counts
      divided by the bin duration and then by their maximum, where the duration cancels.
    * ``sensor_size=None`` (N-Caltech101, sizes vary): each sample is framed on its own box (max x + 1,
      max y + 1, always 2 polarities, unlike tonic's inference, which drops an absent polarity).

    ``bins`` defaults to ``"cover"`` as :func:`events_to_frames`; ``event_dataset`` passes its own default
    ``"tonic"`` (the transfer reference's framing), so every existing number is unchanged. Picklable
    (DataLoader workers). Returns a torch tensor (a tonic transform returns numpy) so that tensor
    transforms (random crops) can follow.
    """

    def __init__(
        self,
        sensor_size: tuple[int, int, int] | None,
        T: int,
        bins: str = "cover",
        binarize: bool = False,
        size: tuple[int, int] | int | None = None,
        resize: str = "bilinear",
        normalize: str | None = None,
    ):
        T = _check_T(T)
        if normalize not in (None, "max"):
            raise ValueError(f"normalize must be None or 'max', got {normalize!r}")
        if resize not in ("bilinear", "sum"):
            raise ValueError(f"resize must be 'bilinear' or 'sum', got {resize!r}")
        if size is not None:
            size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
            if (
                len(size) != 2
                or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in size)
                or min(size) < 1
            ):
                raise ValueError(f"size must be (H, W) with positive ints, got {size!r}")
            size = (int(size[0]), int(size[1]))
        if sensor_size is None and size is None:
            raise ValueError(
                "this data set's recordings differ in size (sensor_size None): pass size=(H, W), "
                "e.g. size=(48, 48) as the transfer method"
            )
        if bins not in ("tonic", "cover"):
            raise ValueError(f"bins must be 'cover' or 'tonic', got {bins!r}")
        self.sensor_size = None if sensor_size is None else tuple(sensor_size)
        self.T, self.bins, self.binarize, self.size = T, bins, bool(binarize), size
        self.resize, self.normalize = resize, normalize

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        sensor = self.sensor_size
        if sensor is None:
            if len(events) == 0:
                raise ValueError("no events to frame (sensor_size None: the box comes from the events)")
            sensor = (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)
        if self.resize == "sum" and self.size is not None and (sensor[1], sensor[0]) != self.size:
            check_events(events, sensor, source="ToFrames", monotonic=False)
            (h, w), (W, H) = self.size, sensor[:2]
            events = events.copy()
            events["x"] = events["x"] * w // W
            events["y"] = events["y"] * h // H
            sensor = (w, h, sensor[2])
        fr = events_to_frames(events, sensor, self.T, bins=self.bins, binarize=self.binarize)
        x = torch.from_numpy(fr)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=True)
        if self.normalize == "max":
            peak = x.amax(dim=(-2, -1), keepdim=True)
            x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        return x

    def __eq__(self, other) -> bool:
        return isinstance(other, ToFrames) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.items()))

    def __repr__(self) -> str:
        return (
            f"ToFrames(sensor_size={self.sensor_size}, T={self.T}, bins={self.bins!r}, "
            f"binarize={self.binarize}, size={self.size}, resize={self.resize!r}, normalize={self.normalize!r})"
        )


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

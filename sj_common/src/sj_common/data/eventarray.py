"""The one event dtype of sj-plugins and the one event check every reader and the framing run.

:data:`EVENT_DTYPE` is tonic's N-MNIST dtype (``x, y, t, p``, all int64, ``t`` in microseconds,
``p`` in {0, 1}); the emulator, the readers and the framing all use this one definition.

:func:`check_events` is what every reader runs on what it decoded (why our own: tonic's readers check
nothing, and its transforms assume sorted, in-range events and frame anything else to silent zeros). It
is vectorised (a few comparisons per event, no Python loop) and raises :class:`ValueError` naming the
source (the file), the field and the first offending index:

* ``x`` in ``[0, W)``, ``y`` in ``[0, H)`` (only ``>= 0`` where the sensor size is not fixed);
* ``p`` in {0, 1};
* every field finite and integral (float columns, e.g. a DVS Gesture ``.npy``), ``t`` within
  ``+-2**62`` microseconds;
* ``t`` non-decreasing (``monotonic=True``, the readers' default);
* ``t[i] - t[0] <= max_duration_us`` when a data set states its recordings' length (N-MNIST,
  N-Caltech101: 1 s), so that one outlier timestamp at the end is caught too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EVENT_DTYPE", "check_events", "check_event_columns", "as_events"]

#: tonic's event dtype for N-MNIST / N-Caltech101 (``tonic.datasets.NMNIST.dtype``), without importing tonic.
EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

#: Largest |t| accepted, microseconds (about 146,000 years): keeps ``t * 1000`` casts and sums exact.
T_LIMIT_US = 2**62


def as_events(x, y, t, p) -> np.ndarray:
    """Four columns -> a structured array with :data:`EVENT_DTYPE` (values cast to int64)."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def _fail(source: str, field: str, i: int, what: str) -> None:
    raise ValueError(f"{source}: invalid events: field {field!r} at index {i} (the first bad one) {what}")


def _first(mask: np.ndarray) -> int | None:
    return int(mask.argmax()) if mask.any() else None


def check_event_columns(
    x,
    y,
    t,
    p,
    sensor_size: tuple[int | None, int | None, int] | None,
    *,
    source: str,
    monotonic: bool = True,
    max_duration_us: int | None = None,
) -> None:
    """Check event columns (numpy arrays of one length, integer or float); raise ValueError or return.

    Args:
        x, y, t, p: the columns (``t`` in microseconds).
        sensor_size: ``(W, H, P)``; ``W`` / ``H`` None: only ``>= 0`` is checked (sizes vary per sample).
            ``P == 1``: ``p`` is not checked (one channel). None: no x / y / p range check.
        source: what the events came from (a file path), the start of every message.
        monotonic: require non-decreasing ``t``.
        max_duration_us: largest allowed ``t[i] - t[0]`` (needs ``monotonic``); None: no limit.
    """
    cols = {"x": np.asarray(x), "y": np.asarray(y), "t": np.asarray(t), "p": np.asarray(p)}
    for name, c in cols.items():
        if c.ndim != 1 or len(c) != len(cols["t"]):
            raise ValueError(
                f"{source}: invalid events: field {name!r} has shape {c.shape}, expected [{len(t)}]"
            )
        if c.dtype.kind == "f":
            i = _first(~np.isfinite(c))
            if i is not None:
                _fail(source, name, i, f"is not finite ({c[i]})")
            if name != "t":
                i = _first(c != np.floor(c))
                if i is not None:
                    _fail(source, name, i, f"is not an integer ({c[i]})")
        elif c.dtype.kind not in "iub":
            raise ValueError(
                f"{source}: invalid events: field {name!r} has dtype {c.dtype}, expected numbers"
            )
    tt = cols["t"]
    if len(tt) == 0:
        return
    lim = T_LIMIT_US if tt.dtype.kind != "u" else np.uint64(T_LIMIT_US)
    i = _first((tt > lim) | (tt < -T_LIMIT_US) if tt.dtype.kind != "u" else tt > lim)
    if i is not None:
        _fail(source, "t", i, f"is outside +-2**62 microseconds ({tt[i]})")
    if sensor_size is not None:
        W, H, P = sensor_size
        for name, hi in (("x", W), ("y", H)):
            c = cols[name]
            bad = c < 0 if hi is None else (c < 0) | (c >= hi)
            i = _first(bad)
            if i is not None:
                rng = "[0, inf)" if hi is None else f"[0, {hi})"
                _fail(source, name, i, f"is outside the sensor range {rng} ({c[i]})")
        if P != 1:
            c = cols["p"]
            i = _first((c != 0) & (c != 1))
            if i is not None:
                _fail(source, "p", i, f"is not a polarity 0 or 1 ({c[i]})")
    if monotonic and len(tt) > 1:
        i = _first(tt[1:] < tt[:-1])
        if i is not None:
            _fail(
                source,
                "t",
                i + 1,
                f"decreases ({tt[i + 1]} after {tt[i]}); timestamps must be non-decreasing",
            )
        if max_duration_us is not None:
            # t is sorted and within +-2**62, so t - t[0] cannot overflow int64
            i = _first((tt.astype(np.int64) - np.int64(tt[0])) > max_duration_us)
            if i is not None:
                _fail(
                    source,
                    "t",
                    i,
                    f"is {int(tt[i]) - int(tt[0])} us after the first event, more than this data set's "
                    f"recordings last (max_duration_us={max_duration_us}): an outlier timestamp",
                )


def check_events(
    events: np.ndarray,
    sensor_size: tuple[int | None, int | None, int] | None,
    *,
    source: str,
    monotonic: bool = True,
    max_duration_us: int | None = None,
) -> np.ndarray:
    """Check a structured event array (fields ``x, y, t, p``) as :func:`check_event_columns`; return it."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in "xytp" if f not in names]
    if missing:
        raise ValueError(
            f"{source}: events must be a structured array with fields x, y, t, p; missing {missing}"
        )
    check_event_columns(
        events["x"],
        events["y"],
        events["t"],
        events["p"],
        sensor_size,
        source=source,
        monotonic=monotonic,
        max_duration_us=max_duration_us,
    )
    return events

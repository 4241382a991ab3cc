"""The original IBM DVS128 Gesture release: ``DvsGesture/userNN_<lighting>.aedat`` (AEDAT 3.1) with
``userNN_<lighting>_labels.csv`` and the ``trials_to_train.txt`` / ``trials_to_test.txt`` lists (the layout is below).

Decoding is SpikingJelly's own: ``spikingjelly.datasets.utils.load_aedat_v3`` (header lines up to
``#!END-HEADER``, 28-byte packet headers, polarity packets (type 1) of 8-byte events; other packet types,
e.g. special events, skipped), and the items are cut as ``spikingjelly.datasets.dvs128_gesture`` cuts them:
one item per labels-csv row ``class,startTime_usec,endTime_usec``, class 1..11 -> label 0..10, the events
with ``start <= t < end``. That gives SpikingJelly's 1,176 train / 288 test samples (users 1-23 / 24-29);
tonic's preprocessed ``.npy`` copy keeps one sample per (trial, class) and has 1,077 / 264. Classes and
their order are the same in both.

SpikingJelly decodes in a Python loop (a few seconds for a full trial), and every item decodes its trial:
wrap the frames in :class:`~sj_common.data.frames.CachedFrames` to decode each trial's items once.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .eventarray import as_events

__all__ = [
    "check_aedat31_layout",
    "read_gesture_aedat",
    "read_gesture_labels",
    "list_gesture_trials",
    "GESTURE_AEDAT_LAYOUT",
]

GESTURE_AEDAT_LAYOUT = """  root/DvsGesture/userNN_<lighting>.aedat + userNN_<lighting>_labels.csv  (the original IBM release,
  root/DvsGesture/trials_to_train.txt, trials_to_test.txt                 AEDAT 3.1; also root/ directly)
  each labels csv: a header line 'class,startTime_usec,endTime_usec', then one row per gesture (class 1..11)"""


def check_aedat31_layout(path) -> int:
    """Check an AEDAT 3.1 file's packet structure before SpikingJelly's reader sees it; return the number of
    packets. Header lines as that reader skips them (``#`` lines up to ``#!END-HEADER\\r\\n``), then 28-byte
    packet headers whose ``capacity * size`` bytes of events must lie inside the file, and polarity packets
    (type 1) of at least 8 bytes per event. Why: the reader trusts these numbers (``read(capacity * size)``
    allocates whatever a corrupted header says, a stride of 0 raises deep inside it); any problem here is a
    ValueError naming the packet."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        line = f.readline()
        while line.startswith(b"#"):
            if line == b"#!END-HEADER\r\n":
                break
            line = f.readline()
        if line != b"#!END-HEADER\r\n":
            raise ValueError("no '#!END-HEADER' line ends the header (not an AEDAT 3.1 file)")
        pos, k = f.tell(), 0
        while pos < size:
            f.seek(pos)
            head = f.read(28)
            if len(head) < 28:
                raise ValueError(f"packet {k} at byte {pos}: a {len(head)}-byte packet header (28 expected)")
            kind, _, ev_size, _, _, capacity, _, _ = struct.unpack("<hhiiiiii", head)
            if ev_size < 0 or capacity < 0 or (kind == 1 and ev_size < 8):
                raise ValueError(
                    f"packet {k} at byte {pos}: event size {ev_size} / capacity {capacity} "
                    "(polarity events take 8 bytes)"
                )
            if pos + 28 + ev_size * capacity > size:
                raise ValueError(
                    f"packet {k} at byte {pos}: {capacity} events of {ev_size} B run past the end of the "
                    f"file ({size} B)"
                )
            pos += 28 + ev_size * capacity
            k += 1
    return k


def read_gesture_aedat(path) -> np.ndarray:
    """A whole AEDAT 3.1 trial through ``spikingjelly.datasets.utils.load_aedat_v3``, as a structured array
    ``x, y, t, p`` (int64, t in microseconds), unchecked (its packet structure is checked first,
    :func:`check_aedat31_layout`)."""
    from spikingjelly.datasets.utils import load_aedat_v3

    check_aedat31_layout(path)
    d = load_aedat_v3(str(path))
    return as_events(*(np.asarray(d[k], dtype=np.int64).reshape(-1) for k in ("x", "y", "t", "p")))


def read_gesture_labels(path) -> np.ndarray:
    """A ``*_labels.csv``: ``[rows, 3]`` int64 ``(label 0..10, start, end)``; a row that is not three
    integers with class 1..11 and ``start < end`` is a ValueError naming the file and the line."""
    path = Path(path)
    rows = []
    for k, line in enumerate(path.read_text(errors="replace").splitlines()[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            if len(cells) != 3:
                raise ValueError(f"{len(cells)} columns")
            c, start, end = (int(v) for v in cells)
            if not 1 <= c <= 11:
                raise ValueError(f"class {c} is not in 1..11")
            if not start < end:
                raise ValueError(f"start {start} is not before end {end}")
        except ValueError as e:
            raise ValueError(
                f"DVS128 Gesture: {path} line {k}: expected 'class,startTime_usec,endTime_usec' with class 1..11 "
                f"and start < end, got {line[:80]!r} ({e})"
            ) from e
        rows.append((c - 1, start, end))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def list_gesture_trials(folder: Path, split: str) -> list[tuple[Path, Path]]:
    """``(aedat, labels csv)`` of each trial in ``trials_to_<split>.txt``, in the list's order (sorted names
    in the release). Raises FileNotFoundError naming a listed file that is missing."""
    listing = folder / f"trials_to_{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(
            f"DVS128 Gesture: missing {listing}\nExpected layout:\n{GESTURE_AEDAT_LAYOUT}"
        )
    out = []
    for name in listing.read_text().split():
        aedat = folder / name
        labels = aedat.with_name(aedat.stem + "_labels.csv")
        for f in (aedat, labels):
            if not f.is_file():
                raise FileNotFoundError(
                    f"DVS128 Gesture: {listing} lists {name}, but {f} is missing\nExpected layout:\n"
                    f"{GESTURE_AEDAT_LAYOUT}"
                )
        out.append((aedat, labels))
    if not out:
        raise FileNotFoundError(f"DVS128 Gesture: {listing} lists no trial")
    return out

"""N-Omniglot (Li et al., Scientific Data 2022): Omniglot's 1,623 characters drawn on a DAVIS346, read from a
local root (never downloaded); the layout and format are below.

Layout::

    root/dvs_background/<alphabet>/characterNN/NNNN.aedat4 + NNNN.csv   (30 alphabets, 964 characters)
    root/dvs_evaluation/<alphabet>/characterNN/NNNN.aedat4 + NNNN.csv   (20 alphabets, 659 characters)

(also under ``root/NOmniglot/`` or ``root/N-Omniglot/``). One ``.aedat4`` recording per character holds
all 20 drawers; its ``.csv`` (a header line, then one row per drawer: index, start, end timestamp in the
events' microsecond clock) cuts it: drawer ``d``'s sample is the events from the first event with
``t == start`` up to, excluding, the first event with ``t == end``, as the reference slices them. A
timestamp that matches no event crashes the reference; here it is a :class:`ValueError` naming the csv
file, its line and the drawer.

Decoding: the ``aedat`` package (Rust, MIT; the decoder behind ``tonic.io.read_aedat4``), uncompressed,
LZ4 or Zstd. Why ``aedat.Decoder`` rather than ``tonic.io.read_aedat4``: tonic takes the events stream
with the lowest id, while the reference takes the stream whose ``originalOutputName`` is ``events``; aedat
does not expose stream names, so :func:`aedat4_stream_names` reads them from the file's XML header (the
events themselves are aedat's).

Classes: 1,623, background (0..963) then evaluation (964..1622), alphabets in **sorted** name order
(the reference lists them with unsorted ``os.listdir``, a file-system dependent order), characters in
numeric order; class names ``<alphabet>/characterNN``, the names :class:`sj_common.data.static.Omniglot`
gives, so the static side pairs by name. Split (``NOmniglotfull``, the transfer paper's): drawers 1-15
train, 16-20 test (24,345 / 8,115 samples).

Events: ``x, y, t, p`` int64 (``p`` 1 = ON), checked on the whole recording against the 346 x 260 sensor,
then cropped as the reference crops its frames, rows 4..253 and columns 54..303 (250 x 250, shifted to
0), so frames from ``event_dataset("nomniglot", ..., T=12, size=28)`` have the reference's field of view.
Frames are per-bin event counts in tonic's bins over the sample's own duration, as for every other set;
``normalize="max"`` gives the reference's ``frequency`` frames (counts divided by the bin duration, then
each (frame, polarity) scaled to a maximum of 1: the duration cancels). Remaining differences: tonic's bins
(``(t_last - t_first) // T`` wide from the first event; the reference's are ``t_last // T`` wide after
shifting t to 0, the same) and ``resize="sum"`` (events binned into the 28 x 28 grid) where the reference
resizes 250 x 250 frames.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .eventarray import as_events, check_events
from .eventfolder import _NO_DOWNLOAD, EventFolder

__all__ = ["NOmniglot", "read_aedat4_events", "aedat4_stream_names", "check_aedat4_layout", "read_drawer_csv"]

_LAYOUT = """  root/dvs_background/<alphabet>/characterNN/NNNN.aedat4 + NNNN.csv   (30 alphabets, 964 characters)
  root/dvs_evaluation/<alphabet>/characterNN/NNNN.aedat4 + NNNN.csv   (20 alphabets, 659 characters)
  (also under root/NOmniglot/ or root/N-Omniglot/); each csv: a header line, then 20 rows index,start,end"""

_MAGIC = b"#!AER-DAT4.0\r\n"


def _aedat():
    try:
        import aedat
    except ImportError as e:
        raise ImportError(
            "reading AEDAT 4.0 (.aedat4) files needs the 'aedat' package: pip install aedat "
            "(or pip install 'sj-common[events]')"
        ) from e
    return aedat


def aedat4_stream_names(path) -> dict[int, tuple[str, str]]:
    """``{stream id: (typeIdentifier, originalOutputName)}`` from an AEDAT 4.0 file's header (checked as
    :func:`check_aedat4_layout` checks the whole file)."""
    return check_aedat4_layout(path)


def _u(fmt: str, buf: bytes, pos: int, what: str):
    if pos < 0 or pos + struct.calcsize(fmt) > len(buf):
        raise ValueError(f"{what} at byte {pos} lies outside the {len(buf)}-byte header")
    return struct.unpack_from(fmt, buf, pos)[0]


def check_aedat4_layout(path) -> dict[int, tuple[str, str]]:
    """Check an AEDAT 4.0 file's structure before it reaches the decoder; return its streams
    ``{id: (typeIdentifier, originalOutputName)}``.

    The file is ``#!AER-DAT4.0\\r\\n``, a ``uint32`` length, an IOHeader flatbuffer (compression,
    file_data_position, the XML description of the streams), then packets ``int32 stream id, uint32 size,
    payload`` up to file_data_position (or the end). Why here: aedat trusts these numbers; a corrupted size
    makes it allocate up to 4 GB and abort the whole process (found by the fuzz test), and it reads the
    IOHeader without bounds checks. So every offset of the header, every packet's stream id and size are
    checked against the file (reading 8 bytes per packet, not the payloads); any problem is a ValueError.
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(_MAGIC) + 4)
        if len(head) < len(_MAGIC) + 4 or head[: len(_MAGIC)] != _MAGIC:
            raise ValueError(f"{path}: not an AEDAT 4.0 file (no '#!AER-DAT4.0' magic line)")
        (n,) = struct.unpack("<I", head[len(_MAGIC) :])
        data_start = len(_MAGIC) + 4 + n
        if data_start > size:
            raise ValueError(
                f"{path}: the header claims {n} bytes, the file holds {size - len(head)} after it"
            )
        buf = f.read(n)
        try:
            root = _u("<I", buf, 0, "the root offset")
            vt = root - _u("<i", buf, root, "the IOHeader table")
            vt_size = _u("<H", buf, vt, "the IOHeader vtable")
            table_size = _u("<H", buf, vt + 2, "the IOHeader vtable")
            if vt_size < 4 or vt + vt_size > len(buf) or root + table_size > len(buf):
                raise ValueError(
                    f"the IOHeader vtable ({vt_size} B at {vt}) or table does not fit the header"
                )
            fields = []
            for i, width in enumerate((4, 8, 4)):  # compression int32, file_data_position int64, description
                off = _u("<H", buf, vt + 4 + 2 * i, "a vtable entry") if 4 + 2 * i < vt_size else 0
                if off and (off + width > table_size):
                    raise ValueError(f"IOHeader field {i} at table offset {off} lies outside its table")
                fields.append(off)
            compression = _u("<i", buf, root + fields[0], "compression") if fields[0] else 0
            fdp = _u("<q", buf, root + fields[1], "file_data_position") if fields[1] else -1
            if compression not in range(5):
                raise ValueError(
                    f"compression {compression} is not one of 0..4 (none, LZ4, LZ4 high, Zstd, Zstd high)"
                )
            if not fields[2]:
                raise ValueError("the IOHeader has no description of the streams")
            pos = root + fields[2]
            start = pos + _u("<I", buf, pos, "the description offset")
            length = _u("<I", buf, start, "the description length")
            if start + 4 + length > len(buf):
                raise ValueError("the description runs past the header")
            doc = ET.fromstring(buf[start + 4 : start + 4 + length].decode("utf-8"))
        except (UnicodeDecodeError, ET.ParseError, ValueError) as e:
            raise ValueError(f"{path}: unreadable AEDAT 4.0 header: {e}") from e
        streams = {}
        for out_info in doc.iter("node"):
            if out_info.get("name") != "outInfo":
                continue
            for node in out_info.findall("node"):
                attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
                if (node.get("name") or "").isdigit():
                    streams[int(node.get("name"))] = (
                        attrs.get("typeIdentifier", ""),
                        attrs.get("originalOutputName", ""),
                    )
        end = size if fdp < 0 else fdp
        if not data_start <= end <= size:
            raise ValueError(
                f"{path}: file_data_position {fdp} lies outside the packets ({data_start}..{size})"
            )
        pos, k = data_start, 0
        while pos < end:
            if pos + 8 > end:
                raise ValueError(f"{path}: packet {k} at byte {pos}: its 8-byte header runs past byte {end}")
            f.seek(pos)
            sid, length = struct.unpack("<iI", f.read(8))
            if sid not in streams:
                raise ValueError(
                    f"{path}: packet {k} at byte {pos}: stream id {sid} is none of {sorted(streams)}"
                )
            if pos + 8 + length > end:
                raise ValueError(
                    f"{path}: packet {k} at byte {pos}: its size {length} B runs past byte {end} (file of {size} B)"
                )
            pos += 8 + length
            k += 1
    return streams


def read_aedat4_events(path, stream: str = "events") -> np.ndarray:
    """The events of the stream named ``stream`` (``originalOutputName``) of an AEDAT 4.0 file, as a
    structured array ``x, y, t, p`` (int64; ``p`` 1 = ON), unchecked. With one events stream its name is
    not required; with several, the one named ``stream`` is taken (ValueError naming the file if none is)."""
    path = Path(path)
    names = check_aedat4_layout(path)
    aedat = _aedat()
    try:
        decoder = aedat.Decoder(str(path))
        ids = [i for i, s in decoder.id_to_stream().items() if s.get("type") == "events"]
        target = _pick_stream(path, ids, names, stream)
        packets = [p["events"] for p in decoder if p["stream_id"] == target]
    except ValueError:
        raise
    except BaseException as e:
        # aedat reports a bad packet as RuntimeError, or as a Rust panic (pyo3's PanicException, which
        # derives from BaseException); neither may stop a training run
        if isinstance(e, Exception) or type(e).__name__ == "PanicException":
            raise ValueError(f"{path}: the aedat decoder refused the file: {type(e).__name__}: {e}") from e
        raise
    if not packets:
        return as_events([], [], [], [])
    raw = np.concatenate(packets)
    on = raw["on"] if "on" in raw.dtype.names else raw["p"]
    return as_events(raw["x"], raw["y"], raw["t"].astype(np.int64), on.astype(np.int64))


def _pick_stream(path: Path, ids: list[int], names: dict, stream: str) -> int:
    if not ids:
        raise ValueError(f"{path}: no events stream in the file (streams: {names})")
    named = [i for i in ids if names.get(i, ("", ""))[1] == stream]
    if len(named) == 1:
        target = named[0]
    elif len(ids) == 1 and not named:
        target = ids[0]
    else:
        raise ValueError(
            f"{path}: {len(ids)} events streams {sorted(names.get(i, ('', ''))[1] for i in ids)}, "
            f"expected exactly one named {stream!r}"
        )
    return target


def read_drawer_csv(path) -> np.ndarray:
    """An N-Omniglot ``.csv``: a header line, then rows ``index, start, end``; returns ``[rows, 2]`` int64
    (start, end). A row that is not three integers is a ValueError naming the file and the line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"N-Omniglot: cannot read {path}: {e}") from e
    rows = []
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            if len(cells) < 3:
                raise ValueError(f"{len(cells)} columns")
            rows.append((int(cells[1]), int(cells[2])))
        except ValueError as e:
            raise ValueError(
                f"N-Omniglot: {path} line {k}: expected 'index,start,end' with integer timestamps, got "
                f"{line[:80]!r} ({e})"
            ) from e
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


class NOmniglot(EventFolder):
    """N-Omniglot: 1,623 classes x 20 drawers, DAVIS346 (346 x 260), items cropped to 250 x 250.

    Args:
        root: folder holding ``dvs_background`` and ``dvs_evaluation`` (see the module docstring).
        split: "train" (drawers 1..``train_drawers``) or "test" (the rest), the reference's full split.
        transform: applied to the events (``event_dataset`` adds the framing).
        subset: "all" (1,623 classes), "background" (964) or "evaluation" (659, labels from 0).
        train_drawers: 15 (the reference's); ``drawers`` per recording is 20.
        crop: the reference's 250 x 250 crop (default); False keeps the whole 346 x 260 sensor (then
            ``sensor_size`` of this instance is (346, 260, 2); pass a frame ``size``).

    Item: (events structured array, label). Attributes: ``.files`` (the recording of each item),
    ``.drawers`` (1..20), ``.targets``, ``.classes`` (``<alphabet>/characterNN``). Listing reads no event
    and no csv; every read decodes the item's recording (wrap frames with
    :class:`~sj_common.data.frames.CachedFrames` to decode each drawer once).
    """

    name = "N-Omniglot"
    sensor_size = (250, 250, 2)
    file_sensor_size = (346, 260, 2)
    #: the reference's crop ``[:, :, 4:254, 54:304]``: (x0, y0, width, height)
    crop_box = (54, 4, 250, 250)
    drawers_per_character = 20

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        subset: str = "all",
        train_drawers: int = 15,
        crop: bool = True,
    ):
        super().__init__(root, split, transform)
        parts = {
            "all": ("background", "evaluation"),
            "background": ("background",),
            "evaluation": ("evaluation",),
        }
        if subset not in parts:
            raise ValueError(f"subset must be 'all', 'background' or 'evaluation', got {subset!r}")
        n = self.drawers_per_character
        if isinstance(train_drawers, bool) or not isinstance(train_drawers, int) or not 0 < train_drawers < n:
            raise ValueError(f"train_drawers must be an int in [1, {n - 1}], got {train_drawers!r}")
        self.subset, self.train_drawers, self.crop = subset, train_drawers, bool(crop)
        if not self.crop:
            self.sensor_size = self.file_sensor_size
        keep = range(1, train_drawers + 1) if self.split == "train" else range(train_drawers + 1, n + 1)
        self.drawers: list[int] = []
        self.csv_files: list[Path] = []
        targets = []
        for part in parts[subset]:
            folder = self._part_folder(part)
            alphabets = sorted(p for p in folder.iterdir() if p.is_dir())
            if not alphabets:
                raise FileNotFoundError(
                    f"{self.name}: no alphabet folders in {folder}\nExpected layout:\n{_LAYOUT}"
                )
            for alphabet in alphabets:
                chars = sorted(
                    (c for c in alphabet.iterdir() if c.is_dir() and re.fullmatch(r"character\d+", c.name)),
                    key=lambda c: int(c.name[len("character") :]),
                )
                if not chars:
                    raise FileNotFoundError(
                        f"{self.name}: no characterNN folders in {alphabet}\nExpected layout:\n{_LAYOUT}"
                    )
                for char in chars:
                    rec = sorted(char.glob("*.aedat4"))
                    if len(rec) != 1:
                        raise FileNotFoundError(
                            f"{self.name}: {char} holds {len(rec)} .aedat4 files, expected one recording "
                            f"(NNNN.aedat4 + NNNN.csv)\nExpected layout:\n{_LAYOUT}"
                        )
                    csv = rec[0].with_suffix(".csv")
                    if not csv.is_file():
                        raise FileNotFoundError(
                            f"{self.name}: {rec[0]} has no drawer table {csv.name} beside it\nExpected layout:\n{_LAYOUT}"
                        )
                    label = len(self.classes)
                    self.classes.append(f"{alphabet.name}/{char.name}")
                    for d in keep:
                        self.files.append(rec[0])
                        self.csv_files.append(csv)
                        self.drawers.append(d)
                        targets.append(label)
        self.targets = np.asarray(targets, dtype=np.int64)

    def _part_folder(self, part: str) -> Path:
        r = self.root
        cands = [r / f"dvs_{part}", r / "NOmniglot" / f"dvs_{part}", r / "N-Omniglot" / f"dvs_{part}"]
        for c in cands:
            if c.is_dir():
                return c
        tried = "\n  ".join(map(str, cands))
        raise FileNotFoundError(
            f"{self.name}: none of the expected folders exists:\n  {tried}\nExpected layout:\n{_LAYOUT}\n{_NO_DOWNLOAD}"
        )

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        return read_aedat4_events(path)

    def _read_item(self, index: int) -> np.ndarray:
        path, csv, drawer = self.files[index], self.csv_files[index], self.drawers[index]
        ev = self._read_checked(path, self.max_duration_us)  # the whole recording, checked on 346 x 260
        table = read_drawer_csv(csv)
        if len(table) < drawer:
            raise ValueError(
                f"{self.name}: {csv} has {len(table)} drawer rows; drawer {drawer} needs row {drawer} "
                f"(line {drawer + 1})"
            )
        start, end = (int(v) for v in table[drawer - 1])
        t = ev["t"]
        bounds = []
        for what, value in (("start", start), ("end", end)):
            i = int(np.searchsorted(t, value, side="left"))
            if i >= len(t) or t[i] != value:
                raise ValueError(
                    f"{self.name}: {csv} line {drawer + 1} (drawer {drawer}): {what} timestamp {value} matches no "
                    f"event of {path} (its events span {int(t[0])}..{int(t[-1])} us)"
                )
            bounds.append(i)
        i0, i1 = bounds
        if i1 <= i0:
            raise ValueError(
                f"{self.name}: {csv} line {drawer + 1} (drawer {drawer}): the slice [{start}, {end}) of {path} holds "
                f"no event (end must come after start)"
            )
        ev = ev[i0:i1]
        if self.crop:
            x0, y0, w, h = self.crop_box
            inside = (ev["x"] >= x0) & (ev["x"] < x0 + w) & (ev["y"] >= y0) & (ev["y"] < y0 + h)
            ev = ev[inside].copy()
            ev["x"] -= x0
            ev["y"] -= y0
            if len(ev) == 0:
                raise ValueError(
                    f"{self.name}: {path} drawer {drawer}: no event inside the crop (columns {x0}..{x0 + w - 1}, "
                    f"rows {y0}..{y0 + h - 1})"
                )
        return check_events(ev, self.sensor_size, source=f"{self.name}: {path} drawer {drawer}")

    def __repr__(self) -> str:
        return (
            f"NOmniglot(root={str(self.root)!r}, split={self.split!r}, subset={self.subset!r}, n={len(self)}, "
            f"classes={len(self.classes)})"
        )

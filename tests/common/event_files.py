"""Writers of small synthetic event files in the formats of ``shared/notes/event-formats.md``, for tests.

No real N-Omniglot, CEP-DVS or original DVS128 Gesture recording is available offline, so the tests build
files of the same shape from the notes and check that the readers decode them field by field:

* :func:`write_aedat4`: AEDAT 4.0 (N-Omniglot), uncompressed or LZ4-compressed (an LZ4 frame around a
  real LZ4 block of literals and back-references, built by :func:`lz4_frame`), with the IOHeader and
  EventPacket flatbuffers laid out by hand (tables, vtables, a vector of 16-byte ``Event`` structs);
* :func:`write_aedat31`: AEDAT 3.1 (the original DVS128 Gesture release), optionally with a special-event
  packet (type 0) that a reader must skip;
* :func:`write_cep_mat`: a MATLAB v5 ``.mat`` with ``x, y, ts, p`` (CEP-DVS), through ``scipy.io.savemat``.

Why by hand: the writers that exist (``dv-processing``, the ``flatbuffers`` and ``lz4`` Python packages) are
not dependencies of the project, and each structure here is a few lines. The decoders (``aedat`` through
tonic, SpikingJelly's AEDAT 3.1 reader, scipy) are independent of these writers, so a decoded event equal
to the written one checks both.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_M32 = 0xFFFFFFFF
_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32_short(data: bytes, seed: int = 0) -> int:
    """xxHash32 of fewer than 16 bytes (the LZ4 frame header checksum covers 2 bytes here)."""
    assert len(data) < 16
    h = (seed + _P5 + len(data)) & _M32
    i = 0
    while i + 4 <= len(data):
        h = _rotl((h + int.from_bytes(data[i : i + 4], "little") * _P3) & _M32, 17) * _P4 & _M32
        i += 4
    for b in data[i:]:
        h = _rotl((h + b * _P5) & _M32, 11) * _P1 & _M32
    h ^= h >> 15
    h = h * _P2 & _M32
    h ^= h >> 13
    h = h * _P3 & _M32
    return h ^ (h >> 16)


def _lz4_len(out: bytearray, v: int) -> None:
    while v >= 255:
        out.append(255)
        v -= 255
    out.append(v)


def lz4_block(src: bytes) -> bytes:
    """A greedy LZ4 block compressor (literals + back-references of >= 4 bytes; the format's end rules: the
    last 5 bytes are literals, no match starts in the last 12 bytes)."""
    n, out, anchor, i, table = len(src), bytearray(), 0, 0, {}
    while i < n - 12:
        key = src[i : i + 4]
        cand = table.get(key)
        table[key] = i
        if cand is None or i - cand > 65535:
            i += 1
            continue
        m = 4
        while i + m < n - 5 and src[cand + m] == src[i + m]:
            m += 1
        lit = i - anchor
        out.append(min(lit, 15) << 4 | min(m - 4, 15))
        if lit >= 15:
            _lz4_len(out, lit - 15)
        out += src[anchor:i]
        out += (i - cand).to_bytes(2, "little")
        if m - 4 >= 15:
            _lz4_len(out, m - 4 - 15)
        i += m
        anchor = i
    lit = n - anchor
    out.append(min(lit, 15) << 4)
    if lit >= 15:
        _lz4_len(out, lit - 15)
    out += src[anchor:]
    return bytes(out)


def lz4_frame(src: bytes) -> bytes:
    """One LZ4 frame (independent blocks, 4 MB max, no checksums) holding one compressed block."""
    flg, bd = 0x60, 0x70
    header = bytes([flg, bd])
    block = lz4_block(src)
    assert len(block) < len(src), "the synthetic packet should compress (it repeats)"
    return (
        (0x184D2204).to_bytes(4, "little")
        + header
        + bytes([(xxh32_short(header) >> 8) & 0xFF])
        + len(block).to_bytes(4, "little")
        + block
        + (0).to_bytes(4, "little")
    )


def _ioheader(compression: int, description: str) -> bytes:
    """IOHeader flatbuffer (identifier IOHE): compression int32, file_data_position int64 (-1), description."""
    desc = description.encode()
    buf = bytearray()
    buf += struct.pack("<I", 24)  # root table at 24
    buf += b"IOHE"
    buf += struct.pack("<HHHHH", 10, 20, 4, 8, 16)  # vtable at 8: 3 fields
    buf += b"\0" * (24 - len(buf))
    buf += struct.pack("<iiqI", 24 - 8, compression, -1, 44 - 40)  # table at 24; string at 44
    buf += struct.pack("<I", len(desc)) + desc + b"\0"
    buf += b"\0" * (-len(buf) % 8)
    return bytes(buf)


def _event_packet(t, x, y, on) -> bytes:
    """Size-prefixed EventPacket flatbuffer (identifier EVTS) of 16-byte events (t, x, y, on, 3 pad)."""
    body = bytearray()
    body += struct.pack("<I", 20 - 4)  # root offset at 4, relative to itself: table at 20
    body += b"EVTS"
    body += struct.pack("<HHH", 6, 8, 4)  # vtable at 12: 1 field
    body += b"\0" * (20 - 4 - len(body))
    body += struct.pack("<iI", 20 - 12, 28 - 24)  # table at 20; the vector (length) at 28
    body += struct.pack("<I", len(t))
    for ti, xi, yi, oi in zip(t, x, y, on):
        body += struct.pack("<qhh?3x", int(ti), int(xi), int(yi), bool(oi))
    return struct.pack("<I", len(body)) + bytes(body)


def _stream_xml(streams: list[tuple[int, str, str]]) -> str:
    nodes = []
    for sid, ident, name in streams:
        info = (
            f'<node name="info" path="/mainloop/Recorder/outInfo/{sid}/info/">'
            '<attr key="sizeX" type="int">346</attr><attr key="sizeY" type="int">260</attr>'
            '<attr key="source" type="string">DAVIS346_00000001</attr></node>'
        )
        nodes.append(
            f'<node name="{sid}" path="/mainloop/Recorder/outInfo/{sid}/">'
            '<attr key="compression" type="string">NONE</attr>'
            '<attr key="originalModuleName" type="string">capture</attr>'
            f'<attr key="originalOutputName" type="string">{name}</attr>'
            f'<attr key="typeIdentifier" type="string">{ident}</attr>{info}</node>'
        )
    return (
        '<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
        + "".join(nodes)
        + "</node></dv>"
    )


def write_aedat4(
    path: Path,
    events: np.ndarray,
    *,
    compression: str = "none",
    packet_size: int = 50,
    decoy: np.ndarray | None = None,
) -> Path:
    """Write ``events`` (fields x, y, t, p) as an AEDAT 4.0 file, in packets of ``packet_size`` events.

    ``compression``: "none" or "lz4" (every packet payload an LZ4 frame). ``decoy``: events of a second
    EVTS stream with a lower id (0) whose ``originalOutputName`` is ``undistortedEvents``, interleaved
    before each packet of the real ``events`` stream (id 1): a reader must pick the stream by name.
    """
    comp = {"none": 0, "lz4": 1}[compression]
    streams = [(1, "EVTS", "events")] + ([(0, "EVTS", "undistortedEvents")] if decoy is not None else [])
    out = bytearray(b"#!AER-DAT4.0\r\n")
    head = _ioheader(comp, _stream_xml(streams))
    out += struct.pack("<I", len(head)) + head

    def packet(sid: int, ev: np.ndarray) -> bytes:
        payload = _event_packet(ev["t"], ev["x"], ev["y"], ev["p"])
        if comp:
            payload = lz4_frame(payload)
        return struct.pack("<iI", sid, len(payload)) + payload

    for k in range(0, len(events), packet_size):
        if decoy is not None and len(decoy):
            out += packet(0, decoy)
        out += packet(1, events[k : k + packet_size])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def write_aedat31(path: Path, x, y, t, p, *, special: bool = True, overflow: int = 0) -> Path:
    """AEDAT 3.1 as the DVS128 Gesture release: CRLF header lines ending ``#!END-HEADER\\r\\n``, then 28-byte
    packet headers (type, source, size, ts offset, ts overflow, capacity, number, valid) and 8-byte polarity
    events (``uint32 (x << 17) | (y << 2) | (p << 1) | 1``, ``int32 t``). ``special``: a type-0 packet of
    two 8-byte special events first (a reader skips it)."""
    out = bytearray(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n")
    if special:
        out += struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2)
        out += struct.pack("<Ii", 0x7FFFFFFF, 5) * 2  # would decode to x = 16383 if it were read as polarity
    n = len(t)
    out += struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, n)
    for xi, yi, ti, pi in zip(x, y, t, p):
        out += struct.pack("<Ii", (int(xi) << 17) | (int(yi) << 2) | (int(pi) << 1) | 1, int(ti))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def write_cep_mat(path: Path, x, y, ts, p) -> Path:
    """A MATLAB v5 ``.mat`` with column vectors ``x, y, ts, p`` (``p`` in {-1, 1}), as CEP-DVS."""
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {
        k: np.asarray(v, dtype=np.float64).reshape(-1, 1)
        for k, v in (("x", x), ("y", y), ("ts", ts), ("p", p))
    }
    savemat(str(path), cols, format="5")
    return path


def nomniglot_recording(
    rng: np.random.Generator, n_per_drawer: int = 12, drawers: int = 20, t0: int = 1_000_000
):
    """Events of one N-Omniglot character (``drawers`` drawers of ``n_per_drawer`` events, 100 us apart, gaps
    between drawers) and its drawer table ``[(start, end)]``: start = the drawer's first event's t, end = the
    next drawer's first event's t (the last drawer ends at a trailing event), so every timestamp is an event's.
    Events lie inside the reference's crop (x 54..303, y 4..253) except one per drawer, outside it."""
    from sj_common.data.eventarray import as_events

    xs, ys, ts, ps, table = [], [], [], [], []
    t = t0
    for _ in range(drawers):
        start = t
        x = rng.integers(54, 304, n_per_drawer)
        y = rng.integers(4, 254, n_per_drawer)
        x[-1] = int(rng.choice([0, 53, 304, 345]))  # outside the crop: dropped by it
        xs.append(x)
        ys.append(y)
        ts.append(start + 100 * np.arange(n_per_drawer))
        ps.append(rng.integers(0, 2, n_per_drawer))
        t = start + 100 * n_per_drawer + 5000
        table.append((start, t))
    xs.append([100])
    ys.append([100])
    ts.append([t])
    ps.append([1])
    ev = as_events(np.concatenate(xs), np.concatenate(ys), np.concatenate(ts), np.concatenate(ps))
    return ev, table


def write_drawer_csv(path: Path, table) -> Path:
    path.write_text("index,start,end\n" + "".join(f"{i},{s},{e}\n" for i, (s, e) in enumerate(table)))
    return path


def make_nomniglot_root(
    root: Path, layout: dict, *, compression: str = "none", seed: int = 0, n_per_drawer=12
):
    """A synthetic N-Omniglot root: ``layout = {"background": {alphabet: n_characters}, "evaluation": {...}}``.
    Returns ``{(part, alphabet, character_number): (events, table)}``."""
    rng = np.random.default_rng(seed)
    out, gid = {}, 1
    for part, alphabets in layout.items():
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                folder = root / f"dvs_{part}" / alphabet / f"character{c:02d}"
                ev, table = nomniglot_recording(rng, n_per_drawer=n_per_drawer)
                write_aedat4(folder / f"{gid:04d}.aedat4", ev, compression=compression, packet_size=37)
                write_drawer_csv(folder / f"{gid:04d}.csv", table)
                out[(part, alphabet, c)] = (ev, table)
                gid += 1
    return out


def make_cep_root(root: Path, per_class: int = 4, *, seed: int = 0, images: bool = True, n_events: int = 30):
    """A synthetic CEP-DVS root: ``pathFile.csv`` (a header, then rows ``i img <stem>.jpg 0 <class> ...``:
    the class is the fifth token), ``data/MAT/img/<stem:05d>.mat`` with label ``i % 20`` (classes interleave,
    so the per-class order matters) and, with ``images``, 8 x 8 PNGs ``data/img/<stem:05d>.png`` whose red
    channel is the label. Returns ``{stem: (x, y, ts, p)}`` as written (``p`` in {-1, 1})."""
    from PIL import Image
    from sj_common.data.cepdvs import CEP_CLASSES

    rng = np.random.default_rng(seed)
    n = 20 * per_class
    rows = ["index path file flag class extra"]
    out = {}
    for i in range(n):
        label = i % 20
        rows.append(f"{i} img {i:05d}.jpg 0 {CEP_CLASSES[label]} {label}")
        x, y = rng.integers(0, 240, n_events), rng.integers(0, 180, n_events)
        ts = np.sort(rng.integers(0, 100_000, n_events))
        p = rng.choice([-1, 1], n_events)
        write_cep_mat(root / "data" / "MAT" / "img" / f"{i:05d}.mat", x, y, ts, p)
        out[i] = (x, y, ts, p)
        if images:
            (root / "data" / "img").mkdir(parents=True, exist_ok=True)
            img = np.zeros((8, 8, 3), np.uint8)
            img[..., 0] = label
            Image.fromarray(img).save(root / "data" / "img" / f"{i:05d}.png")
    (root / "pathFile.csv").write_text("\n".join(rows) + "\n")
    return out


def make_gesture_release(root: Path, trials: dict, *, seed: int = 0, n: int = 60):
    """A synthetic original DVS128 Gesture release under ``root/DvsGesture``: ``trials = {"train": [names],
    "test": [names]}`` (e.g. ``user01_fluorescent``); each trial has ``n`` events (t = 1000 + 50 k us, the last
    ones past the 2**31 wrap through the packet's ts overflow when ``name`` ends in ``_led``), a special packet
    first, and a labels csv of 3 gestures (classes 1, 11, 1) cutting [1000, 1500), [1500, 2500), [2500, 3000)
    of the local clock. Returns ``{name: (x, y, t, p)}``."""
    rng = np.random.default_rng(seed)
    folder = root / "DvsGesture"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, names in trials.items():
        (folder / f"trials_to_{split}.txt").write_text("".join(f"{nm}.aedat\n" for nm in names))
        for nm in names:
            x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
            t = 1000 + 50 * np.arange(n)
            overflow = 1 if nm.endswith("_led") else 0
            write_aedat31(folder / f"{nm}.aedat", x, y, t, p, overflow=overflow)
            base = overflow << 31
            rows = [(1, 1000, 1500), (11, 1500, 2500), (1, 2500, 3000)]
            (folder / f"{nm}_labels.csv").write_text(
                "class,startTime_usec,endTime_usec\n"
                + "".join(f"{c},{s + base},{e + base}\n" for c, s, e in rows)
            )
            out[nm] = (x, y, t + base, p)
    return out


def make_omniglot_root(root: Path, layout: dict, size: int = 12) -> None:
    """Torchvision-layout Omniglot PNGs for the characters of ``layout`` (as :func:`make_nomniglot_root`):
    ``omniglot-py/images_<part>/<alphabet>/characterNN/<id>_01.png .. _20.png``, white with one dark pixel."""
    from PIL import Image

    gid = 1
    for part, alphabets in layout.items():
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                folder = root / "omniglot-py" / f"images_{part}" / alphabet / f"character{c:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                for d in range(1, 21):
                    img = np.full((size, size), 255, np.uint8)
                    img[c % size, d % size] = 0
                    Image.fromarray(img, mode="L").save(folder / f"{gid:04d}_{d:02d}.png")
                gid += 1

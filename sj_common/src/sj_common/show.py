"""``sj-common show``: look at an event recording before training on it.

    sj-common show FILE [--T 8] [--out frames.png] [--format auto]

Reads one file with the readers of :mod:`sj_common.data.events` (the ones the data sets use):

* ``.bin``: N-MNIST (34x34 ATIS) or N-Caltech101 (events shifted so min x = min y = 0, as the data set
  does); ``auto`` takes N-MNIST when every event fits the 34x34 sensor;
* ``.aedat``: original CIFAR10-DVS (AER-DAT 2.0), ``.aedat4``: its tonic re-release (128x128);
* ``.npy``: DVS128 Gesture in tonic's layout (``[N, 4]``: x, y, p, t in ms; 128x128),

bins it into ``T`` equal time windows and writes a PNG with one ON/OFF frame per window (ON red, OFF
blue) and the event count per window (:func:`sj_common.plots.plot_event_frames`). Prints one line about
the recording and the path written. An unsupported or unreadable file exits with status 2 and one
``sj-common show: error: ...`` line. Imports are deferred so ``sj-common --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "read_event_file", "FORMATS"]

#: format -> (suffixes, sensor (W, H) or None when it depends on the recording)
FORMATS = {
    "nmnist": ((".bin",), (34, 34)),
    "ncaltech101": ((".bin",), None),
    "cifar10dvs": ((".aedat", ".aedat4"), (128, 128)),
    "gesture": ((".npy", ".aedat"), (128, 128)),  # .aedat of the original release: --format gesture
    "nomniglot": ((".aedat4",), (346, 260)),  # a whole recording (all 20 drawers): --format nomniglot
    "cepdvs": ((".mat",), None),
}
_SUFFIXES = sorted({s for suffixes, _ in FORMATS.values() for s in suffixes})


def _guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return "auto-bin"
    for name, (suffixes, _) in FORMATS.items():
        if suffix in suffixes:
            return name
    raise ValueError(
        f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; expected one of {', '.join(_SUFFIXES)} "
        "(N-MNIST/N-Caltech101 .bin, CIFAR10-DVS .aedat/.aedat4, DVS Gesture .npy, CEP-DVS .mat; "
        "--format gesture / nomniglot for DVS Gesture .aedat / N-Omniglot .aedat4)"
    )


def _dataset_class(name: str):
    """The data set class of :mod:`sj_common.data.events` whose reader and checks apply to format ``name``."""
    from .data import events as E

    return {
        "nomniglot": E.NOmniglot,
        "cepdvs": E.CEPDVS,
        "nmnist": E.NMNIST,
        "ncaltech101": E.NCaltech101,
        "cifar10dvs": E.CIFAR10DVS,
        "gesture": E.DVSGesture,
    }[name]


def read_event_file(path: str | Path, fmt: str = "auto"):
    """``(events, (W, H, 2), format)`` for one recording; ``events`` has :data:`sj_common.data.EVENT_DTYPE`.

    Reads with the data set's own reader and checks (x, y inside the sensor, p in {0, 1}, t sorted, the
    data set's longest duration). Raises ``FileNotFoundError`` (no such file), ``ValueError``
    (unsupported suffix, corrupt content, no events) or ``ImportError`` (a reader's optional package)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"--format: expected 'auto' or one of {sorted(FORMATS)}, got {fmt!r}")
    name = _guess_format(path) if fmt == "auto" else fmt
    if fmt != "auto" and path.suffix.lower() not in FORMATS[fmt][0]:
        raise ValueError(
            f"{path}: --format {fmt} reads {'/'.join(FORMATS[fmt][0])} files, got {path.suffix!r}"
        )
    if name == "auto-bin":  # N-MNIST when every event fits its 34x34 sensor, else N-Caltech101
        name = "nmnist"
        try:
            return _read_as(path, name)
        except ValueError as e:
            if "is outside the sensor range" not in str(e):
                raise
            name = "ncaltech101"
    return _read_as(path, name)


def _read_as(path: Path, name: str):
    cls = _dataset_class(name)
    ev = cls.read_file(path)  # ValueError naming the file for anything unreadable or out of range
    sensor = cls.file_sensor_size or cls.sensor_size or (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1, 2)
    return ev, tuple(int(s) for s in sensor), name


def _show(args) -> int:
    if args.T < 1:
        raise ValueError(f"--T: expected a positive number of time bins, got {args.T}")
    ev, sensor, fmt = read_event_file(args.file, args.format)
    from .plots import plot_event_frames

    out = Path(args.out) if args.out else Path(f"{Path(args.file).stem}_frames.png")
    on = int((ev["p"] == 1).sum())
    dur_ms = (int(ev["t"].max()) - int(ev["t"].min())) / 1e3
    label = f"{Path(args.file).name} ({fmt})"
    plot_event_frames({label: ev}, T=args.T, sensor_size=sensor, path=out, title=label)
    print(
        f"{args.file}: {fmt}, {len(ev)} events ({on} ON / {len(ev) - on} OFF) over {dur_ms:.1f} ms, "
        f"sensor {sensor[0]}x{sensor[1]}; wrote {out} ({args.T} frames)"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sj-common", description="sj-common tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "show",
        help="render an event file as ON/OFF frames",
        description=(
            "Render an event recording as ON/OFF frames (ON red, OFF blue) over T equal time windows, with\n"
            "the event count per window. Formats: N-MNIST / N-Caltech101 .bin (auto: N-MNIST when every event\n"
            "fits 34x34), CIFAR10-DVS .aedat (AER-DAT 2.0) / .aedat4, DVS128 Gesture .npy (tonic's [N, 4]).\n"
            "Read and checked as the data sets do; an unsupported or corrupt file exits 2 with one line.\n\n"
            "  sj-common show sample.bin --T 8 --out frames.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help=f"an event recording ({', '.join(_SUFFIXES)})")
    p.add_argument("--T", type=int, default=8, help="number of time bins (frames), default 8")
    p.add_argument("--out", default=None, help="PNG to write (default: <file stem>_frames.png)")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="force a format")
    args = parser.parse_args(argv)
    try:
        return _show(args)
    except (ValueError, FileNotFoundError, ImportError) as e:
        msg = " ".join(str(e).split())  # one line
        print(f"sj-common show: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Event-camera data sets read from a local root (never downloaded).

Data sets: N-MNIST, N-Caltech101, CIFAR10-DVS, DVS128 Gesture, and from their own modules N-Omniglot
(:mod:`sj_common.data.nomniglot`) and CEP-DVS (:mod:`sj_common.data.cepdvs`).

Why not tonic's data set classes directly: tonic 1.7 starts a download whenever its (strict) file check
fails, lists N-Caltech101 / CIFAR10-DVS files in file-system order and gives N-Caltech101 string labels.
So each class here lists the files itself (sorted, labels from the folder layout, no event is read), checks
the layout first and raises :class:`FileNotFoundError` naming the expected paths, and reads samples with
tonic's readers (``tonic.io.read_mnist_file`` for N-MNIST/N-Caltech101 ``.bin``, ``tonic.io.read_aedat4``
for the CIFAR10-DVS re-release, tonic's ``.npy`` layout for DVS128 Gesture, SpikingJelly's AEDAT 3.1
reader for its original release). The original CIFAR10-DVS
``.aedat`` files (AER-DAT 2.0) have no tonic 1.7 reader; :func:`read_cifar10dvs_aedat` decodes them.

tonic is GPL-3.0 and optional (``pip install 'sj-common[events]'``): it is imported only when a sample is
read or framed. Listing a data set (``len``, ``.targets``) needs no tonic.

Every sample is a numpy structured array with fields ``x, y, t, p`` (all int64, ``t`` in microseconds,
``p`` in {0, 1}) -- the dtype of ``tonic.datasets.NMNIST`` -- so any tonic transform applies.

Every read is checked (:func:`sj_common.data.eventarray.check_events`, vectorised): x and y inside the
sensor, p in {0, 1}, t finite and non-decreasing (none of these formats interleaves timestamps), and for
N-MNIST / N-Caltech101 at most 1 s after the first event (``max_duration_us``). A violation, an unreadable
file, or a transform (framing) that fails raises :class:`ValueError` naming the file; for bad events also
the field and the first offending index. No other exception type leaves ``dataset[i]`` for a bad file
(a fuzz test of a few hundred corrupted files holds this), except ImportError for a missing optional package.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .cepdvs import CEPDVS
from .eventarray import EVENT_DTYPE, as_events, check_event_columns, check_events
from .eventfolder import (  # noqa: F401  (re-exported: the readers' shared parts)
    _NO_DOWNLOAD,
    _check_split,
    _EventFolder,
    _find_dir,
    _list_class_files,
    _natural_key,
    _tonic,
)
from .frames import ToFrames
from .gesture_aedat import GESTURE_AEDAT_LAYOUT, list_gesture_trials, read_gesture_aedat, read_gesture_labels
from .nomniglot import NOmniglot
from .splits import train_test_split as _train_test

__all__ = [
    "EVENT_DTYPE",
    "EVENT_DATASETS",
    "CEPDVS",
    "CIFAR10DVS",
    "DVSGesture",
    "NCaltech101",
    "NMNIST",
    "NOmniglot",
    "event_dataset",
    "read_cifar10dvs_aedat",
]


def _read_bin(path: Path) -> np.ndarray:
    """N-MNIST / N-Caltech101 ``.bin`` (5 bytes per event) through tonic's reader."""
    size = path.stat().st_size
    if size % 5:
        raise ValueError(f"size {size} B is not a multiple of 5 (N-MNIST/N-Caltech101 .bin: 5 B per event)")
    tonic = _tonic()
    ev = tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE)
    return np.asarray(ev, dtype=EVENT_DTYPE)


_NMNIST_LAYOUT = """  root/NMNIST/Train/0/*.bin ... root/NMNIST/Train/9/*.bin  (tonic's layout; also root/Train/...)
  root/NMNIST/Test/0/*.bin  ... root/NMNIST/Test/9/*.bin   (N-MNIST's Train.zip / Test.zip unpacked)"""


class NMNIST(_EventFolder):
    """N-MNIST (Orchard et al. 2015): 60,000 train / 10,000 test recordings, 34x34 ATIS, official split.

    Args:
        root: folder holding ``NMNIST/Train`` and ``NMNIST/Test`` (tonic's layout) or ``Train``/``Test``.
        split: "train" or "test".
        transform: applied to the structured event array (e.g. ``tonic.transforms.ToFrame``).
    Item: (events structured array [N] with fields x, y, t, p, label int).

    Events are checked on reading (:meth:`read_events`): x, y in [0, 34), t non-decreasing and at most
    :attr:`max_duration_us` = 1 s after the first event (every recording is three 100 ms saccades,
    ~0.3 s; the format's 23-bit timestamps reach 8.39 s, so one flipped high bit is caught).
    """

    name = "N-MNIST"
    sensor_size = (34, 34, 2)
    max_duration_us = 1_000_000  # three 100 ms saccades (~0.3 s); 1 s leaves a 3x margin
    class_names = [
        f"{d} - {w}" for d, w in enumerate("zero one two three four five six seven eight nine".split())
    ]

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        super().__init__(root, split, transform)
        sub = "Train" if self.split == "train" else "Test"
        folder = _find_dir([self.root / "NMNIST" / sub, self.root / sub], self.name, _NMNIST_LAYOUT)
        _, self.files, self.targets = _list_class_files(
            folder, (".bin",), [str(d) for d in range(10)], _NMNIST_LAYOUT
        )
        self.classes = list(self.class_names)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        return _read_bin(path)


_NCALTECH_LAYOUT = """  root/NCALTECH101/Caltech101/<class>/image_0001.bin  (tonic's layout; also root/Caltech101/<class>/
  or root/<class>/): 101 class folders (BACKGROUND_Google, Faces_easy, ..., yin_yang), 8,709 .bin files"""


class NCaltech101(_EventFolder):
    """N-Caltech101 (Orchard et al. 2015): 8,709 recordings, 101 classes, no official split.

    Split (the transfer reference's): per class ``round(train_fraction * n_c)`` train, the rest test; with the
    full data set and 0.9 that is 7,839 / 870. ``seed`` (default 0) shuffles each class first; ``seed=None``
    takes the first files in sorted order (the reference's positional split, made file-system independent:
    the reference listed files unsorted). Classes are the sorted folder names (class 0 BACKGROUND_Google).
    Events are shifted so that min x = min y = 0, as tonic does; the sensor size varies per sample
    (``sensor_size`` is None), so frames need a target ``size`` (see :func:`event_dataset`).
    """

    name = "N-Caltech101"
    sensor_size = None
    max_duration_us = 1_000_000  # recorded as N-MNIST: three 100 ms saccades (~0.3 s)

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        train_fraction: float = 0.9,
        seed: int | None = 0,
    ):
        super().__init__(root, split, transform)
        r = self.root
        folder = _find_dir(
            [r / "NCALTECH101" / "Caltech101", r / "Caltech101", r], self.name, _NCALTECH_LAYOUT
        )
        self.classes, self.files, self.targets = _list_class_files(folder, (".bin",), None, _NCALTECH_LAYOUT)
        train, test = _train_test(self.targets, train_fraction, seed)
        self._subset(train if self.split == "train" else test)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        ev = _read_bin(path)
        if len(ev):
            ev["x"] -= ev["x"].min()
            ev["y"] -= ev["y"].min()
        return ev


def read_cifar10dvs_aedat(path) -> np.ndarray:
    """Decode an original CIFAR10-DVS ``.aedat`` file (AER-DAT 2.0: ``#`` header lines, then big-endian
    uint32 (address, timestamp) pairs; address bit 0 polarity, bits 1-7 x, bits 8-14 y).

    tonic 1.7 reads only the AEDAT4 re-release, so this small decoder is ours. The output orientation is
    SpikingJelly's and the transfer reference's: x <- 127 - y_raw, y <- 127 - x_raw, p <- 1 - p_raw.
    Returns a structured array with :data:`EVENT_DTYPE`.

    Checks what the format allows, so that garbage after a header is refused (ValueError naming the file,
    the field and the first offending index): address bits 16-31 must be 0 (a DVS128 address has 16 bits;
    bit 15, jAER's external-event flag, is ignored as SpikingJelly does), and timestamps must not decrease.
    A wrap of the 32-bit microsecond counter (a drop by more than 2**31) is unwrapped (+2**32), not refused.
    """
    path = Path(path)
    data = path.read_bytes()
    pos, version = 0, None
    while data[pos : pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: header line without end")
        line = data[pos:end].decode("latin-1").strip()
        if line.startswith("#!AER-DAT"):
            version = line[len("#!AER-DAT") :]
        pos = end + 1
    if version is not None and not version.startswith("2"):
        raise ValueError(f"{path}: AER-DAT version {version}; CIFAR10-DVS .aedat files are AER-DAT 2.0")
    body = data[pos:]
    if len(body) % 8:
        raise ValueError(
            f"{path}: event data of {len(body)} B is not a whole number of 8-byte (address, t) pairs"
        )
    words = np.frombuffer(body, dtype=">u4").astype(np.int64)
    addr, t = words[0::2], words[1::2]
    high = addr >> 16
    if high.any():
        i = int(np.flatnonzero(high)[0])
        raise ValueError(
            f"{path}: invalid events: field 'address' at index {i} (the first bad one) has bits 16-31 set "
            f"({int(addr[i]):#010x}; a DVS128 address has 16 bits): not a CIFAR10-DVS event stream"
        )
    if len(t) > 1:
        wraps = np.diff(t) < -(2**31)
        if wraps.any():
            t = t + np.concatenate([[0], np.cumsum(wraps)]) * 2**32
    x_raw, y_raw, p_raw = (addr >> 1) & 0x7F, (addr >> 8) & 0x7F, addr & 1
    ev = as_events(127 - y_raw, 127 - x_raw, t, 1 - p_raw)
    return check_events(ev, CIFAR10DVS.sensor_size, source=str(path))


def _read_cifar10dvs_aedat4(path: Path) -> np.ndarray:
    tonic = _tonic()
    try:
        import aedat  # noqa: F401  (tonic.io.read_aedat4 needs it; tonic does not pull it in)
    except ImportError as e:
        raise ImportError(
            f"{path} is AEDAT4 (tonic's CIFAR10-DVS re-release); reading it needs the 'aedat' package: "
            "pip install aedat"
        ) from e
    raw = tonic.io.read_aedat4(str(path))
    x = raw["x"].astype(np.int64)
    y = raw["y"].astype(np.int64)
    p = raw["on"].astype(np.int64) if "on" in raw.dtype.names else raw["p"].astype(np.int64)
    # same remap as the original files (the transfer reference applies it to tonic's CIFAR10DVS output)
    return as_events(127 - y, 127 - x, raw["t"].astype(np.int64), 1 - p)


_CIFAR10DVS_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
_CIFAR10DVS_LAYOUT = """  root/CIFAR10DVS/<class>/*.aedat4  (tonic 1.7's re-release, class zips unpacked; also root/<class>/)
  or root/<class>/cifar10_<class>_<i>.aedat  (the original release, AER-DAT 2.0)
  with the 10 classes airplane automobile bird cat deer dog frog horse ship truck, 1,000 files each"""


class CIFAR10DVS(_EventFolder):
    """CIFAR10-DVS (Li et al. 2017): 10,000 recordings (1,000 per class), 128x128 DVS, no official split.

    Split: per class ``round(train_fraction * n_c)`` train (900 / 100 for the full set), the rest test,
    seeded shuffle per class (``seed=None``: first files in natural order, the reference's split).
    Reads the original ``.aedat`` files (:func:`read_cifar10dvs_aedat`) or tonic's ``.aedat4`` re-release
    (``tonic.io.read_aedat4``, needs ``pip install aedat``); both give the same orientation (see there).
    """

    name = "CIFAR10-DVS"
    sensor_size = (128, 128, 2)

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        train_fraction: float = 0.9,
        seed: int | None = 0,
    ):
        super().__init__(root, split, transform)
        r = self.root
        cands = [r / "CIFAR10DVS", r]
        folder = next((c for c in cands if (c / "airplane").is_dir()), None)
        if folder is None:
            tried = "\n  ".join(str(c / "airplane") for c in cands)
            raise FileNotFoundError(
                f"{self.name}: no class folder found; looked for\n  {tried}\nExpected layout:\n"
                f"{_CIFAR10DVS_LAYOUT}\n{_NO_DOWNLOAD}"
            )
        self.classes, self.files, self.targets = _list_class_files(
            folder, (".aedat", ".aedat4"), _CIFAR10DVS_CLASSES, _CIFAR10DVS_LAYOUT
        )
        train, test = _train_test(self.targets, train_fraction, seed)
        self._subset(train if self.split == "train" else test)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        if path.suffix == ".aedat4":
            return _read_cifar10dvs_aedat4(path)
        return read_cifar10dvs_aedat(path)


def _load_npy(path: Path) -> np.ndarray:
    """``np.load`` after checking the header against the file size: a corrupted header cannot make numpy
    allocate more than the file holds, and object arrays (pickles) are never loaded."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version} is not 1.0 or 2.0 (what np.save writes)")
        data = path.stat().st_size - f.tell()
    if dtype.hasobject:
        raise ValueError(f"expected a numeric array, got dtype {dtype} (object arrays are not loaded)")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need != data:
        raise ValueError(
            f"the header says shape {shape} of {dtype} ({need} B) but the file holds {data} B of data"
        )
    return np.load(path, allow_pickle=False)


_GESTURE_LAYOUT = (
    """  root/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy ... 10.npy  (tonic 1.7's preprocessed
  root/DVSGesture/ibmGestureTest/user24_fluorescent/*.npy              release; also root/ibmGestureTrain/)
  each <label>.npy an [N, 4] array of (x, y, p, t in ms), label 0..10
  or the original IBM release (read through SpikingJelly's AEDAT 3.1 reader):
"""
    + GESTURE_AEDAT_LAYOUT
)


class DVSGesture(_EventFolder):
    """DVS128 Gesture (Amir et al. 2017), tonic's preprocessed layout: one ``<label>.npy`` per gesture,
    users 1-23 train / 24-29 test (official split), 11 classes, 128x128 DVS.

    A root holding only the original IBM release (``DvsGesture/*.aedat`` + ``*_labels.csv`` + the trials
    lists) is read through SpikingJelly's AEDAT 3.1 reader, one item per labels-csv row, as SpikingJelly
    cuts it (:mod:`sj_common.data.gesture_aedat`; 1,176 / 288 samples; ``.release`` is then "original",
    else "tonic"). ``.users`` and ``.lighting`` give each sample's user number and lighting condition.
    """

    name = "DVS128 Gesture"
    sensor_size = (128, 128, 2)
    class_names = [
        "Hand clapping",
        "Right hand wave",
        "Left hand wave",
        "Right arm cw",
        "Right arm ccw",
        "Left arm cw",
        "Left arm ccw",
        "Arm roll",
        "Air drums",
        "Air guitar",
        "Other gestures",
    ]

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        super().__init__(root, split, transform)
        r = self.root
        sub = "ibmGestureTrain" if self.split == "train" else "ibmGestureTest"
        self.release = "tonic"
        self.classes = list(self.class_names)
        for orig in (r / "DvsGesture" / "trials_to_train.txt", r / "trials_to_train.txt"):
            if orig.is_file() and not (r / "DVSGesture" / sub).is_dir() and not (r / sub).is_dir():
                self._list_original(orig.parent)
                return
        folder = _find_dir([r / "DVSGesture" / sub, r / sub], self.name, _GESTURE_LAYOUT)
        users = sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"user\d+_.+", p.name))
        if not users:
            raise FileNotFoundError(
                f"no user<NN>_<lighting> folders in {folder}\nExpected layout:\n{_GESTURE_LAYOUT}"
            )
        files, targets, self.users, self.lighting = [], [], [], []
        for u in users:
            for f in sorted(u.glob("*.npy"), key=_natural_key):
                if not f.stem.isdigit() or not 0 <= int(f.stem) < len(self.class_names):
                    raise ValueError(f"{self.name}: file name {f} is not <label>.npy with label 0..10")
                files.append(f)
                targets.append(int(f.stem))
                user, light = u.name.split("_", 1)
                self.users.append(int(user[4:]))
                self.lighting.append(light)
        if not files:
            raise FileNotFoundError(f"no .npy files under {folder}\nExpected layout:\n{_GESTURE_LAYOUT}")
        self.files, self.targets = files, np.asarray(targets, dtype=np.int64)

    def _list_original(self, folder: Path) -> None:
        """One item per labels-csv row of the split's trials (the csv files are read, no event)."""
        self.release = "original"
        self.files, self.label_files, self.slices, self.users, self.lighting = [], [], [], [], []
        targets = []
        for aedat, csv in list_gesture_trials(folder, self.split):
            user, light = aedat.stem.split("_", 1)
            for k, (label, start, end) in enumerate(read_gesture_labels(csv)):
                self.files.append(aedat)
                self.label_files.append((csv, k + 2))  # the csv and the item's line in it
                self.slices.append((int(start), int(end)))
                targets.append(int(label))
                self.users.append(int(user[4:]) if user[4:].isdigit() else -1)
                self.lighting.append(light)
        self.targets = np.asarray(targets, dtype=np.int64)

    def _read_item(self, index: int) -> np.ndarray:
        if self.release != "original":
            return super()._read_item(index)
        ev = self._read_checked(self.files[index], self.max_duration_us)  # the whole trial, checked
        start, end = self.slices[index]
        ev = ev[(ev["t"] >= start) & (ev["t"] < end)]
        if len(ev) == 0:
            csv, line = self.label_files[index]
            raise ValueError(
                f"{self.name}: {csv} line {line}: the gesture [{start}, {end}) us holds no event of "
                f"{self.files[index]}"
            )
        return ev

    @classmethod
    def _read(cls, path: Path) -> np.ndarray:
        if path.suffix == ".aedat":
            return read_gesture_aedat(path)
        arr = _load_npy(path)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"expected an [N, 4] array (x, y, p, t_ms), got shape {arr.shape}")
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"expected a numeric [N, 4] array (x, y, p, t_ms), got dtype {arr.dtype}")
        # as tonic: columns x, y, p, t in ms -> microseconds; checked before the cast to int64, which would
        # turn NaN or an out-of-range value into -2**63 silently
        check_event_columns(
            arr[:, 0],
            arr[:, 1],
            arr[:, 3].astype(np.float64) * 1000,
            arr[:, 2],
            cls.sensor_size,
            source=f"{cls.name}: {path}",
        )
        t_us = arr[:, 3] * 1000 if arr.dtype.kind == "f" else arr[:, 3].astype(np.int64) * 1000
        return as_events(arr[:, 0], arr[:, 1], t_us.astype(np.int64), arr[:, 2])


class _Compose:
    def __init__(self, *fns):
        self.fns = [f for f in fns if f is not None]

    def __call__(self, x):
        for f in self.fns:
            x = f(x)
        return x


EVENT_DATASETS: dict[str, type] = {
    "nmnist": NMNIST,
    "ncaltech101": NCaltech101,
    "cifar10dvs": CIFAR10DVS,
    "dvsgesture": DVSGesture,
    "nomniglot": NOmniglot,
    "cepdvs": CEPDVS,
}


def event_dataset(
    name: str,
    root,
    split: str = "train",
    T: int | None = None,
    *,
    transform: Callable | None = None,
    size: tuple[int, int] | int | None = None,
    frame_transform: Callable | None = None,
    bins: str = "tonic",
    resize: str = "bilinear",
    normalize: str | None = None,
    **kwargs,
) -> Dataset:
    """Build an event data set by name from a local root.

    Args:
        name: "nmnist", "ncaltech101", "cifar10dvs", "dvsgesture", "nomniglot", "cepdvs"; case, "-" and "_" are
            ignored ("N-MNIST", "CIFAR10_DVS" work).
        root: local folder (see each class for the layout). Nothing is downloaded.
        split: "train" or "test".
        T: None -> items are (events structured array, label). An int -> items are (frames float32
            tensor [T, 2, H, W], label) via :class:`sj_common.data.frames.ToFrames`.
        transform: applied to the events first (e.g. a tonic transform such as Denoise).
        size: (H, W) to resize frames to (needed for N-Caltech101); only with T.
        frame_transform: applied to the [T, 2, H, W] tensor last (e.g. a random crop); only with T.
        bins: "tonic" (ToFrame's time bins, default: the transfer reference's framing) or "cover" (every
            event counted); see :func:`sj_common.data.frames.events_to_frames`.
        resize: how frames are resized to ``size``: "bilinear" (``align_corners=True``, the transfer
            reference's) or "sum" (every event still counted once); see :class:`ToFrames`.
        normalize: None (event counts) or "max" (each frame and polarity scaled to a maximum of 1, the
            N-Omniglot reference's ``frequency`` frames); see :class:`ToFrames`.
        **kwargs: passed to the class (``seed``, ``train_fraction`` for N-Caltech101 / CIFAR10-DVS;
            ``subset``, ``train_drawers``, ``crop`` for N-Omniglot; ``train_portion``, ``test_portion``,
            ``time_scale``, ``sensor_size`` for CEP-DVS).
    """
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key == "dvs128gesture":
        key = "dvsgesture"
    if key not in EVENT_DATASETS:
        raise ValueError(f"unknown event data set {name!r}; expected one of {sorted(EVENT_DATASETS)}")
    cls = EVENT_DATASETS[key]
    if T is None:
        if (
            size is not None
            or frame_transform is not None
            or bins != "tonic"
            or resize != "bilinear"
            or normalize
        ):
            raise ValueError("size, frame_transform, bins, resize and normalize need T (frames); got T=None")
        return cls(root, split, transform, **kwargs)
    ds = cls(root, split, None, **kwargs)
    # the instance's sensor (N-Omniglot's depends on its crop argument)
    ds.transform = _Compose(
        transform,
        ToFrames(ds.sensor_size, T, bins=bins, size=size, resize=resize, normalize=normalize),
        frame_transform,
    )
    return ds

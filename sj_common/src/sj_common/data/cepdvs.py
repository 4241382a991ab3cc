"""CEP-DVS (the transfer paper's CEP-DVS rows): 10,000 event recordings of CIFAR-100 images in the 20
superclasses, with the 10,000 static images, read from a local root (never downloaded); the layout and fields are below. No maintained library reads it (the reference used its
authors' private tonic fork), so this module lists the files and reads the ``.mat`` files with
``scipy.io.loadmat``.

Layout::

    root/pathFile.csv               a header line, then one row per sample; row i (0-based) <-> stem i,
                                    the label name is the row's fifth whitespace-separated token
    root/data/MAT/img/<stem>.mat    10,000 event samples: variables x, y, ts, p (p in {-1, 1})
    root/data/img/<stem>.<ext>      10,000 static images (``static_dataset("cepdvs")``), paired by class

Facts the notes mark as inferred are parameters whose defaults are the reference's behaviour:
``time_scale`` (microseconds per ``ts`` unit; 1: ``ts`` taken as it is, as the reference; framing in
``T`` bins over each sample's own duration does not depend on it) and ``sensor_size`` (None: each
sample's own box, max x + 1 by max y + 1, as the reference's ``sensor_size=None``; a third-party loader
assumes 240 x 180: ``sensor_size=(240, 180, 2)`` checks every event against it).

Classes: the 20 CIFAR-100 superclasses in their usual order (:data:`CEP_CLASSES`). Split, the reference's:
per class, samples in stem order, the first ``round(train_portion * n_c)`` train (250 of 500 at 0.5), the
next ``round(test_portion * n_c)`` test (100 at 0.2: samples 250..349), the rest unused. The reference moves
its test window with its train ratio; here ``train_ratio`` subsets are taken inside the train part and
the test set stays fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .eventarray import as_events, check_event_columns
from .eventfolder import _NO_DOWNLOAD, EventFolder

__all__ = ["CEPDVS", "CEP_CLASSES", "read_cep_labels", "read_cep_mat", "cep_split"]

#: The 20 CIFAR-100 superclasses, in their usual order: label = index.
CEP_CLASSES = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
]

CEP_LAYOUT = """  root/pathFile.csv             (a header line, then one row per sample; row i <-> stem i; label = 5th token)
  root/data/MAT/img/<stem>.mat  (event samples: variables x, y, ts, p)
  root/data/img/<stem>.<jpg|png> (static images, for static_dataset("cepdvs"))"""


def read_cep_labels(csv_path) -> np.ndarray:
    """``pathFile.csv`` -> int64 labels (index into :data:`CEP_CLASSES`), one per row after the header, in
    row order (row i labels stem i). A row whose fifth whitespace-separated token is not one of the 20 class
    names is a ValueError naming the file and the line."""
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"CEP-DVS: missing {path}\nExpected layout:\n{CEP_LAYOUT}\n{_NO_DOWNLOAD}")
    index = {c: i for i, c in enumerate(CEP_CLASSES)}
    labels = []
    lines = path.read_text(errors="replace").splitlines()
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        tokens = line.split()
        name = tokens[4] if len(tokens) >= 5 else None
        if name not in index:
            raise ValueError(
                f"CEP-DVS: {path} line {k}: the fifth whitespace-separated token must be one of the 20 "
                f"superclasses ({CEP_CLASSES[0]} ... {CEP_CLASSES[-1]}), got {name!r} in {line[:100]!r}"
            )
        labels.append(index[name])
    if not labels:
        raise ValueError(f"CEP-DVS: {path} holds no sample row after its header line")
    return np.asarray(labels, dtype=np.int64)


def read_cep_mat(path, time_scale: int = 1) -> np.ndarray:
    """One CEP-DVS ``.mat``: ``x, y, ts, p`` squeezed, checked to be finite integers, cast to int64, ``p``
    -1 -> 0 (1 = ON), ``t = ts * time_scale``. Unchecked otherwise (the data set checks the events)."""
    from scipy.io import loadmat

    path = Path(path)
    mat = loadmat(str(path))
    missing = [k for k in ("x", "y", "ts", "p") if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"variables {missing} missing (found {found}); a CEP-DVS sample holds x, y, ts, p")
    cols = {}
    for k in ("x", "y", "ts", "p"):
        c = np.asarray(mat[k]).squeeze()
        if c.ndim == 0:
            c = c.reshape(1)
        if c.ndim != 1 or c.dtype.kind not in "iubf":
            raise ValueError(f"variable {k!r} must be a numeric vector, got shape {c.shape} of {c.dtype}")
        cols[k] = c
    p = cols["p"]
    # checked before the int64 cast, which would turn NaN or 0.5 into something else silently
    check_event_columns(
        cols["x"], cols["y"], cols["ts"].astype(np.float64) * time_scale, np.where(p == -1, 0, p), None,
        source=str(path),
    )  # fmt: skip
    for k in ("x", "y", "p"):  # an int64 cast of a larger value would wrap silently
        big = np.abs(cols[k].astype(np.float64)) > 2**31
        if big.any():
            i = int(big.argmax())
            raise ValueError(f"invalid events: field {k!r} at index {i} (the first bad one) is {cols[k][i]}")
    p = cols["p"].astype(np.int64)
    p[p == -1] = 0
    t = cols["ts"].astype(np.int64) * int(time_scale)
    return as_events(cols["x"].astype(np.int64), cols["y"].astype(np.int64), t, p)


def cep_split(
    targets: np.ndarray, train_portion: float, test_portion: float
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's per-class positional split: per class (samples in the given order) the first
    ``round(train_portion * n_c)`` train, the next ``round(test_portion * n_c)`` test."""
    for name, v in (("train_portion", train_portion), ("test_portion", test_portion)):
        if isinstance(v, bool) or not 0.0 < float(v) < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {v!r}")
    if train_portion + test_portion > 1.0 + 1e-9:
        raise ValueError(f"train_portion + test_portion must be <= 1, got {train_portion} + {test_portion}")
    train, test = [], []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        n_tr, n_te = round(train_portion * len(idx)), round(test_portion * len(idx))
        train.append(idx[:n_tr])
        test.append(idx[n_tr : n_tr + n_te])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def list_stems(folder: Path, suffixes: tuple[str, ...]) -> list[tuple[int, Path]]:
    """``(int(stem), path)`` of the files with an integer stem, in numeric order (the reference sorted
    ``.mat`` names as strings, "10" before "2")."""
    out = [
        (int(p.stem), p)
        for p in folder.iterdir()
        if p.suffix.lower() in suffixes and re.fullmatch(r"\d+", p.stem)
    ]
    return sorted(out)


def labelled_stems(root: Path, folder: Path, suffixes: tuple[str, ...], what: str):
    """Files of ``folder`` with their labels from ``root/pathFile.csv``: ``(paths, targets)``, stem order."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CEP-DVS: missing folder {folder}\nExpected layout:\n{CEP_LAYOUT}\n{_NO_DOWNLOAD}"
        )
    csv = root / "pathFile.csv"
    labels = read_cep_labels(csv)
    stems = list_stems(folder, suffixes)
    if not stems:
        raise FileNotFoundError(
            f"CEP-DVS: no {what} <stem>{'/'.join(suffixes)} file in {folder}\nExpected layout:\n{CEP_LAYOUT}"
        )
    beyond = [p for s, p in stems if s >= len(labels)]
    if beyond:
        raise ValueError(
            f"CEP-DVS: {beyond[0]} has no label: {csv} has {len(labels)} sample rows (stems 0..{len(labels) - 1})"
        )
    return [p for _, p in stems], labels[[s for s, _ in stems]]


class CEPDVS(EventFolder):
    """CEP-DVS event samples (``data/MAT/img/<stem>.mat``), 20 classes, the reference's per-class split.

    Args:
        root: folder holding ``pathFile.csv`` and ``data/MAT/img`` (module docstring).
        split: "train" or "test".
        transform: applied to the events.
        train_portion, test_portion: the split (0.5 and 0.2: 250 / 100 of each class's 500).
        time_scale: microseconds per ``ts`` unit (1, the reference's: ``ts`` as it is) [inferred fact].
        sensor_size: None (each sample's own box, the reference's; frames then need a ``size``) or
            ``(W, H, 2)`` to check events against a fixed sensor [inferred fact].

    Item: (events structured array x, y, t, p int64, label). ``.stems`` gives each item's file number.
    """

    name = "CEP-DVS"
    sensor_size = None

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        train_portion: float = 0.5,
        test_portion: float = 0.2,
        time_scale: int = 1,
        sensor_size: tuple[int, int, int] | None = None,
    ):
        super().__init__(root, split, transform)
        if isinstance(time_scale, bool) or not isinstance(time_scale, int) or time_scale < 1:
            raise ValueError(
                f"time_scale must be a positive int (microseconds per ts unit), got {time_scale!r}"
            )
        if sensor_size is not None and (len(sensor_size) != 3 or min(sensor_size) < 1):
            raise ValueError(f"sensor_size must be None or (W, H, 2), got {sensor_size!r}")
        self.time_scale = time_scale
        self.sensor_size = None if sensor_size is None else tuple(int(s) for s in sensor_size)
        self.classes = list(CEP_CLASSES)
        self.files, self.targets = labelled_stems(
            self.root, self.root / "data" / "MAT" / "img", (".mat",), "event"
        )
        train, test = cep_split(self.targets, train_portion, test_portion)
        self._subset(train if self.split == "train" else test)
        self.stems = [int(p.stem) for p in self.files]

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        return read_cep_mat(path)

    def _read_item(self, index: int) -> np.ndarray:
        return self._read_checked(
            self.files[index],
            self.max_duration_us,
            read=lambda p: read_cep_mat(p, self.time_scale),
            sensor_size=self.sensor_size,
        )

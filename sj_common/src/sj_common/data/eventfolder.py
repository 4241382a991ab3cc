"""The base of the event data sets: a sorted item list with labels, a checked reader, and layout helpers.

:class:`EventFolder` is what every reader of :mod:`sj_common.data.events`, :mod:`sj_common.data.nomniglot` and
:mod:`sj_common.data.cepdvs` builds on: ``.files`` (one path per item), ``.targets``, ``.classes``, and
``read_events`` / ``read_file``, which run the subclass's decoder and then
:func:`sj_common.data.eventarray.check_events`, so that every failure is a :class:`ValueError` naming the
file. A data set whose items are slices of one recording (N-Omniglot drawers, DVS128 Gesture trials)
overrides :meth:`EventFolder._read_item`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .eventarray import check_events

__all__ = ["EventFolder"]

_NO_DOWNLOAD = "Nothing is downloaded: fetch the data set yourself and point root at it."
_TONIC_HINT = "tonic is needed to read event files: pip install 'sj-common[events]' (tonic is GPL-3.0)"


def _tonic():
    try:
        import tonic
    except ImportError as e:  # pragma: no cover - exercised only without tonic
        raise ImportError(_TONIC_HINT) from e
    return tonic


def _natural_key(path: Path):
    # "cifar10_cat_2" before "cifar10_cat_10": a file order that does not depend on the file system
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name)]


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _find_dir(candidates: Sequence[Path], what: str, layout: str) -> Path:
    """Return the first existing candidate folder, or raise naming all of them and the layout."""
    for c in candidates:
        if c.is_dir():
            return c
    tried = "\n  ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"{what}: none of the expected folders exists:\n  {tried}\nExpected layout:\n{layout}\n{_NO_DOWNLOAD}"
    )


def _list_class_files(folder: Path, suffixes: tuple[str, ...], classes: Sequence[str] | None, layout: str):
    """Sorted files per class folder. ``classes`` fixes the expected folder names (all required);
    None takes every sub-folder (sorted). Raises on missing or empty class folders."""
    if classes is None:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise FileNotFoundError(f"no class folders in {folder}\nExpected layout:\n{layout}")
    missing = [c for c in classes if not (folder / c).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"class folder(s) missing in {folder}: {missing[:10]}{' ...' if len(missing) > 10 else ''}"
            f"\nExpected layout:\n{layout}"
        )
    files, targets = [], []
    for label, name in enumerate(classes):
        found = sorted((p for p in (folder / name).iterdir() if p.suffix in suffixes), key=_natural_key)
        if not found:
            raise FileNotFoundError(
                f"class folder {folder / name} holds no {'/'.join(suffixes)} file\nExpected layout:\n{layout}"
            )
        files += found
        targets += [label] * len(found)
    return list(classes), files, np.asarray(targets, dtype=np.int64)


class _EventFolder(Dataset):
    """Base: a sorted file list with labels; ``__getitem__`` reads one file and applies ``transform``."""

    name = ""
    sensor_size: tuple[int, int, int] | None = None  # (W, H, P) as tonic
    #: Longest recording accepted, microseconds (t[i] - t[0]); None: no limit. An instance or subclass may
    #: change it (e.g. ``ds.max_duration_us = None`` for a data set recorded differently).
    max_duration_us: int | None = None
    #: The sensor of a whole file where it differs from an item's (N-Omniglot items are cropped); None: the same.
    file_sensor_size: tuple[int, int, int] | None = None

    def __init__(self, root, split: str, transform: Callable | None):
        if root is None:
            raise FileNotFoundError(f"{self.name}: root is None; pass the folder that holds the data set")
        self.root = Path(root).expanduser()
        self.split = _check_split(split)
        self.transform = transform
        self.files: list[Path] = []
        self.targets = np.zeros(0, dtype=np.int64)
        self.classes: list[str] = []

    def __len__(self) -> int:
        return len(self.files)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def read_file(cls, path: str | Path) -> np.ndarray:
        """One recording in this data set's format, checked as :meth:`read_events` checks it (with the class's
        :attr:`max_duration_us`); needs no root folder (``sj-common show`` reads single files with it)."""
        return cls._read_checked(Path(path), cls.max_duration_us)

    def read_events(self, index: int) -> np.ndarray:
        """The raw events of sample ``index`` (no transform), checked: x / y inside the sensor, p in {0, 1},
        t non-decreasing and within :attr:`max_duration_us` of the first event. Any problem raises
        :class:`ValueError` naming the file (and, for bad events, the field and the first offending index)."""
        return self._read_item(index)

    def _read_item(self, index: int) -> np.ndarray:
        """Item ``index``'s checked events; a data set whose items are slices of a recording overrides it."""
        return self._read_checked(self.files[index], self.max_duration_us)

    @classmethod
    def _read_checked(
        cls,
        path: Path,
        max_duration_us: int | None,
        *,
        read: Callable[[Path], np.ndarray] | None = None,
        sensor_size: tuple | None = None,
    ) -> np.ndarray:
        """``read`` (default ``cls._read``) then the event checks against ``sensor_size`` (default the
        class's file sensor); every failure but ImportError is a ValueError naming the file."""
        try:
            ev = (read or cls._read)(path)
        except ImportError:
            raise
        except ValueError as e:
            if str(path) in str(e):  # already names the file (the event checks): keep it as it is
                raise
            raise ValueError(f"{cls.name}: cannot read {path}: {e}") from e
        except Exception as e:
            raise ValueError(f"{cls.name}: cannot read {path}: {e}") from e
        if len(ev) == 0:
            raise ValueError(f"{cls.name}: {path} holds no events")
        sensor = sensor_size or cls.file_sensor_size or cls.sensor_size or (None, None, 2)
        return check_events(ev, sensor, source=f"{cls.name}: {path}", max_duration_us=max_duration_us)

    def __getitem__(self, index: int):
        ev = self.read_events(index)
        if self.transform is not None:
            try:
                ev = self.transform(ev)
            except ValueError as e:  # framing (or a user transform) refused the events: name the file
                raise ValueError(f"{self.name}: {self.files[index]}: transform failed: {e}") from e
        return ev, int(self.targets[index])

    def _subset(self, keep: np.ndarray) -> None:
        self.files = [self.files[i] for i in keep]
        self.targets = self.targets[keep]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


# the name the readers in events.py have used since the start
EventFolder = _EventFolder

"""Static image data sets read from a local root with torchvision (never downloaded).

MNIST, CIFAR-10, CIFAR-100, Caltech101, Omniglot and ImageNet (class folders). Each class checks the files
torchvision expects *before* building anything and raises :class:`FileNotFoundError` naming them, then
exposes the project's uniform interface: ``.targets`` (np.int64, one label per sample, read without
decoding images), ``.classes`` (list[str]), items ``(image, label)`` where the image is a float32 tensor in
[0, 1] ([C, H, W], ``torchvision.transforms.ToTensor``) unless ``transform`` says otherwise.

What differs from the plain torchvision classes, and why:
- CIFAR: torchvision checks the md5 of all six batch files on every construction and refuses anything
  else; here presence is checked (``verify_md5=True`` restores the md5 check), so that re-packed or
  test-sized batches load too.
- Caltech101: torchvision has no split, drops BACKGROUND_Google and returns some images as grayscale. Here
  images are RGB, ``classes=`` picks and orders the category folders by name (e.g. N-Caltech101's 101
  names, BACKGROUND_Google in, Faces out: a static pool aligned by class name, where the transfer
  reference's class offsets shifted the pairs),
  and the split is the same seeded per-class 9:1 split as N-Caltech101.
- Omniglot: torchvision insists on the downloaded zip files and sorts characters only within an alphabet
  listing; here the unpacked folders are enough, everything is sorted, background and evaluation can be
  joined (1,623 classes, evaluation labels offset by 964, as N-Omniglot), and the split is by drawer:
  the first 15 drawings of each character (sorted file names ``<id>_01.png`` ... ``_20.png``) train, the
  last 5 test (the transfer reference's drawer split).
- ImageNet: ``torchvision.datasets.ImageNet`` needs the devkit archives; here plain ``train/`` and ``val/``
  class folders (``ImageFolder``), with a check that both hold the same classes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

__all__ = [
    "STATIC_DATASETS",
    "CIFAR10",
    "CIFAR100",
    "CEPImages",
    "MNIST",
    "Caltech101",
    "ImageNetFolder",
    "Omniglot",
    "static_dataset",
]

_NO_DOWNLOAD = "Nothing is downloaded: fetch the data set yourself and point root at it."


def _to_tensor():
    from torchvision.transforms import ToTensor

    return ToTensor()


def _root(root, name: str) -> Path:
    if root is None:
        raise FileNotFoundError(f"{name}: root is None; pass the folder that holds the data set")
    return Path(root).expanduser()


def _check_split(split: str, allowed=("train", "test")) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    return split


def _require_files(name: str, files: Sequence[Path], layout: str, hint: str = "") -> None:
    missing = [f for f in files if not f.is_file()]
    if missing:
        lst = "\n  ".join(str(f) for f in missing)
        raise FileNotFoundError(
            f"{name}: missing file(s):\n  {lst}\nExpected layout:\n{layout}\n{hint}{_NO_DOWNLOAD}"
        )


class _StaticBase(Dataset):
    """Uniform interface over a torchvision data set: .targets (np.int64), .classes (list[str])."""

    name = ""

    def __len__(self) -> int:
        return len(self.targets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


class _TorchvisionView(_StaticBase):
    def __getitem__(self, index: int):
        img, _ = self._tv[index]
        return img, int(self.targets[index])


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_LAYOUT = """  root/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte,
  root/MNIST/raw/t10k-images-idx3-ubyte,  t10k-labels-idx1-ubyte   (unpacked idx files, torchvision's layout)"""


class MNIST(_TorchvisionView):
    """MNIST via ``torchvision.datasets.MNIST(download=False)``: 60,000 / 10,000, item [1, 28, 28]."""

    name = "MNIST"

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        from torchvision import datasets

        self.root = _root(root, self.name)
        self.split = _check_split(split)
        raw = self.root / "MNIST" / "raw"
        files = [raw / f for f in _MNIST_FILES[split]]
        gz = [f for f in files if not f.is_file() and f.with_name(f.name + ".gz").is_file()]
        hint = f"Found {[g.name + '.gz' for g in gz]}: gunzip them in place.\n" if gz else ""
        _require_files(self.name, files, _MNIST_LAYOUT, hint)
        try:
            self._tv = datasets.MNIST(
                str(self.root), train=split == "train", transform=transform or _to_tensor(), download=False
            )
        except Exception as e:
            raise ValueError(f"{self.name}: cannot read {files[0]} / {files[1]}: {e}") from e
        self.transform = self._tv.transform
        self.targets = np.asarray(self._tv.targets, dtype=np.int64)
        self.classes = list(self._tv.classes)


def _cifar_class(kind: str):
    """A torchvision CIFAR subclass whose md5 checks are optional (presence is checked beforehand)."""
    from torchvision import datasets

    base = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100

    class _CIFAR(base):
        verify_md5 = False

        def _check_integrity(self) -> bool:
            return super()._check_integrity() if self.verify_md5 else True

        def _load_meta(self) -> None:
            if self.verify_md5:
                return super()._load_meta()
            path = Path(self.root, self.base_folder, self.meta["filename"])
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return _CIFAR


class CIFAR10(_TorchvisionView):
    """CIFAR-10 via ``torchvision.datasets.CIFAR10(download=False)``: 50,000 / 10,000, item [3, 32, 32].

    ``verify_md5=True`` also checks torchvision's md5 sums (off by default: presence is checked).
    """

    name = "CIFAR-10"
    _kind, _folder = "cifar10", "cifar-10-batches-py"
    _files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    _meta = "batches.meta"
    _archive = "cifar-10-python.tar.gz"

    def __init__(
        self, root, split: str = "train", transform: Callable | None = None, *, verify_md5: bool = False
    ):
        self.root = _root(root, self.name)
        self.split = _check_split(split)
        folder = self.root / self._folder
        files = [folder / f for f in self._files[split]] + [folder / self._meta]
        listing = ", ".join(self._files["train"] + self._files["test"] + [self._meta])
        layout = f"  root/{self._folder}/{listing}\n  (the python version, {self._archive}, unpacked in root)"
        _require_files(self.name, files, layout)
        cls = _cifar_class(self._kind)
        cls.verify_md5 = verify_md5
        try:
            self._tv = cls(str(self.root), train=split == "train", transform=transform or _to_tensor())
        except Exception as e:
            raise ValueError(
                f"{self.name}: cannot read the batch files {[str(f) for f in files]}: {e}"
            ) from e
        self.transform = self._tv.transform
        self.targets = np.asarray(self._tv.targets, dtype=np.int64)
        self.classes = list(self._tv.classes)


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels) via ``torchvision.datasets.CIFAR100(download=False)``: 50,000 / 10,000."""

    name = "CIFAR-100"
    _kind, _folder = "cifar100", "cifar-100-python"
    _files = {"train": ["train"], "test": ["test"]}
    _meta = "meta"
    _archive = "cifar-100-python.tar.gz"


def _seeded_split(targets: np.ndarray, train_fraction: float, seed: int | None):
    # the same per-class split as the event data sets (N-Caltech101 / CIFAR10-DVS)
    from .splits import train_test_split

    return train_test_split(targets, train_fraction, seed)


class _ImageFiles(_StaticBase):
    """(path, label) list read with PIL in ``mode``; errors name the file."""

    def __init__(self, samples, classes, transform, mode: str):
        self.samples = samples
        self.targets = np.asarray([s[1] for s in samples], dtype=np.int64)
        self.classes = list(classes)
        self.transform = transform or _to_tensor()
        self.mode = mode

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as im:
                img = im.convert(self.mode)
        except Exception as e:
            raise ValueError(f"{self.name}: cannot read image {path}: {e}") from e
        return self.transform(img), int(label)


_CALTECH_LAYOUT = """  root/caltech101/101_ObjectCategories/<category>/image_0001.jpg  (torchvision's layout;
  also root/101_ObjectCategories/): 102 folders incl. BACKGROUND_Google, 9,145 jpg"""


class Caltech101(_ImageFiles):
    """Caltech101 from ``101_ObjectCategories`` (torchvision's layout), RGB, seeded per-class 9:1 split.

    Args:
        classes: category folder names, in label order. None: torchvision's 101 (sorted folders without
            BACKGROUND_Google). To align with N-Caltech101 pass its class list (``NCaltech101.classes``).
        split: "train", "test" or "all" (no split: a whole static pool).
        train_fraction, seed: per-class ``round(train_fraction * n_c)`` train after a seeded shuffle
            (``seed=None``: first files in sorted order).
    """

    name = "Caltech101"

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        classes: Sequence[str] | None = None,
        train_fraction: float = 0.9,
        seed: int | None = 0,
    ):
        from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

        self.root = _root(root, self.name)
        self.split = _check_split(split, ("train", "test", "all"))
        cands = [self.root / "caltech101" / "101_ObjectCategories", self.root / "101_ObjectCategories"]
        folder = next((c for c in cands if c.is_dir()), None)
        if folder is None:
            tried = "\n  ".join(map(str, cands))
            raise FileNotFoundError(
                f"{self.name}: none of the expected folders exists:\n  {tried}\nExpected layout:\n"
                f"{_CALTECH_LAYOUT}\n{_NO_DOWNLOAD}"
            )
        if classes is None:
            classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "BACKGROUND_Google")
        classes = list(classes)
        missing = [c for c in classes if not (folder / c).is_dir()]
        if missing or not classes:
            raise FileNotFoundError(
                f"{self.name}: category folder(s) missing in {folder}: {missing or 'none found'}\n"
                f"Expected layout:\n{_CALTECH_LAYOUT}"
            )
        samples = make_dataset(
            str(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS, allow_empty=True
        )
        counts = np.bincount([s[1] for s in samples], minlength=len(classes))
        if (counts == 0).any():
            empty = [classes[i] for i in np.flatnonzero(counts == 0)]
            raise FileNotFoundError(f"{self.name}: category folder(s) with no image in {folder}: {empty}")
        super().__init__(samples, classes, transform, "RGB")
        if self.split != "all":
            train, test = _seeded_split(self.targets, train_fraction, seed)
            keep = train if self.split == "train" else test
            self.samples = [self.samples[i] for i in keep]
            self.targets = self.targets[keep]


_OMNIGLOT_LAYOUT = """  root/omniglot-py/images_background/<alphabet>/<character>/<id>_01.png ... _20.png  (964 characters)
  root/omniglot-py/images_evaluation/<alphabet>/<character>/*.png                   (659 characters)
  (torchvision's layout; images_background.zip / images_evaluation.zip unpacked; also root/images_*/)"""


class Omniglot(_ImageFiles):
    """Omniglot characters as classes (labels ``alphabet/character``), grayscale [1, 105, 105].

    Args:
        subset: "all" (background then evaluation: 1,623 classes, evaluation labels + 964, as N-Omniglot),
            "background" (964) or "evaluation" (659).
        split: "train" (first ``train_drawers`` drawings of each character, sorted by file name), "test"
            (the rest) or "all".
        train_drawers: 15 (N-Omniglot's drawers 0-14 / 15-19).
        classes: ``<alphabet>/<character>`` names, in label order, to pick and order the characters by name
            (e.g. ``NOmniglot(...).classes``: static and event classes then pair by name, not by position;
            a name not found in ``subset`` is a FileNotFoundError). None: every character, sorted.
    """

    name = "Omniglot"

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        subset: str = "all",
        train_drawers: int = 15,
        classes: Sequence[str] | None = None,
    ):
        self.root = _root(root, self.name)
        self.split = _check_split(split, ("train", "test", "all"))
        parts = {
            "all": ["background", "evaluation"],
            "background": ["background"],
            "evaluation": ["evaluation"],
        }
        if subset not in parts:
            raise ValueError(f"subset must be 'all', 'background' or 'evaluation', got {subset!r}")
        if not isinstance(train_drawers, int) or train_drawers < 1:
            raise ValueError(f"train_drawers must be a positive int, got {train_drawers!r}")
        self.subset = subset
        found = []
        for part in parts[subset]:
            cands = [self.root / "omniglot-py" / f"images_{part}", self.root / f"images_{part}"]
            folder = next((c for c in cands if c.is_dir()), None)
            if folder is None:
                tried = "\n  ".join(map(str, cands))
                raise FileNotFoundError(
                    f"{self.name}: none of the expected folders exists:\n  {tried}\nExpected layout:\n"
                    f"{_OMNIGLOT_LAYOUT}\n{_NO_DOWNLOAD}"
                )
            chars = sorted(
                c for a in sorted(folder.iterdir()) if a.is_dir() for c in a.iterdir() if c.is_dir()
            )
            if not chars:
                raise FileNotFoundError(f"{self.name}: no <alphabet>/<character> folders in {folder}")
            found += chars
        if classes is not None:
            by_name = {f"{c.parent.name}/{c.name}": c for c in found}
            missing = [n for n in classes if n not in by_name]
            if missing or not classes:
                raise FileNotFoundError(
                    f"{self.name}: {len(missing)} of the {len(classes)} requested characters are not in "
                    f"subset {subset!r} under {self.root}: {missing[:5]}{' ...' if len(missing) > 5 else ''}"
                )
            found = [by_name[n] for n in classes]
        samples, classes = [], []
        for char in found:
            pngs = sorted(char.glob("*.png"))
            if len(pngs) <= train_drawers:
                raise ValueError(
                    f"{self.name}: {char} holds {len(pngs)} png drawings; need more than "
                    f"train_drawers={train_drawers} for a train/test split (Omniglot has 20)"
                )
            label = len(classes)
            classes.append(f"{char.parent.name}/{char.name}")
            keep = {"train": pngs[:train_drawers], "test": pngs[train_drawers:], "all": pngs}[self.split]
            samples += [(str(p), label) for p in keep]
        super().__init__(samples, classes, transform, "L")


class CEPImages(_ImageFiles):
    """CEP-DVS's static images ``root/data/img/<stem>.<jpg|png>``, RGB, labelled by ``root/pathFile.csv``
    as the event samples (:mod:`sj_common.data.cepdvs`), 20 classes in the same order.

    ``split``: "train" / "test" use the event set's per-class split (``train_portion``, ``test_portion``,
    by stem), so that no static partner of a training event is the image of a test recording; "all": every
    image. Partners are drawn by class (the reference indexed them by position, a class mismatch).
    """

    name = "CEP-DVS images"

    def __init__(
        self,
        root,
        split: str = "train",
        transform: Callable | None = None,
        *,
        train_portion: float = 0.5,
        test_portion: float = 0.2,
    ):
        from .cepdvs import CEP_CLASSES, cep_split, labelled_stems

        self.root = _root(root, self.name)
        self.split = _check_split(split, ("train", "test", "all"))
        exts = (".jpg", ".jpeg", ".png", ".bmp")
        files, targets = labelled_stems(self.root, self.root / "data" / "img", exts, "image")
        super().__init__([(str(f), int(t)) for f, t in zip(files, targets)], CEP_CLASSES, transform, "RGB")
        if self.split != "all":
            train, test = cep_split(self.targets, train_portion, test_portion)
            keep = train if self.split == "train" else test
            self.samples = [self.samples[i] for i in keep]
            self.targets = self.targets[keep]


_IMAGENET_LAYOUT = """  root/train/<wnid>/*.JPEG  (1,000 class folders, e.g. n01440764)
  root/val/<wnid>/*.JPEG    (the 50,000 validation images sorted into the same class folders)"""


class ImageNetFolder(_TorchvisionView):
    """ImageNet (or any train/val class-folder set) via ``torchvision.datasets.ImageFolder``.

    split "train" reads ``root/train``, "val" or "test" reads ``root/val``. The validation images must be
    sorted into class folders (ImageFolder cannot read the flat official val folder).
    """

    name = "ImageNet"

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        from torchvision import datasets

        self.root = _root(root, self.name)
        self.split = _check_split(split, ("train", "val", "test"))
        dirs = {"train": self.root / "train", "val": self.root / "val"}
        for d in dirs.values():
            if not d.is_dir():
                raise FileNotFoundError(
                    f"{self.name}: missing folder {d}\nExpected layout:\n{_IMAGENET_LAYOUT}\n{_NO_DOWNLOAD}"
                )
        names = {k: sorted(p.name for p in d.iterdir() if p.is_dir()) for k, d in dirs.items()}
        if not names["val"] and any(p.is_file() for p in dirs["val"].iterdir()):
            raise FileNotFoundError(
                f"{self.name}: {dirs['val']} holds images but no class folders; sort the validation images "
                f"into <wnid>/ folders first.\nExpected layout:\n{_IMAGENET_LAYOUT}"
            )
        if names["train"] != names["val"]:
            only_t = sorted(set(names["train"]) - set(names["val"]))[:5]
            only_v = sorted(set(names["val"]) - set(names["train"]))[:5]
            raise FileNotFoundError(
                f"{self.name}: train/ and val/ class folders differ ({len(names['train'])} vs "
                f"{len(names['val'])}; only in train: {only_t}, only in val: {only_v}): labels would not match"
            )
        d = dirs["train" if split == "train" else "val"]
        try:
            self._tv = datasets.ImageFolder(str(d), transform=transform or _to_tensor())
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{self.name}: {e}\nExpected layout:\n{_IMAGENET_LAYOUT}") from e
        self.transform = self._tv.transform
        self.targets = np.asarray(self._tv.targets, dtype=np.int64)
        self.classes = list(self._tv.classes)


STATIC_DATASETS: dict[str, type] = {
    "mnist": MNIST,
    "cifar10": CIFAR10,
    "cifar100": CIFAR100,
    "caltech101": Caltech101,
    "omniglot": Omniglot,
    "imagenet": ImageNetFolder,
    "cepdvs": CEPImages,
}


def static_dataset(name: str, root, split: str = "train", transform: Callable | None = None, **kwargs):
    """Build a static image data set by name ("mnist", "cifar10", "cifar100", "caltech101", "omniglot",
    "imagenet", "cepdvs"; case, "-" and "_" ignored) from a local root. Nothing is downloaded. ``transform`` maps a
    PIL image to what the item holds (default: ToTensor, float32 [C, H, W] in [0, 1]); ``kwargs`` go to
    the class (e.g. ``classes``/``seed`` for Caltech101, ``subset`` for Omniglot, ``verify_md5`` for CIFAR).
    """
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in STATIC_DATASETS:
        raise ValueError(f"unknown static data set {name!r}; expected one of {sorted(STATIC_DATASETS)}")
    return STATIC_DATASETS[key](root, split, transform, **kwargs)

"""Static data sets from local roots: small files in each on-disk format written here (MNIST idx, CIFAR
python pickles, Caltech101 / Omniglot / ImageNet image folders), splits, and every bad input's error."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sj_common.data.static import (
    CIFAR10,
    STATIC_DATASETS,
    Caltech101,
    ImageNetFolder,
    Omniglot,
    static_dataset,
)

pytestmark = pytest.mark.compat


# ---------------------------------------------------------------- MNIST idx
def write_idx(path: Path, arr: np.ndarray) -> None:
    """idx format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def write_mnist(root: Path, n=12, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    imgs = rng.integers(0, 256, (n, 28, 28))
    labels = np.arange(n) % 10
    write_idx(raw / "train-images-idx3-ubyte", imgs)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", imgs[:4])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:4])
    return imgs, labels


def test_mnist_idx_files(tmp_path):
    imgs, labels = write_mnist(tmp_path)
    ds = static_dataset("MNIST", tmp_path, "train")
    assert len(ds) == 12 and ds.targets.dtype == np.int64 and ds.targets.tolist() == labels.tolist()
    assert ds.classes[0] == "0 - zero"
    x, y = ds[5]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 5
    torch.testing.assert_close(x[0], torch.tensor(imgs[5] / 255.0, dtype=torch.float32))
    assert len(static_dataset("mnist", tmp_path, "test")) == 4


def test_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte"):
        static_dataset("mnist", tmp_path / "none", "train")
    write_mnist(tmp_path)
    f = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    f.rename(f.with_name(f.name + ".gz"))
    with pytest.raises(FileNotFoundError, match="gunzip"):
        static_dataset("mnist", tmp_path, "test")
    f.with_name(f.name + ".gz").rename(f)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*train-labels-idx1-ubyte"):
        static_dataset("mnist", tmp_path, "train")


# ---------------------------------------------------------------- CIFAR pickles
def write_cifar10(root: Path, per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8)  # R plane, G plane, B plane
        labels = rng.integers(0, 10, per_batch).tolist()
        rows[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    return rows


def test_cifar10_pickle_batches(tmp_path):
    rows = write_cifar10(tmp_path)
    ds = static_dataset("cifar-10", tmp_path, "train")
    assert len(ds) == 15 and ds.classes[3] == "cat"
    data, labels = rows["data_batch_2"]
    assert ds.targets[3:6].tolist() == labels
    x, y = ds[4]  # batch 2, row 1
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == labels[1]
    expect = torch.tensor(data[1].reshape(3, 32, 32) / 255.0, dtype=torch.float32)
    torch.testing.assert_close(x, expect)
    te = CIFAR10(tmp_path, "test")
    assert te.targets.tolist() == rows["test_batch"][1]
    # torchvision's md5 check, on request, refuses the hand-made batches
    with pytest.raises(ValueError, match="cifar-10-batches-py"):
        CIFAR10(tmp_path, "train", verify_md5=True)


def test_cifar100_pickles_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 5), ("test", 2)):
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                    "fine_labels": [99, 0, 1, 2, 3][:n],
                },
                f,
            )
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    ds = static_dataset("cifar100", tmp_path, "train")
    assert ds.targets.tolist() == [99, 0, 1, 2, 3] and len(ds.classes) == 100 and ds[0][1] == 99
    assert len(static_dataset("cifar100", tmp_path, "test")) == 2


def test_cifar_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/data_batch_1") as e:
        static_dataset("cifar10", tmp_path, "train")
    assert "cifar-10-python.tar.gz" in str(e.value) and "Nothing is downloaded" in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python/train"):
        static_dataset("cifar100", tmp_path, "train")
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"cannot read the batch files.*data_batch_3"):
        static_dataset("cifar10", tmp_path, "train")


# ---------------------------------------------------------------- image folders
def write_png(path: Path, value: int, mode="RGB", size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value // 2, 0)).save(path)


def write_caltech(root: Path, counts: dict[str, int]):
    base = root / "caltech101" / "101_ObjectCategories"
    for c, n in counts.items():
        for i in range(n):
            write_png(base / c / f"image_{i + 1:04d}.jpg", 10 * i, mode="L" if c == "Faces" else "RGB")


CAL = {"BACKGROUND_Google": 4, "Faces": 10, "Faces_easy": 7, "accordion": 5}


def test_caltech101_classes_split_rgb(tmp_path):
    write_caltech(tmp_path, CAL)
    tr = static_dataset("caltech101", tmp_path, "train")
    te = Caltech101(tmp_path, "test")
    assert tr.classes == ["Faces", "Faces_easy", "accordion"]  # torchvision's: no BACKGROUND_Google
    assert np.bincount(tr.targets).tolist() == [9, 6, 4] and np.bincount(te.targets).tolist() == [1, 1, 1]
    assert not {s[0] for s in tr.samples} & {s[0] for s in te.samples}
    assert Caltech101(tmp_path, "train").samples == tr.samples
    assert Caltech101(tmp_path, "train", seed=5).samples != tr.samples
    x, y = tr[0]
    assert y == 0 and x.shape == (3, 10, 12)  # grayscale Faces image comes back RGB
    # aligned with N-Caltech101's names and order, background included, Faces out
    al = Caltech101(tmp_path, "all", classes=["BACKGROUND_Google", "Faces_easy", "accordion"])
    assert np.bincount(al.targets).tolist() == [4, 7, 5]
    with pytest.raises(FileNotFoundError, match=r"missing.*\['yin_yang'\]"):
        Caltech101(tmp_path, "all", classes=["accordion", "yin_yang"])
    with pytest.raises(FileNotFoundError, match="101_ObjectCategories"):
        Caltech101(tmp_path / "none")
    (tmp_path / "caltech101" / "101_ObjectCategories" / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image.*\['empty'\]"):
        Caltech101(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        Caltech101(tmp_path, "val")


def test_unreadable_image_names_the_file(tmp_path):
    write_caltech(tmp_path, {"accordion": 3})
    ds = Caltech101(tmp_path, "all")
    Path(ds.samples[1][0]).write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"image_0002\.jpg"):
        ds[1]


def write_omniglot(root: Path, drawers=4):
    chars = {
        "background": {"Alpha": ["character01", "character02"], "Beta": ["character01"]},
        "evaluation": {"Gamma": ["character01", "character02"]},
    }
    for part, alphas in chars.items():
        k = 0
        for a, cs in alphas.items():
            for c in cs:
                k += 1
                for d in range(drawers, 0, -1):  # written in reverse: order must come from sorting
                    write_png(
                        root / "omniglot-py" / f"images_{part}" / a / c / f"{k:04d}_{d:02d}.png",
                        20 * d,
                        "L",
                        (8, 8),
                    )


def test_omniglot_drawer_split_and_subsets(tmp_path):
    write_omniglot(tmp_path)
    tr = static_dataset("omniglot", tmp_path, "train", train_drawers=3)
    te = Omniglot(tmp_path, "test", train_drawers=3)
    assert tr.classes == [
        "Alpha/character01",
        "Alpha/character02",
        "Beta/character01",
        "Gamma/character01",
        "Gamma/character02",
    ]
    assert np.bincount(tr.targets).tolist() == [3] * 5 and np.bincount(te.targets).tolist() == [1] * 5
    assert all(Path(p).name.endswith("_04.png") for p, _ in te.samples)  # last drawer is test
    x, y = te[3]
    assert x.shape == (1, 8, 8) and y == 3
    torch.testing.assert_close(x, torch.full((1, 8, 8), 80 / 255.0))
    ev = Omniglot(tmp_path, "all", subset="evaluation", train_drawers=3)
    assert ev.classes == ["Gamma/character01", "Gamma/character02"] and len(ev) == 8
    with pytest.raises(ValueError, match=r"holds 4 png drawings.*train_drawers=15"):
        Omniglot(tmp_path)
    with pytest.raises(FileNotFoundError, match="omniglot-py/images_background"):
        Omniglot(tmp_path / "none")
    with pytest.raises(ValueError, match="subset must be"):
        Omniglot(tmp_path, subset="both")


def test_imagenet_folders(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for c in ("n01440764", "n01443537"):
            for i in range(n):
                write_png(tmp_path / split / c / f"{c}_{i}.JPEG", 50 * i)
    tr = static_dataset("imagenet", tmp_path, "train")
    va = ImageNetFolder(tmp_path, "val")
    assert tr.classes == va.classes == ["n01440764", "n01443537"]
    assert tr.targets.tolist() == [0, 0, 0, 1, 1, 1] and len(va) == 4
    x, y = va[3]
    assert x.shape == (3, 10, 12) and y == 1
    with pytest.raises(FileNotFoundError, match=r"missing folder .*/none/train"):
        ImageNetFolder(tmp_path / "none")
    write_png(tmp_path / "val" / "n99999999" / "a.JPEG", 1)
    with pytest.raises(FileNotFoundError, match=r"only in val: \['n99999999'\]"):
        ImageNetFolder(tmp_path, "train")


def test_imagenet_flat_val_is_explained(tmp_path):
    write_png(tmp_path / "train" / "n01440764" / "a.JPEG", 1)
    write_png(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG", 1)
    with pytest.raises(FileNotFoundError, match="no class folders; sort the validation images"):
        ImageNetFolder(tmp_path, "val")


def test_factory_names_and_none_root(tmp_path):
    assert set(STATIC_DATASETS) == {
        "mnist",
        "cifar10",
        "cifar100",
        "caltech101",
        "omniglot",
        "imagenet",
        "cepdvs",
    }
    with pytest.raises(ValueError, match="unknown static data set 'svhn'"):
        static_dataset("svhn", tmp_path)
    with pytest.raises(FileNotFoundError, match="root is None"):
        static_dataset("cifar10", None)
    with pytest.raises(ValueError, match="split must be one of"):
        static_dataset("mnist", tmp_path, "val")

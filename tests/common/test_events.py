"""Event data sets from local roots: readers on the real N-MNIST fixture and on small files written here
in each supported format, deterministic splits, and every bad input's error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tonic")

from sj_common.data.events import (  # noqa: E402
    CIFAR10DVS,
    EVENT_DATASETS,
    EVENT_DTYPE,
    NMNIST,
    NCaltech101,
    event_dataset,
    read_cifar10dvs_aedat,
)
from sj_common.data.frames import ToFrames  # noqa: E402
from sj_common.data.splits import train_test_split  # noqa: E402

FIXTURE = Path(__file__).parents[2].parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


# ---------------------------------------------------------------- encoders (the on-disk formats)
def encode_bin(x, y, t, p) -> bytes:
    """N-MNIST / N-Caltech101 .bin: 5 bytes per event: x, y, p << 7 | t[22:16], t[15:8], t[7:0]."""
    x, y, t, p = (np.asarray(a, dtype=np.int64) for a in (x, y, t, p))
    assert t.max() < 2**23
    out = np.empty((len(t), 5), dtype=np.uint8)
    out[:, 0], out[:, 1] = x, y
    out[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    out[:, 3], out[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return out.tobytes()


def encode_aedat2(x_raw, y_raw, t, p_raw, version="2.0") -> bytes:
    """Original CIFAR10-DVS .aedat: '#' header lines, big-endian uint32 (address, timestamp) pairs."""
    addr = (np.asarray(y_raw) << 8) | (np.asarray(x_raw) << 1) | np.asarray(p_raw)
    words = np.stack([addr, np.asarray(t)], 1).astype(">u4")
    header = f"#!AER-DAT{version}\r\n# This is a raw AE data file - do not edit\r\n# jAER test\r\n".encode()
    return header + words.tobytes()


def random_events(rng, n, w, h, t_max=300_000):
    t = np.sort(rng.integers(0, t_max, n))
    return rng.integers(0, w, n), rng.integers(0, h, n), t, rng.integers(0, 2, n)


def write_nmnist(root: Path, split="Train", per_class=2, seed=0, prefix="NMNIST"):
    rng = np.random.default_rng(seed)
    truth = {}
    for d in range(10):
        folder = root / prefix / split / str(d)
        folder.mkdir(parents=True)
        for i in range(per_class):
            ev = random_events(rng, 50 + 10 * d + i, 34, 34)
            (folder / f"{i:05d}.bin").write_bytes(encode_bin(*ev))
            truth[(d, i)] = ev
    return truth


# ---------------------------------------------------------------- real fixture
@pytest.mark.compat
@pytest.mark.skipif(not FIXTURE.is_file(), reason="../shared fixtures absent")
def test_real_nmnist_fixture_through_reader(tmp_path):
    raw = FIXTURE.read_bytes()  # copied into tmp_path at test time only
    for d in range(10):
        (tmp_path / "NMNIST" / "Test" / str(d)).mkdir(parents=True)
        (tmp_path / "NMNIST" / "Test" / str(d) / "00001.bin").write_bytes(raw)
    ds = NMNIST(tmp_path, "test")
    assert len(ds) == 10 and ds.targets.tolist() == list(range(10)) and ds.targets.dtype == np.int64
    ev, label = ds[7]
    assert label == 7 and ev.dtype == EVENT_DTYPE
    assert len(ev) == 4325 and int(ev["t"].max()) == 311_175
    assert int((ev["p"] == 1).sum()) == 2145 and int((ev["p"] == 0).sum()) == 2180
    assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].max() < 34
    # the public single-file reader (no root folder) gives the same checked events
    single = NMNIST.read_file(tmp_path / "NMNIST" / "Test" / "7" / "00001.bin")
    assert np.array_equal(single, ev)
    (tmp_path / "bad.bin").write_bytes(raw[:7])
    with pytest.raises(ValueError, match="bad.bin"):
        NMNIST.read_file(tmp_path / "bad.bin")
    # our encoder reproduces the real file byte for byte: the synthetic .bin files below are the real format
    assert encode_bin(ev["x"], ev["y"], ev["t"], ev["p"]) == raw

    frames, label = event_dataset("N-MNIST", tmp_path, "test", T=10)[7]
    assert label == 7 and frames.shape == (10, 2, 34, 34) and frames.dtype == torch.float32
    # tonic's time binning leaves out the very last event (t == t_end)
    assert 4324 <= frames.sum().item() <= 4325
    assert abs(frames[:, 1].sum().item() - 2145) <= 1 and abs(frames[:, 0].sum().item() - 2180) <= 1
    # three saccades of ~105 ms: every one of 10 bins over 311 ms holds events
    assert (frames.sum((1, 2, 3)) > 0).all()
    # default framing is exactly tonic's ToFrame(n_time_bins=T); bins="cover" counts every event
    import tonic

    ref = tonic.transforms.ToFrame(sensor_size=NMNIST.sensor_size, n_time_bins=10)(ev.copy())
    np.testing.assert_array_equal(frames.numpy(), ref.astype(np.float32))
    cover, _ = event_dataset("nmnist", tmp_path, "test", T=10, bins="cover")[7]
    assert cover.sum().item() == 4325 and cover[:, 1].sum().item() == 2145


# ---------------------------------------------------------------- N-MNIST synthetic
def test_nmnist_synthetic_roundtrip_both_layouts(tmp_path):
    truth = write_nmnist(tmp_path / "a", "Train")
    write_nmnist(tmp_path / "b", "Train", prefix="")  # root/Train/<d>/ also accepted
    for root in (tmp_path / "a", tmp_path / "b"):
        ds = NMNIST(root, "train")
        assert len(ds) == 20 and ds.targets.tolist() == [d for d in range(10) for _ in range(2)]
        assert ds.classes[3] == "3 - three" and ds.sensor_size == (34, 34, 2)
        ev, y = ds[7]  # class 3, file 1
        x0, y0, t0, p0 = truth[(3, 1)]
        assert y == 3
        np.testing.assert_array_equal(ev["x"], x0)
        np.testing.assert_array_equal(ev["y"], y0)
        np.testing.assert_array_equal(ev["t"], t0)
        np.testing.assert_array_equal(ev["p"], p0)


def test_transform_applies_to_events_and_frames_compose(tmp_path):
    write_nmnist(tmp_path, "Train")
    ds = event_dataset("nmnist", tmp_path, "train", transform=lambda ev: ev[ev["p"] == 1])
    ev, _ = ds[0]
    assert (ev["p"] == 1).all() and len(ev) > 0
    ds = event_dataset(
        "nmnist",
        tmp_path,
        "train",
        T=4,
        transform=lambda ev: ev[ev["p"] == 1],
        frame_transform=lambda x: x * 2,
    )
    x, _ = ds[0]
    assert x.shape == (4, 2, 34, 34) and x[:, 0].sum() == 0 and x[:, 1].sum() > 0
    assert (x % 2 == 0).all()
    x, _ = event_dataset("nmnist", tmp_path, "train", T=3, size=48)[0]
    assert x.shape == (3, 2, 48, 48)


# ---------------------------------------------------------------- N-Caltech101
def write_ncaltech(root: Path, counts: dict[str, int], seed=0):
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        folder = root / "NCALTECH101" / "Caltech101" / name
        folder.mkdir(parents=True)
        for i in range(n):
            x, y, t, p = random_events(rng, 40, 60, 50)
            (folder / f"image_{i + 1:04d}.bin").write_bytes(encode_bin(x + 20, y + 10, t, p))


COUNTS = {"accordion": 5, "BACKGROUND_Google": 10, "Faces_easy": 7, "yin_yang": 3}


def test_ncaltech101_split_counts_determinism_and_shift(tmp_path):
    write_ncaltech(tmp_path, COUNTS)
    tr, te = NCaltech101(tmp_path, "train"), NCaltech101(tmp_path, "test")
    assert tr.classes == ["BACKGROUND_Google", "Faces_easy", "accordion", "yin_yang"]  # sorted, as tonic
    # round(0.9 n) with Python rounding: 10 -> 9, 7 -> 6, 5 -> 4 (4.5 rounds to even), 3 -> 3
    assert np.bincount(tr.targets).tolist() == [9, 6, 4, 3]
    assert np.bincount(te.targets, minlength=4).tolist() == [1, 1, 1, 0]
    assert not set(tr.files) & set(te.files) and len(tr) + len(te) == sum(COUNTS.values())
    again = NCaltech101(tmp_path, "train")
    assert again.files == tr.files  # deterministic
    other = NCaltech101(tmp_path, "train", seed=1)
    assert other.files != tr.files and np.bincount(other.targets).tolist() == [9, 6, 4, 3]
    positional = NCaltech101(tmp_path, "test", seed=None)
    assert [f.name for f in positional.files] == ["image_0010.bin", "image_0007.bin", "image_0005.bin"]
    ev, _ = tr[0]
    assert ev["x"].min() == 0 and ev["y"].min() == 0  # shifted to the sample's own box
    with pytest.raises(ValueError, match="size"):
        event_dataset("ncaltech101", tmp_path, "train", T=5)
    x, y = event_dataset("ncaltech101", tmp_path, "train", T=5, size=(48, 48))[0]
    assert x.shape == (5, 2, 48, 48) and x.dtype == torch.float32 and x.sum() > 0


def test_stratified_split_is_9_to_1_per_class_and_seeded():
    targets = np.repeat(np.arange(10), 1000)
    tr, te = train_test_split(targets, 0.9, seed=3)
    assert np.bincount(targets[tr]).tolist() == [900] * 10
    assert np.bincount(targets[te]).tolist() == [100] * 10
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 10_000
    tr2, _ = train_test_split(targets, 0.9, seed=3)
    tr3, _ = train_test_split(targets, 0.9, seed=4)
    np.testing.assert_array_equal(tr, tr2)
    assert not np.array_equal(tr, tr3)
    with pytest.raises(ValueError, match="train_fraction"):
        train_test_split(targets, 1.0, seed=0)


# ---------------------------------------------------------------- CIFAR10-DVS
CLASSES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10dvs(root: Path, per_class=10, seed=0):
    rng = np.random.default_rng(seed)
    for c in CLASSES10:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"cifar10_{c}_{i}.aedat").write_bytes(
                encode_aedat2(*random_events(rng, 30, 128, 128))
            )


def test_cifar10dvs_aedat_reader_orientation():
    x_raw, y_raw, t, p_raw = (
        np.array([0, 5, 127]),
        np.array([3, 0, 100]),
        np.array([10, 20, 30]),
        np.array([1, 0, 1]),
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "a.aedat"
        f.write_bytes(encode_aedat2(x_raw, y_raw, t, p_raw))
        ev = read_cifar10dvs_aedat(f)
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].tolist() == [124, 127, 27]  # 127 - y_raw
    assert ev["y"].tolist() == [127, 122, 0]  # 127 - x_raw
    assert ev["p"].tolist() == [0, 1, 0] and ev["t"].tolist() == [10, 20, 30]


def test_cifar10dvs_split_9_to_1_per_class_and_frames(tmp_path):
    write_cifar10dvs(tmp_path / "CIFAR10DVS")
    tr, te = CIFAR10DVS(tmp_path, "train"), CIFAR10DVS(tmp_path, "test")
    assert tr.classes == CLASSES10 and tr.sensor_size == (128, 128, 2)
    assert np.bincount(tr.targets).tolist() == [9] * 10 and np.bincount(te.targets).tolist() == [1] * 10
    assert not set(tr.files) & set(te.files)
    assert CIFAR10DVS(tmp_path, "test").files == te.files
    # seed=None: natural file order, last per class is test ("_9" after "_2", not "_10"-style mix-ups)
    assert all(f.name.endswith("_9.aedat") for f in CIFAR10DVS(tmp_path, "test", seed=None).files)
    ev, y = te[0]
    assert len(ev) == 30 and y == 0
    x, y = event_dataset("cifar10-dvs", tmp_path, "test", T=4)[3]
    assert x.shape == (4, 2, 128, 128) and y == 3 and 29 <= x.sum().item() <= 30


def test_cifar10dvs_bad_files(tmp_path):
    write_cifar10dvs(tmp_path, per_class=2)
    bad = tmp_path / "cat" / "cifar10_cat_0.aedat"
    bad.write_bytes(encode_aedat2([1], [2], [3], [0])[:-3])
    ds = CIFAR10DVS(tmp_path, "train", seed=None)
    i = ds.files.index(bad)
    with pytest.raises(ValueError, match=r"cifar10_cat_0\.aedat.*8-byte"):
        ds[i]
    bad.write_bytes(encode_aedat2([1], [2], [3], [0], version="3.1"))
    with pytest.raises(ValueError, match=r"cifar10_cat_0\.aedat.*AER-DAT version 3\.1"):
        ds[i]
    bad.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(ValueError, match="holds no events"):
        ds[i]


def test_cifar10dvs_aedat4_needs_aedat_package(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    monkeypatch.setitem(
        sys.modules, "aedat", None
    )  # as without the package: `import aedat` raises ImportError
    write_cifar10dvs(tmp_path, per_class=1)
    f = tmp_path / "dog" / "cifar10_dog_0.aedat"
    f.rename(f.with_suffix(".aedat4"))
    ds = CIFAR10DVS(tmp_path, "train", train_fraction=0.5)  # 1 per class -> round(0.5) = 0 train
    assert len(ds) == 0
    ds = CIFAR10DVS(tmp_path, "test", train_fraction=0.5)
    with pytest.raises(ImportError, match="pip install aedat"):
        ds[5]


# ---------------------------------------------------------------- DVS128 Gesture
def write_gesture(root: Path, sub="ibmGestureTrain", users=(1, 2), seed=0):
    rng = np.random.default_rng(seed)
    for u in users:
        for light in ("fluorescent", "lab"):
            folder = root / "DVSGesture" / sub / f"user{u:02d}_{light}"
            folder.mkdir(parents=True)
            for label in (0, 3, 10):
                x, y, t, p = random_events(rng, 25, 128, 128, t_max=6000)
                arr = np.stack([x, y, p, t / 1000.0], 1)  # x, y, p, t in ms (tonic's npy layout)
                np.save(folder / f"{label}.npy", arr)


def test_dvsgesture_layout_targets_and_frames(tmp_path):
    write_gesture(tmp_path)
    ds = event_dataset("DVS128-Gesture", tmp_path, "train")
    assert len(ds) == 12 and sorted(set(ds.targets.tolist())) == [0, 3, 10]
    assert ds.users[:6] == [1] * 6 and ds.lighting[0] == "fluorescent" and len(ds.classes) == 11
    ev, y = ds[1]
    arr = np.load(ds.files[1])
    assert y == int(ds.files[1].stem)
    np.testing.assert_array_equal(ev["t"], (arr[:, 3] * 1000).astype(np.int64))  # ms -> us
    np.testing.assert_array_equal(ev["x"], arr[:, 0])
    x, _ = event_dataset("dvsgesture", tmp_path, "train", T=6)[0]
    assert x.shape == (6, 2, 128, 128)
    with pytest.raises(FileNotFoundError, match="ibmGestureTest"):
        event_dataset("dvsgesture", tmp_path, "test")
    np.save(ds.files[2], np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"10\.npy.*\[N, 4\]"):
        ds[2]


def test_dvsgesture_original_release_names_a_missing_trial(tmp_path):
    (tmp_path / "DvsGesture").mkdir()
    (tmp_path / "DvsGesture" / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    with pytest.raises(
        FileNotFoundError, match="lists user01_fluorescent.aedat, but .*user01_fluorescent.aedat is missing"
    ):
        event_dataset("dvsgesture", tmp_path / "DvsGesture", "train")  # read since issue 20


# ---------------------------------------------------------------- errors
@pytest.mark.compat
@pytest.mark.parametrize(
    "name, expect",
    [
        ("nmnist", "NMNIST/Train"),
        ("ncaltech101", "NCALTECH101/Caltech101"),
        ("cifar10dvs", "CIFAR10DVS/airplane"),
        ("dvsgesture", "DVSGesture/ibmGestureTrain"),
    ],
)
def test_missing_root_names_expected_paths(tmp_path, name, expect):
    root = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError) as e:
        event_dataset(name, root, "train")
    msg = str(e.value)
    assert expect in msg and str(root) in msg
    assert "Expected layout" in msg and "Nothing is downloaded" in msg


def test_ncaltech_missing_root_lists_candidates(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="no class folders"):
        NCaltech101(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="NCALTECH101/Caltech101"):
        NCaltech101(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="root is None"):
        NCaltech101(None)


def test_nmnist_missing_and_empty_class_folders(tmp_path):
    write_nmnist(tmp_path)
    for f in (tmp_path / "NMNIST" / "Train" / "4").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"Train/4 holds no \.bin"):
        NMNIST(tmp_path)
    (tmp_path / "NMNIST" / "Train" / "4").rmdir()
    with pytest.raises(FileNotFoundError, match=r"class folder\(s\) missing.*'4'"):
        NMNIST(tmp_path)


def test_unreadable_bin_names_the_file(tmp_path):
    write_nmnist(tmp_path)
    f = tmp_path / "NMNIST" / "Train" / "2" / "00000.bin"
    f.write_bytes(b"\x00" * 7)
    ds = NMNIST(tmp_path)
    with pytest.raises(ValueError, match=r"2/00000\.bin.*multiple of 5"):
        ds[4]
    f.write_bytes(b"")
    with pytest.raises(ValueError, match=r"00000\.bin holds no events"):
        ds[4]


def test_cifar10dvs_missing_class_and_empty_folder(tmp_path):
    write_cifar10dvs(tmp_path, per_class=1)
    (tmp_path / "frog" / "cifar10_frog_0.aedat").unlink()
    with pytest.raises(FileNotFoundError, match=r"frog holds no \.aedat/\.aedat4"):
        CIFAR10DVS(tmp_path)
    (tmp_path / "frog").rmdir()
    with pytest.raises(FileNotFoundError, match="frog"):
        CIFAR10DVS(tmp_path)


def test_bad_arguments(tmp_path):
    write_nmnist(tmp_path)
    with pytest.raises(ValueError, match="unknown event data set 'nmist'"):
        event_dataset("nmist", tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        event_dataset("nmnist", tmp_path, "val")
    with pytest.raises(ValueError, match="T must be a positive int, got 0"):
        event_dataset("nmnist", tmp_path, "train", T=0)
    with pytest.raises(ValueError, match="need T"):
        event_dataset("nmnist", tmp_path, "train", size=48)
    with pytest.raises(ValueError, match="need T"):
        event_dataset("nmnist", tmp_path, "train", bins="cover")
    x, _ = event_dataset("nmnist", tmp_path, "train", T=np.int64(2))[0]
    assert x.shape == (2, 2, 34, 34)
    with pytest.raises(ValueError, match="bins must be"):
        ToFrames((34, 34, 2), 4, bins="even")
    with pytest.raises(ValueError, match="size must be"):
        ToFrames((34, 34, 2), 4, size=(0, 4))
    with pytest.raises(ValueError, match="resize must be 'bilinear' or 'sum', got 'area'"):
        ToFrames((34, 34, 2), 4, size=8, resize="area")
    with pytest.raises(ValueError, match="need T"):
        event_dataset("nmnist", tmp_path, "train", resize="sum")
    with pytest.raises(FileNotFoundError, match="dvs_background"):  # a reader now (issue 20)
        event_dataset("N-Omniglot", tmp_path, "train", T=12)
    assert set(EVENT_DATASETS) == {"nmnist", "ncaltech101", "cifar10dvs", "dvsgesture", "nomniglot", "cepdvs"}


def test_frames_usable_in_a_dataloader_with_workers_pickle(tmp_path):
    import pickle

    write_nmnist(tmp_path)
    ds = event_dataset("nmnist", tmp_path, "train", T=4)
    ds2 = pickle.loads(pickle.dumps(ds))  # what DataLoader workers need (spawn)
    torch.testing.assert_close(ds2[3][0], ds[3][0])
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert xb.shape == (5, 4, 2, 34, 34) and yb.tolist() == [0, 0, 1, 1, 2]


# ---------------------------------------------------------------- bad events (issue 10 item 4 / 5)
def _one_nmnist(root: Path, x, y, t, p) -> Path:
    write_nmnist(root, "Train", per_class=1)
    f = root / "NMNIST" / "Train" / "0" / "00000.bin"
    f.write_bytes(encode_bin(x, y, t, p))
    return f


def test_nmnist_backwards_timestamps_name_file_field_index(tmp_path):
    f = _one_nmnist(tmp_path, [1, 2, 3, 4], [5, 6, 7, 8], [10, 20, 15, 30], [0, 1, 0, 1])
    ds = NMNIST(tmp_path)
    with pytest.raises(
        ValueError, match=r"00000\.bin: invalid events: field 't' at index 2 \(the first bad one\) decreases"
    ):
        ds[0]
    with pytest.raises(ValueError, match=r"0/00000\.bin.*field 't'"):
        event_dataset("nmnist", tmp_path, "train", T=4)[0]
    f.write_bytes(encode_bin([1, 2, 3], [5, 6, 7], [10, 20, 20], [0, 1, 0]))  # ties are fine
    assert len(ds[0][0]) == 3


def test_nmnist_sensor_range_boundary(tmp_path):
    f = _one_nmnist(tmp_path, [0, 33, 33], [33, 0, 33], [1, 2, 3], [0, 1, 0])
    ds = NMNIST(tmp_path)
    assert len(ds[0][0]) == 3  # 33 is the last column / row of 34x34
    f.write_bytes(encode_bin([0, 34, 1], [0, 0, 0], [1, 2, 3], [0, 1, 0]))
    with pytest.raises(
        ValueError,
        match=r"field 'x' at index 1 \(the first bad one\) is outside the sensor range \[0, 34\) \(34\)",
    ):
        ds[0]
    f.write_bytes(encode_bin([0, 1, 1], [0, 0, 200], [1, 2, 3], [0, 1, 0]))
    with pytest.raises(ValueError, match=r"00000\.bin.*field 'y' at index 2 .*\(200\)"):
        ds[0]


def test_nmnist_outlier_timestamp_boundary_one_second(tmp_path):
    assert NMNIST.max_duration_us == 1_000_000
    f = _one_nmnist(tmp_path, [1, 2, 3], [1, 2, 3], [5, 300_000, 1_000_005], [0, 1, 0])
    ds = NMNIST(tmp_path)
    assert int(ds[0][0]["t"][-1]) == 1_000_005  # exactly 1 s after the first event: accepted
    # the case: one flipped high timestamp bit puts an event 8.39 s into a 0.3 s recording
    f.write_bytes(encode_bin([1, 2, 3], [1, 2, 3], [5, 300_000, 1_000_006], [0, 1, 0]))
    with pytest.raises(
        ValueError, match=r"00000\.bin: invalid events: field 't' at index 2 .* is 1000001 us after"
    ):
        ds[0]
    f.write_bytes(encode_bin([1, 2, 3], [1, 2, 3], [5, 300_000, 300_001 + 2**22], [0, 1, 0]))
    with pytest.raises(ValueError, match="outlier timestamp"):
        event_dataset("nmnist", tmp_path, "train", T=4)[0]
    ds.max_duration_us = None  # documented switch for data recorded differently
    assert len(ds[0][0]) == 3


@pytest.mark.parametrize("bins", ["tonic", "cover"])
def test_one_event_and_zero_duration_land_in_bin_0(tmp_path, bins):
    f = _one_nmnist(tmp_path, [7], [9], [12_345], [1])
    x, _ = event_dataset("nmnist", tmp_path, "train", T=5, bins=bins)[0]
    assert x.sum().item() == 1 and x[0, 1, 9, 7].item() == 1  # the one event is in bin 0, not dropped
    f.write_bytes(encode_bin([1, 2, 3, 4], [4, 3, 2, 1], [500] * 4, [0, 1, 1, 0]))
    x, _ = event_dataset("nmnist", tmp_path, "train", T=5, bins=bins)[0]
    assert x[0].sum().item() == 4 and x[1:].sum().item() == 0


def test_transform_errors_name_the_file(tmp_path):
    _one_nmnist(tmp_path, [1, 2], [1, 2], [1, 2], [0, 1])

    def shift(ev):
        ev = ev.copy()
        ev["x"] += 40
        return ev

    ds = event_dataset("nmnist", tmp_path, "train", T=2, transform=shift)
    with pytest.raises(ValueError, match=r"N-MNIST: .*0/00000\.bin: transform failed: .*field 'x'"):
        ds[0]


def test_aedat2_garbage_after_header_is_refused(tmp_path):
    f = tmp_path / "g.aedat"
    head = b"#!AER-DAT2.0\r\n# garbage follows\r\n"
    f.write_bytes(head + np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(
        ValueError, match=r"g\.aedat: invalid events: field 'address' at index \d+ .*has bits 16-31 set"
    ):
        read_cifar10dvs_aedat(f)
    # exact boundary: bit 15 (jAER's external-event flag) is ignored, bit 16 is refused
    words = np.array([[0x8000 | (3 << 8) | (2 << 1), 10], [(1 << 16), 11]], dtype=">u4")
    f.write_bytes(head + words.tobytes())
    with pytest.raises(ValueError, match=r"'address' at index 1 .*0x00010000"):
        read_cifar10dvs_aedat(f)
    f.write_bytes(head + words[:1].tobytes())
    ev = read_cifar10dvs_aedat(f)
    assert ev["x"].tolist() == [124] and ev["y"].tolist() == [125]


def test_aedat2_timestamps_decrease_refused_wrap_unwrapped(tmp_path):
    f = tmp_path / "t.aedat"
    f.write_bytes(encode_aedat2([1, 2, 3], [1, 2, 3], [100, 50, 200], [0, 0, 1]))
    with pytest.raises(
        ValueError,
        match=r"t\.aedat: invalid events: field 't' at index 1 \(the first bad one\) decreases \(50 after 100\)",
    ):
        read_cifar10dvs_aedat(f)
    # a drop by more than 2**31 is the 32-bit counter wrapping: unwrapped, not refused
    f.write_bytes(encode_aedat2([1, 2], [1, 2], [2**32 - 10, 5], [0, 1]))
    assert read_cifar10dvs_aedat(f)["t"].tolist() == [2**32 - 10, 2**32 + 5]
    f.write_bytes(encode_aedat2([1, 2], [1, 2], [2**31, 0], [0, 1]))  # a drop of exactly 2**31: refused
    with pytest.raises(ValueError, match="field 't' at index 1 .*decreases"):
        read_cifar10dvs_aedat(f)


def test_dvsgesture_nan_and_bad_columns_refused(tmp_path):
    write_gesture(tmp_path, users=(1,))
    ds = event_dataset("dvsgesture", tmp_path, "train")
    arr = np.load(ds.files[0])
    bad = arr.copy()
    bad[3, 3] = np.nan
    np.save(ds.files[0], bad)
    with pytest.raises(
        ValueError,
        match=r"0\.npy: invalid events: field 't' at index 3 \(the first bad one\) is not finite \(nan\)",
    ):
        ds[0]
    bad = arr.copy()
    bad[4, 0] = np.inf
    np.save(ds.files[0], bad)
    with pytest.raises(ValueError, match=r"field 'x' at index 4 .*is not finite \(inf\)"):
        ds[0]
    bad = arr.copy()
    bad[2, 2] = 0.5
    np.save(ds.files[0], bad)
    with pytest.raises(ValueError, match=r"field 'p' at index 2 .*is not an integer \(0\.5\)"):
        ds[0]
    bad = arr.copy()
    bad[1, 1] = 128
    np.save(ds.files[0], bad)
    with pytest.raises(ValueError, match=r"field 'y' at index 1 .*is outside the sensor range \[0, 128\)"):
        ds[0]
    bad = arr.copy()
    bad[5, 3] = 1e17  # 1e20 us: would wrap to a negative int64
    np.save(ds.files[0], bad)
    with pytest.raises(ValueError, match=r"field 't' at index 5 .*is outside \+-2\*\*62"):
        ds[0]
    np.save(ds.files[0], np.array([["a", "b", "c", "d"]]))
    with pytest.raises(ValueError, match=r"0\.npy.*numeric"):
        ds[0]

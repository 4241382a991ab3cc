"""Fuzz the event readers (issue 10): seeded mutations of the real N-MNIST recording and of small synthetic
AER-DAT 2.0 (CIFAR10-DVS) and DVS Gesture ``.npy`` files.

Mutations: bit flips, truncation, byte insertion, byte deletion and format-aware field edits (an event's
x / y / t / polarity bytes, an address or timestamp word, a cell of the ``.npy`` array set to NaN, inf, a
fraction, a negative or a huge value). Every read of a mutated file must either succeed with valid events
(x, y inside the sensor, p in {0, 1}, t non-decreasing) AND valid frames (right shape, finite, every event
counted with ``bins="cover"``), or raise the documented :class:`ValueError` naming the file; any other
exception type, or a read slower than 2 s (a hang), fails. The real fixture is read from ``../shared`` and
written to ``tmp_path`` only; its part skips cleanly when the fixture is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tonic")

from sj_common.data.events import CIFAR10DVS, NMNIST, DVSGesture, event_dataset  # noqa: E402

FIXTURE = Path(__file__).parents[2].parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"
T = 6
N_PER_FORMAT = {
    "nmnist": 300,
    "cifar10dvs": 150,
    "dvsgesture": 150,
    "nomniglot": 120,
    "cepdvs": 120,
    "dvsgesture_aedat": 120,
}
STATS: dict[str, dict[str, int]] = {}


def _mutate(rng: np.random.Generator, raw: bytes, kind: str, field_edit) -> bytes:
    b = bytearray(raw)
    op = rng.integers(0, 5)
    if op == 0:  # flip 1-8 random bits
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1:  # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif op == 2:  # insert 1-16 random bytes
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
    elif op == 3:  # delete 1-16 bytes
        i = int(rng.integers(0, len(b)))
        del b[i : i + int(rng.integers(1, 17))]
    else:
        b = bytearray(field_edit(rng, bytes(b)))
    return bytes(b)


def _edit_bin(rng, raw: bytes) -> bytes:
    """N-MNIST .bin: 5 bytes per event (x, y, p << 7 | t[22:16], t[15:8], t[7:0]); set one of them."""
    b = bytearray(raw)
    ev = int(rng.integers(0, len(b) // 5))
    b[5 * ev + int(rng.integers(0, 5))] = int(rng.integers(0, 256))
    return bytes(b)


def _aedat(rng, n=40) -> tuple[bytes, int]:
    x, y = rng.integers(0, 128, n), rng.integers(0, 128, n)
    addr = (y << 8) | (x << 1) | rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 1_300_000, n))
    head = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# fuzz\r\n"
    return head + np.stack([addr, t], 1).astype(">u4").tobytes(), len(head)


def _edit_aedat(header_len):
    def edit(rng, raw: bytes) -> bytes:
        b = bytearray(raw)
        n_words = (len(b) - header_len) // 4
        if n_words == 0:
            return raw
        w = header_len + 4 * int(rng.integers(0, n_words))
        value = int(rng.choice([rng.integers(0, 2**32), rng.integers(0, 2**16), 0, 2**32 - 1]))
        b[w : w + 4] = value.to_bytes(4, "big")
        return bytes(b)

    return edit


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    f = io.BytesIO()
    np.save(f, arr)
    return f.getvalue()


def _gesture(rng, n=40) -> np.ndarray:
    t = np.sort(rng.integers(0, 6000, n)) / 1000.0
    return np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), t], 1)


def _edit_npy(arr: np.ndarray):
    def edit(rng, raw: bytes) -> bytes:
        a = arr.copy()
        i, j = int(rng.integers(0, len(a))), int(rng.integers(0, 4))
        a[i, j] = rng.choice([np.nan, np.inf, -np.inf, -1.0, 0.5, 127.0, 128.0, 1e300, 2.0, a[i, j] + 1])
        return _npy_bytes(a)

    return edit


def _check_events(ev, sensor, max_duration_us):
    assert ev.dtype.names == ("x", "y", "t", "p") and len(ev) > 0
    W, H, _ = sensor
    assert ev["x"].min() >= 0 and ev["x"].max() < W and ev["y"].min() >= 0 and ev["y"].max() < H
    assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
    assert np.all(np.diff(ev["t"]) >= 0)
    if max_duration_us is not None:
        assert ev["t"][-1] - ev["t"][0] <= max_duration_us


def _fuzz(name, root, split, path: Path, original: bytes, field_edit, n, rng_seed, **kw):
    raw_ds = event_dataset(name, root, split, **kw)
    cover = event_dataset(name, root, split, T=T, bins="cover", **kw)
    tonic_bins = event_dataset(name, root, split, T=T, **kw)
    index = raw_ds.files.index(path)
    sensor = raw_ds.sensor_size
    rng = np.random.default_rng(rng_seed)
    ok = refused = 0
    slowest = 0.0
    for k in range(n):
        data = _mutate(rng, original, name, field_edit)
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            ev, _ = raw_ds[index]
        except ValueError as e:
            assert str(path) in str(e), f"mutation {k}: the error does not name the file: {e}"
            refused += 1
            for ds in (cover, tonic_bins):  # framing refuses it too, naming the file
                with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
                    ds[index]
        else:
            _check_events(ev, sensor, getattr(raw_ds, "max_duration_us", None))
            x, _ = cover[index]
            assert tuple(x.shape) == (T, 2, sensor[1], sensor[0]) and bool(x.isfinite().all())
            assert int(x.sum()) == len(ev), f"mutation {k}: cover frames must count every event"
            y, _ = tonic_bins[index]
            assert tuple(y.shape) == tuple(x.shape) and 0 < int(y.sum()) <= len(ev)
            ok += 1
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 2.0, f"a read took {slowest:.2f} s"
    assert ok + refused == n and refused > 0
    STATS[name] = {"reads": n, "valid": ok, "refused": refused}
    return ok, refused


@pytest.mark.slow
@pytest.mark.skipif(not FIXTURE.is_file(), reason="../shared fixtures absent")
def test_fuzz_real_nmnist_recording(tmp_path):
    raw = FIXTURE.read_bytes()  # written to tmp_path only, never into the project
    for d in range(10):
        (tmp_path / "NMNIST" / "Test" / str(d)).mkdir(parents=True)
        (tmp_path / "NMNIST" / "Test" / str(d) / "00001.bin").write_bytes(raw)
    path = tmp_path / "NMNIST" / "Test" / "3" / "00001.bin"
    ok, refused = _fuzz("nmnist", tmp_path, "test", path, raw, _edit_bin, N_PER_FORMAT["nmnist"], 10)
    assert ok > 0  # some mutations (a low timestamp bit, a polarity bit) leave a valid recording
    assert NMNIST.max_duration_us == 1_000_000


def test_fuzz_synthetic_aedat2(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for c in classes:
        (tmp_path / c).mkdir()
        for i in range(2):
            (tmp_path / c / f"cifar10_{c}_{i}.aedat").write_bytes(_aedat(rng)[0])
    original, header_len = _aedat(rng)
    path = tmp_path / "cat" / "cifar10_cat_1.aedat"
    path.write_bytes(original)
    kw = {"train_fraction": 0.5, "seed": None}  # positional split: file _1 of every class is test
    assert path in CIFAR10DVS(tmp_path, "test", **kw).files
    n = N_PER_FORMAT["cifar10dvs"]
    ok, refused = _fuzz("cifar10dvs", tmp_path, "test", path, original, _edit_aedat(header_len), n, 11, **kw)
    assert ok > 0


def test_fuzz_synthetic_dvsgesture_npy(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    for label in (0, 4, 7):
        np.save(folder / f"{label}.npy", _gesture(rng))
    arr = _gesture(rng)
    original = _npy_bytes(arr)
    path = folder / "4.npy"
    path.write_bytes(original)
    assert len(DVSGesture(tmp_path, "train")) == 3
    n = N_PER_FORMAT["dvsgesture"]
    ok, refused = _fuzz("dvsgesture", tmp_path, "train", path, original, _edit_npy(arr), n, 12)
    assert ok > 0


# ---------------------------------------------------------------- issue 20: N-Omniglot, CEP-DVS, DVS Gesture AEDAT 3.1
def _no_edit(rng, raw: bytes) -> bytes:  # the generic mutations only (no field edit for these formats)
    b = bytearray(raw)
    i = int(rng.integers(0, len(b)))
    b[i] = int(rng.integers(0, 256))
    return bytes(b)


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_fuzz_synthetic_nomniglot_aedat4(tmp_path, compression):
    pytest.importorskip("aedat")
    from .event_files import make_nomniglot_root

    make_nomniglot_root(tmp_path, {"background": {"A": 2}}, compression=compression, n_per_drawer=6)
    path = next((tmp_path / "dvs_background" / "A" / "character02").glob("*.aedat4"))
    original = path.read_bytes()
    kw = {"subset": "background"}
    n = N_PER_FORMAT["nomniglot"]
    ok, refused = _fuzz("nomniglot", tmp_path, "train", path, original, _no_edit, n, 13, **kw)
    assert ok > 0


def test_fuzz_synthetic_cepdvs_mat(tmp_path):
    from .event_files import make_cep_root

    make_cep_root(tmp_path, per_class=2, images=False, n_events=20)
    path = tmp_path / "data" / "MAT" / "img" / "00005.mat"
    original = path.read_bytes()
    kw = {"sensor_size": (240, 180, 2)}  # the fixed-sensor option, so that frames have one shape
    ok, refused = _fuzz(
        "cepdvs", tmp_path, "train", path, original, _no_edit, N_PER_FORMAT["cepdvs"], 14, **kw
    )
    assert ok > 0


def test_fuzz_synthetic_gesture_aedat31(tmp_path):
    from .event_files import make_gesture_release

    make_gesture_release(tmp_path, {"train": ["user01_lab"], "test": ["user24_lab"]}, n=40)
    path = tmp_path / "DvsGesture" / "user01_lab.aedat"
    original = path.read_bytes()
    DVSGesture(tmp_path, "train")[0]  # imports SpikingJelly's data set modules once, outside the timed reads
    n = N_PER_FORMAT["dvsgesture_aedat"]
    ok, refused = _fuzz("dvsgesture", tmp_path, "train", path, original, _no_edit, n, 15)
    assert ok > 0

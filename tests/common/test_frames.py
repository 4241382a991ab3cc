"""events -> frames: shape, dtype, axis order, event conservation, tonic equivalence; the frame disk cache."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sj_common.data import EVENT_DTYPE, CachedFrames, FrameCache, ToFrames, events_to_frames

FIXTURE = Path(__file__).parents[2].parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


def _events(n=500, W=20, H=12, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, W, n), rng.integers(0, H, n)
    ev["t"] = np.sort(rng.integers(0, 100_000, n))
    ev["p"] = rng.integers(0, 2, n)
    return ev


@pytest.mark.compat
def test_shape_axes_and_conservation():
    ev = _events()
    fr = events_to_frames(ev, (20, 12, 2), 5)
    assert fr.shape == (5, 2, 12, 20) and fr.dtype == np.float32
    assert fr.sum() == len(ev)  # every event counted once
    assert fr[:, 1].sum() == ev["p"].sum()
    # axis order [T, P, H(y), W(x)]: one event lands where it should
    one = ev[:1].copy()
    one["x"], one["y"], one["p"] = 17, 3, 1
    f1 = events_to_frames(one, (20, 12, 2), 2)
    assert f1[0, 1, 3, 17] == 1 and f1.sum() == 1
    # the first and last event go to the first and last bin
    fr4 = events_to_frames(ev, (20, 12, 2), 4)
    assert fr4[0].sum() >= 1 and fr4[-1].sum() >= 1
    assert np.array_equal(events_to_frames(ev, (20, 12, 2), 4, binarize=True), (fr4 > 0).astype(np.float32))
    assert events_to_frames(ev[:0], (20, 12, 2), 3).sum() == 0
    assert events_to_frames(ev, (20, 12, 1), 3).shape == (3, 1, 12, 20)
    assert np.array_equal(ToFrames((20, 12, 2), 5)(ev), fr)


@pytest.mark.compat
def test_errors():
    ev = _events()
    with pytest.raises(ValueError, match="outside the sensor"):
        events_to_frames(ev, (10, 12, 2), 3)
    with pytest.raises(ValueError, match="T must be"):
        events_to_frames(ev, (20, 12, 2), 0)
    with pytest.raises(ValueError, match="missing"):
        events_to_frames(np.zeros(3, [("x", int), ("t", int)]), (20, 12, 2), 3)


@pytest.mark.parametrize("bad", [float("nan"), True, 2.0, "4", -1])
def test_T_must_be_a_positive_int(bad):
    ev = _events(5)
    with pytest.raises(ValueError, match=r"T must be a positive int, got " + repr(bad).replace("(", r"\(")):
        events_to_frames(ev, (20, 12, 2), bad)
    with pytest.raises(ValueError, match="T must be a positive int"):
        ToFrames((20, 12, 2), bad)
    assert events_to_frames(ev, (20, 12, 2), np.int64(2)).shape == (2, 2, 12, 20)


def _ev(x, y, t, p):
    ev = np.zeros(len(t), EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


@pytest.mark.parametrize("bins", ["cover", "tonic"])
def test_one_event_zero_duration_and_short_recordings(bins):
    one = _ev([3], [4], [-77], [1])
    fr = events_to_frames(one, (20, 12, 2), 6, bins=bins)
    assert fr.sum() == 1 and fr[0, 1, 4, 3] == 1  # one event: bin 0, never all-zero frames
    same = _ev([1, 2, 3], [1, 1, 1], [5, 5, 5], [0, 1, 0])
    fr = events_to_frames(same, (20, 12, 2), 4, bins=bins)
    assert fr[0].sum() == 3 and fr[1:].sum() == 0  # zero duration: every event in bin 0
    short = _ev([0, 1, 2, 3], [0, 0, 0, 0], [10, 11, 12, 13], [1, 1, 1, 1])  # 3 us span, T = 8
    fr = events_to_frames(short, (20, 12, 2), 8, bins=bins)
    if bins == "tonic":  # tonic's width 0 -> 1 us bins here: bin = t - t_first, every event counted
        assert [int(fr[k].sum()) for k in range(8)] == [1, 1, 1, 1, 0, 0, 0, 0]
    else:  # cover: bin = (t - t0) * 8 // 4
        assert [int(fr[k].sum()) for k in range(8)] == [1, 0, 1, 0, 1, 0, 1, 0]


def test_extreme_timestamps_do_not_overflow():
    ev = _ev([0, 1, 2], [0, 0, 0], [-(2**62), 0, 2**62], [0, 0, 0])
    # cover: bin = floor((t - t0) * 2 / (2**63 + 1)) -> 0, 0, 1 (exact, no int64 overflow)
    fr = events_to_frames(ev, (3, 1, 2), 2)
    assert fr[0, 0, 0].tolist() == [1, 1, 0] and fr[1, 0, 0].tolist() == [0, 0, 1]
    # tonic: width 2**63 // 2 = 2**62 -> bins 0, 1, 2 (the last dropped, as ToFrame)
    fr = events_to_frames(ev, (3, 1, 2), 2, bins="tonic")
    assert fr[0, 0, 0].tolist() == [1, 0, 0] and fr[1, 0, 0].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"field 't' at index 1 .*outside \+-2\*\*62"):
        events_to_frames(_ev([0, 0], [0, 0], [0, 2**62 + 1], [0, 0]), (3, 1, 2), 2)


def test_tonic_bins_do_not_depend_on_event_order():
    ev = _events(300)
    perm = np.random.default_rng(1).permutation(len(ev))
    for bins in ("tonic", "cover"):
        assert np.array_equal(
            events_to_frames(ev[perm], (20, 12, 2), 5, bins=bins),
            events_to_frames(ev, (20, 12, 2), 5, bins=bins),
        )


def test_bad_event_fields_name_field_and_index():
    ev = _events(20)
    ev["p"][7] = 2
    with pytest.raises(ValueError, match=r"field 'p' at index 7 .*polarity 0 or 1 \(2\)"):
        events_to_frames(ev, (20, 12, 2), 3)
    assert events_to_frames(ev, (20, 12, 1), 3).sum() == 20  # one channel: p is not used
    ev = _events(20)
    ev["x"][11] = -1
    with pytest.raises(ValueError, match=r"field 'x' at index 11 .*sensor range \[0, 20\) \(-1\)"):
        events_to_frames(ev, (20, 12, 2), 3)


def test_to_frames_transform():
    ev = _events()
    x = ToFrames((20, 12, 2), 5, bins="tonic")(ev)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (5, 2, 12, 20)
    assert np.array_equal(x.numpy(), events_to_frames(ev, (20, 12, 2), 5, bins="tonic"))
    assert ToFrames((20, 12, 2), 5, size=8)(ev).shape == (5, 2, 8, 8)
    boxed = ToFrames(None, 3, size=(6, 7))(ev)  # sensor from the events' own box
    assert boxed.shape == (3, 2, 6, 7)
    with pytest.raises(ValueError, match="sensor_size None"):
        ToFrames(None, 3)
    with pytest.raises(ValueError, match="size must be"):
        ToFrames((20, 12, 2), 3, size=(2.5, 3))
    import pickle

    t = ToFrames((20, 12, 2), 4, bins="tonic", size=(8, 8))
    assert pickle.loads(pickle.dumps(t)) == t and "bins='tonic'" in repr(t)


def test_matches_tonic_toframe():
    tonic = pytest.importorskip("tonic")
    if FIXTURE.is_file():
        ev = tonic.io.read_mnist_file(str(FIXTURE), dtype=tonic.datasets.NMNIST.dtype)
        size = tonic.datasets.NMNIST.sensor_size
    else:
        ev, size = _events(), (20, 12, 2)
    for T in (1, 3, 8):
        ref = tonic.transforms.ToFrame(sensor_size=size, n_time_bins=T)(ev.copy())
        ours = events_to_frames(ev, size, T, bins="tonic", dtype=np.int16)
        assert ref.shape == ours.shape == (T, 2, size[1], size[0])
        assert np.array_equal(ref, ours)
        cover = events_to_frames(ev, size, T)
        assert cover.sum() == len(ev) > ref.sum()  # ToFrame drops the last event; "cover" keeps it


@pytest.mark.compat
def test_frame_cache_roundtrip(tmp_path):
    cache = FrameCache(tmp_path, "toy", params_hash="abc")
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(1, 2, 3)

    a = cache.get_or_compute(4, 8, compute)
    b = cache.get_or_compute(4, 8, compute)
    assert np.array_equal(a, b) and len(calls) == 1
    assert cache.path(4, 8).is_file() and not list(cache.dir.glob("*.tmp"))
    assert cache.path(4, 8) != FrameCache(tmp_path, "toy", params_hash="xyz").path(4, 8)
    assert cache.path(4, 8) != cache.path(4, 10)
    with pytest.raises(ValueError, match="dataset_id"):
        FrameCache(tmp_path, "a/b")

    class Toy(torch.utils.data.Dataset):
        targets = np.array([0, 1, 1])
        classes = ["a", "b"]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            calls.append(i)
            return torch.full((2, 2, 3, 3), float(i)), int(self.targets[i])

    ds = CachedFrames(Toy(), FrameCache(tmp_path, "toyset"), T=2)
    n0 = len(calls)
    x, y = ds[2]
    x2, _ = ds[2]
    assert len(calls) == n0 + 1 and y == 1 and x.dtype == torch.float32 and torch.equal(x, x2)
    assert x.shape == (2, 2, 3, 3) and x[0, 0, 0, 0] == 2.0

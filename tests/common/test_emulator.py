"""Saccade event emulator: dtype, determinism, physics sanity, and statistics against a real N-MNIST recording."""

from pathlib import Path

import numpy as np
import pytest
from sj_common.data import EVENT_DTYPE, MNIST5k, SaccadeEmulator, emulate_saccades, events_to_frames

FIXTURE = Path(__file__).parents[2].parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


@pytest.fixture(scope="module")
def digits():
    ds = MNIST5k("test")
    sel = np.random.default_rng(0).choice(len(ds), 60, replace=False)
    return ds.images[sel]


@pytest.mark.compat
def test_dtype_sorted_and_on_sensor(digits):
    ev = emulate_saccades(digits[0], seed=1)
    assert ev.dtype == EVENT_DTYPE
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
    assert set(np.unique(ev["p"])) == {0, 1}
    assert 0 <= ev["t"].min() and ev["t"].max() < SaccadeEmulator().duration_us
    assert SaccadeEmulator().sensor_size((28, 28)) == (34, 34, 2)


def test_dtype_matches_tonic():
    tonic = pytest.importorskip("tonic")
    assert EVENT_DTYPE == tonic.datasets.NMNIST.dtype


@pytest.mark.compat
def test_determinism_and_batch_equals_single(digits):
    emu = SaccadeEmulator(noise_rate_hz=5.0)
    a = emu(digits[1], seed=[0, 7])
    assert np.array_equal(a, emu(digits[1], seed=[0, 7]))
    assert not np.array_equal(a, emu(digits[1], seed=[0, 8]))
    batch = emu.batch(digits[[0, 3, 1, 2]], [[0, 5], [0, 6], [0, 7], [0, 9]])
    assert np.array_equal(batch[2], a)
    # uint8 and float [0, 1] inputs agree; [1, H, W] is accepted
    f = digits[1].astype(np.float32)[None] / 255
    assert np.array_equal(emu(f, seed=[0, 7]), a)


@pytest.mark.compat
def test_physics_sanity():
    emu = SaccadeEmulator(threshold_sigma=0.0)
    assert len(emu(np.zeros((28, 28), np.uint8), seed=0)) == 0  # nothing moves, nothing fires
    assert len(emu(np.full((28, 28), 0.5, np.float32), seed=0)) > 0  # edges at the padded border fire
    img = np.zeros((28, 28), np.float32)
    img[10:18, 10:18] = 1.0
    n_lo = len(SaccadeEmulator(threshold=0.4)(img, seed=0))
    n_hi = len(SaccadeEmulator(threshold=0.2)(img, seed=0))
    assert n_hi > 1.6 * n_lo  # lower threshold -> more events
    assert len(SaccadeEmulator(amplitude=0.0)(img, seed=0)) == 0
    # refractory: a pixel never fires twice within the dead time (on the step grid)
    ev = SaccadeEmulator(refractory_us=5000, threshold=0.05)(img, seed=0)
    key = ev["y"] * 34 + ev["x"]
    order = np.lexsort((ev["t"], key))
    same = key[order][1:] == key[order][:-1]
    gaps = np.diff(ev["t"][order])[same]
    assert gaps.min() > 5000 - 1000
    small = np.zeros((8, 8), np.uint8)
    small[2:6, 3:5] = 16 * 15
    ev8 = SaccadeEmulator()(small, seed=0)  # any image size: the sensor is the image + pad on each side
    assert len(ev8) > 50 and ev8["x"].max() < 14 and ev8["y"].max() < 14
    with pytest.raises(ValueError, match="NaN"):
        emulate_saccades(np.full((28, 28), np.nan), seed=0)
    with pytest.raises(ValueError, match="threshold"):
        SaccadeEmulator(threshold=0)
    with pytest.raises(ValueError, match="grayscale"):
        emulate_saccades(np.zeros((3, 28, 28)), seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        emulate_saccades(np.full((28, 28), 2.0), seed=0)


def _stats(events_list):
    n = np.array([len(e) for e in events_list])
    on = np.array([e["p"].mean() for e in events_list])
    dur = np.array([(e["t"].max() - e["t"].min()) / 1e3 for e in events_list])
    return n, on, dur


def _phase_peaks(t_us, duration_us=300_000):
    """Event-rate peak height in each third vs the rate at the two saccade boundaries."""
    h, _ = np.histogram(t_us, bins=30, range=(0, duration_us))
    peaks = [h[i * 10 : (i + 1) * 10].max() for i in range(3)]
    valleys = [h[9:11].min(), h[19:21].min()]
    return peaks, valleys


def test_statistics_vs_real_nmnist(digits):
    tonic = pytest.importorskip("tonic")
    if not FIXTURE.is_file():
        pytest.skip(f"no real recording at {FIXTURE}")
    real = tonic.io.read_mnist_file(str(FIXTURE), dtype=tonic.datasets.NMNIST.dtype)
    rn, ron, rdur = len(real), real["p"].mean(), (real["t"].max() - real["t"].min()) / 1e3
    rpeaks, rvalleys = _phase_peaks(real["t"] - real["t"].min(), 310_000)
    assert max(rvalleys) < 0.35 * min(rpeaks)  # the real recording shows three saccades

    emu = SaccadeEmulator()
    evs = emu.batch(digits, [[0, i] for i in range(len(digits))])
    n, on, dur = _stats(evs)
    print(
        f"real: {rn} events, ON {ron:.3f}, {rdur:.1f} ms; emulated (60 MNIST digits): {n.mean():.0f} "
        f"events (median {np.median(n):.0f}, {n.min()}..{n.max()}), ON {on.mean():.3f}, {dur.mean():.1f} ms"
    )
    assert rn / 2 < np.median(n) < 2 * rn
    assert 0.35 < on.mean() < 0.65 and np.all((on > 0.35) & (on < 0.65))
    assert 280 <= dur.mean() <= 330
    peaks, valleys = _phase_peaks(np.concatenate([e["t"] for e in evs]))
    assert max(valleys) < 0.35 * min(peaks), (peaks, valleys)
    # frames of emulated and real data look alike: most events fall on few pixels near the digit
    fr = events_to_frames(evs[0], emu.sensor_size((28, 28)), 1)
    fr_real = events_to_frames(real, (34, 34, 2), 1)
    assert 0.3 < (fr > 0).mean() / (fr_real > 0).mean() < 3


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(amplitude=float("inf")), r"amplitude must be a finite number >= 0 \(pixels\), got inf"),
        (dict(amplitude=float("nan")), r"amplitude must be a finite number >= 0 \(pixels\), got nan"),
        (dict(noise_rate_hz=float("inf")), r"noise_rate_hz must be a finite number >= 0, got inf"),
        (dict(threshold=True), r"threshold must be a finite number > 0, got True"),
        (dict(saccade_us=float("nan")), r"saccade_us must be an integer > 0, got nan"),
        (dict(refractory_us=2.5), r"refractory_us must be an integer >= 0, got 2.5"),
        (dict(saccade_us=10**9, dt_us=1), r"1000000 simulation steps|3000000000 simulation steps"),
    ],
)
def test_bad_parameters_refused_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        SaccadeEmulator(**kw)


def test_huge_noise_or_amplitude_refused_before_allocating():
    img = np.zeros((28, 28), np.float32)
    img[10:18, 10:18] = 1.0
    # the cases: a huge noise rate asked numpy for petabytes; a huge amplitude for a huge canvas
    with pytest.raises(ValueError, match=r"noise_rate_hz=1e\+15 gives ~3\.47e\+17 noise events per 34x34"):
        SaccadeEmulator(noise_rate_hz=1e15)(img, seed=0)
    with pytest.raises(ValueError, match=r"amplitude=1e\+06 .* GiB, more than max_bytes"):
        SaccadeEmulator(amplitude=1e6)(img, seed=0)
    with pytest.raises(ValueError, match=r"threshold=1e-40 gives ~.* events for one image"):
        SaccadeEmulator(threshold=1e-40, refractory_us=0, threshold_sigma=0.0)(img, seed=0)
    assert len(SaccadeEmulator(noise_rate_hz=100.0)(img, seed=0)) > 0  # ordinary values still work

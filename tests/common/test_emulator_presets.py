"""Emulator presets (issue 11): 'default' is the class defaults; 'noisy' resembles a real recording."""

from pathlib import Path

import numpy as np
import pytest
from sj_common.data import EMULATOR_PRESETS, MNIST5k, MNIST5kEvents, SaccadeEmulator, emulator_preset

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


def test_presets_parameters_and_errors():
    assert emulator_preset("default") == SaccadeEmulator()  # the earlier twin, numbers unchanged
    noisy = emulator_preset("noisy")
    assert (noisy.threshold, noisy.threshold_sigma, noisy.refractory_us, noisy.noise_rate_hz) == (
        0.5,
        0.08,
        5000,
        5.0,
    )
    assert emulator_preset("noisy", noise_rate_hz=0.0).noise_rate_hz == 0.0
    assert set(EMULATOR_PRESETS) == {"default", "noisy"}
    with pytest.raises(ValueError, match="preset: expected one of"):
        emulator_preset("clean")


def test_noisy_statistics_near_a_real_recording():
    imgs = MNIST5k("val", 0).images[:20]
    seeds = [[0, i] for i in range(20)]
    default = emulator_preset("default").batch(imgs, seeds)
    noisy = emulator_preset("noisy").batch(imgs, seeds)
    n_def, n_noisy = np.mean([len(e) for e in default]), np.mean([len(e) for e in noisy])
    assert 3000 < n_noisy < 5500 and n_noisy < n_def  # fewer signal events, plus ~1,700 noise events
    noise_expected = 34 * 34 * 5.0 * 0.3  # 5 Hz per pixel over 300 ms
    quiet = [e[(e["x"] < 2) & (e["y"] < 2)] for e in noisy]  # a corner the digit never reaches
    assert 0 < np.mean([len(q) for q in quiet]) < 4 * 4 * noise_expected / (34 * 34)
    assert all(abs(e["p"].mean() - 0.5) < 0.05 for e in noisy)
    assert all(e["t"].max() < 300_000 for e in noisy)


@pytest.mark.slow
def test_mnist5k_events_preset(tmp_path):
    a = MNIST5kEvents("val", T=4, preset="noisy", cache_dir=tmp_path)
    assert a.emulator == emulator_preset("noisy")
    assert MNIST5kEvents("val", T=4, cache_dir=tmp_path).emulator == SaccadeEmulator()
    with pytest.raises(ValueError, match="preset"):
        MNIST5kEvents("val", T=4, preset="bogus")


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared/fixtures absent")
def test_noisy_event_count_within_a_third_of_the_real_fixture():
    from sj_common.data.events import _read_bin

    real = len(_read_bin(FIXTURE))
    imgs = MNIST5k("val", 0).images[:20]
    n = np.mean([len(e) for e in emulator_preset("noisy").batch(imgs, [[0, i] for i in range(20)])])
    assert abs(n - real) / real < 1 / 3

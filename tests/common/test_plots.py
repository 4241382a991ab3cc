"""Every plotting function writes a non-empty PNG with labelled axes, and never switches the backend."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sj_common.data import EVENT_DTYPE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _check(fig, path: Path, min_axes: int = 1) -> None:
    """Labelled axes (inspected on the Figure before trusting the file) and a real, non-empty PNG."""
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) >= min_axes
    for ax in axes:
        assert ax.get_xlabel().strip() or ax.get_title().strip(), f"axis without x label: {ax}"
    assert any(ax.get_ylabel().strip() for ax in axes), "no y label"
    # line/bar/image panels carry both labels
    assert any(ax.get_xlabel().strip() and ax.get_ylabel().strip() for ax in axes)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert w > 100 and h > 100 and len(data) > 2000, (w, h, len(data))


def _events(n=600, W=34, H=34, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.empty(n, EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, W, n), rng.integers(0, H, n)
    ev["t"] = np.sort(rng.integers(0, 300_000, n))
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _history(epochs=3, T=4, transfer=True):
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "val_acc1": 50.0 + 10 * e, "train_loss": 2.0 / e}
        if transfer:
            row.update({f"train_cka_{t}": 0.5 + 0.1 * e + 0.01 * t for t in range(T)})
            row.update({f"train_w_{t}": 0.73 - 0.05 * e for t in range(T)})
            p = ((e - 0.5) / epochs) ** 3
            row.update(train_replace_p=p, train_replaced=p + 0.01)
        rows.append(row)
    return rows


@pytest.mark.slow
def test_common_event_frames_curves_rates_bars(tmp_path):
    from sj_common import plots

    fig = plots.plot_event_frames(
        {"real": _events(), "frames": np.random.default_rng(1).poisson(0.2, (4, 2, 34, 34))},
        T=4,
        path=tmp_path / "ev.png",
    )
    _check(fig, tmp_path / "ev.png", min_axes=8)
    # events are binned into T columns labelled by their time window
    assert fig.axes[0].get_xlabel().endswith("ms") and fig.axes[0].get_ylabel() == "real"

    fig = plots.plot_curves(
        {"a": _history(transfer=False), "b": _history(2, transfer=False)},
        extra_keys={"train_loss": "train loss"},
        path=tmp_path / "c.png",
    )
    _check(fig, tmp_path / "c.png", min_axes=2)
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3]  # epochs as the engine writes them (1-based)

    fig = plots.plot_layer_rates({"x": {"l1": 0.1, "l2": 0.2}, "y": {"l1": 0.15}}, path=tmp_path / "r.png")
    _check(fig, tmp_path / "r.png")
    fig = plots.plot_bars({"a": 90.0, "b": 91.5}, path=tmp_path / "b.png")
    _check(fig, tmp_path / "b.png")


def test_frames_to_rgb_colours():
    from sj_common.plots import frames_to_rgb

    f = np.zeros((1, 2, 2, 2), np.float32)
    f[0, 1, 0, 0] = 2.0  # ON
    f[0, 0, 1, 1] = 2.0  # OFF
    rgb = frames_to_rgb(f, scale=2.0)
    assert rgb[0, 0, 1].tolist() == [1.0, 1.0, 1.0]  # no event: white
    assert rgb[0, 0, 0, 0] > rgb[0, 0, 0, 2]  # ON: red
    assert rgb[0, 1, 1, 2] > rgb[0, 1, 1, 0]  # OFF: blue


def test_bad_input_errors_name_the_argument(tmp_path):
    from sj_common import plots

    with pytest.raises(ValueError, match="data: expected events"):
        plots.plot_event_frames({"x": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="runs: no history row holds 'val_acc1'"):
        plots.plot_curves({"a": [{"epoch": 1, "loss": 1.0}]})
    with pytest.raises(ValueError, match="path: expected a .png"):
        plots.plot_bars({"a": 1.0}, path=tmp_path / "x.jpg")


@pytest.mark.slow
def test_calib_plots(tmp_path):
    from sj_calib import plots

    res = {
        "ann_acc": 96.0,
        "T": [1, 2, 4, 8],
        "rho": 4,
        "uncalibrated": {"acc": [80.0, 88.0, 93.0, 95.0], "layer_firing_rate": {"a": 0.2, "b": 0.1}},
        "calibrated": {"acc": [94.0, 95.0, 95.5, 96.0], "layer_firing_rate": {"a": 0.21, "b": 0.12}},
        "offset_histogram": {
            name: {"before": [100, 20, 3, 0], "after": [120, 3, 0, 0], "buckets": ["0", "1", "2", ">=3"]}
            for name in ("a", "b", "c")
        },
    }
    res = json.loads(json.dumps(res))  # as read back from sweep.json
    fig = plots.plot_accuracy_vs_T(res, path=tmp_path / "acc.png")
    _check(fig, tmp_path / "acc.png")
    assert [ln.get_label() for ln in fig.axes[0].lines][1:] == [
        "SNN (plain conversion)",
        "SNN + offset-spike calibration (rho=4)",
    ]
    _check(plots.plot_offset_histogram(res, path=tmp_path / "h.png"), tmp_path / "h.png", min_axes=3)
    _check(plots.plot_firing_rates(res, path=tmp_path / "f.png"), tmp_path / "f.png")
    res["latency"] = {"rho": 4, "per_layer_work": [5, 6, 8, 12], "streaming": [17, 18, 20, 24]}
    from sj_calib.sweep import plot_sweep  # the sweep's own sweep.png goes through sj_calib.plots

    assert plot_sweep(res, tmp_path / "s.png") == tmp_path / "s.png"
    _check(plots.plot_sweep(res), tmp_path / "s.png")
    with pytest.raises(ValueError, match="res: expected a sj_calib sweep result"):
        plots.plot_accuracy_vs_T({"T": [1]})


@pytest.mark.slow
def test_transfer_plots(tmp_path):
    from sj_transfer import plots

    h = _history(4, T=4)
    fig = plots.plot_step_alignment(h, path=tmp_path / "a.png")
    _check(fig, tmp_path / "a.png", min_axes=2)
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 4  # one curve per time step
    _check(plots.plot_replacement(h, path=tmp_path / "r.png"), tmp_path / "r.png")
    table = {
        0.1: {"baseline": [80.0, 82.0], "transfer": [83.0, 84.0]},
        0.2: {"baseline": 90.0, "transfer": 91.0},
    }
    _check(plots.plot_accuracy_vs_ratio(table, path=tmp_path / "t.png"), tmp_path / "t.png")
    with pytest.raises(ValueError, match="history: no train_replaced"):
        plots.plot_replacement(_history(transfer=False))


@pytest.mark.slow
def test_bkd_feature_maps_and_distillation(tmp_path, one_thread):
    import torch
    from sj_bkd.distill import DistillationModel
    from sj_bkd.models import create_model

    from sj_bkd import plots

    torch.manual_seed(0)
    student = create_model("sew_tiny", num_classes=10, width=4, pool_size=3)
    teacher = create_model("cnn_tiny", num_classes=10, width=4, frozen=True)
    x = torch.rand(2, 1, 28, 28)
    model = DistillationModel(
        student, teacher, T=2, mode="mixed", student_layer="layer2", teacher_layer="features", example_input=x
    )
    maps = plots.feature_maps(model, x, seed=0)
    C = maps["teacher"].shape[0]
    assert {k: v.shape[0] for k, v in maps.items()} == {k: C for k in maps}
    dropped = maps["mask"] == 0
    assert np.all(maps["masked"][dropped] == 0) and np.allclose(
        maps["masked"][~dropped], maps["student"][~dropped]
    )
    fig = plots.plot_feature_maps(maps, channels=4, path=tmp_path / "fm.png")
    _check(fig, tmp_path / "fm.png", min_axes=16)
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == ["teacher", "student", "masked", "regenerated"]
    hist = {"student": _history(3, transfer=False), "distilled": _history(3, transfer=False)}
    fig = plots.plot_distillation(
        {"teacher": 97.0, "student": 90.0, "distilled": 92.0},
        hist,
        errors={"student": 0.5},
        path=tmp_path / "d.png",
    )
    _check(fig, tmp_path / "d.png", min_axes=2)


@pytest.mark.slow
def test_plot_modules_never_switch_the_backend():
    """Importing and using every plotting module leaves matplotlib's backend as it was (no use('Agg'))."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import numpy as np\n"
        "import sj_common.plots as c, sj_calib.plots, sj_transfer.plots, sj_bkd.plots\n"
        "c.plot_bars({'a': 1.0})\n"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().lower() == "svg"

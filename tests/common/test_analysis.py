"""sj_common.analysis: Grad-CAM adapter, loss landscapes, CKA maps and their figures (tiny nets, one thread)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sj_common.analysis import (
    METHODS,
    SNNImageClassifier,
    cka_map,
    cka_time_map,
    collect_features,
    default_target_layer,
    evaluate,
    grid,
    landscape_1d,
    landscape_2d,
    linear_cka,
    multistep_reshape,
    plot_cams,
    plot_cka_maps,
    plot_landscapes,
    random_direction,
    snn_cam,
    spatial_layers,
)
from spikingjelly.activation_based import functional, layer, neuron, surrogate

T, SIZE = 2, 12


def tiny_snn(k: int = 2, pool: bool = True) -> nn.Module:
    """conv-BN-LIF at full resolution, then a global-average-pool linear head: [T, B, 2, H, W] -> [T, B, k]."""
    torch.manual_seed(0)
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8)),
        neuron.LIFNode(tau=2.0, step_mode="m", detach_reset=True, surrogate_function=surrogate.ATan()),
        layer.SeqToANNContainer(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)),
        neuron.LIFNode(tau=2.0, step_mode="m", detach_reset=True, surrogate_function=surrogate.ATan()),
        layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, k)),
    )


def patch_batch(n: int, g: torch.Generator, at=None):
    """Class 1: a bright 3x3 patch (both polarities, every step) somewhere on noise; class 0: noise only."""
    x = torch.rand(n, 2, SIZE, SIZE, generator=g) * 0.3
    y = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        if y[i] == 1 or at is not None:
            r, c = at if at is not None else torch.randint(0, SIZE - 3, (2,), generator=g).tolist()
            x[i, :, r : r + 3, c : c + 3] = 1.0
            y[i] = 1
    return x.unsqueeze(0).expand(T, -1, -1, -1, -1).contiguous(), y


@pytest.fixture(scope="module")
def trained_patch_net():
    torch.set_num_threads(1)
    net = tiny_snn()
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(80):
        x, y = patch_batch(32, g)
        functional.reset_net(net)
        loss = F.cross_entropy(net(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    functional.reset_net(net)
    net.eval()
    x, y = patch_batch(64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        acc = (net(x).mean(0).argmax(1) == y).float().mean().item()
    functional.reset_net(net)
    assert acc >= 0.9, f"the tiny net did not learn the planted patch (accuracy {acc})"
    return net


# ----------------------------------------------------------------------------------------------- CAM
@pytest.mark.slow
def test_cam_map_has_input_size_and_follows_the_planted_patch(trained_patch_net):
    pytest.importorskip("pytorch_grad_cam")
    net = trained_patch_net
    g = torch.Generator().manual_seed(2)
    for method in sorted(METHODS):
        peaks = []
        for at in ((1, 1), (8, 8), (1, 8)):
            x, _ = patch_batch(1, g, at=at)
            cam = snn_cam(net, x, method=method, targets=[1])
            assert cam.shape == (1, SIZE, SIZE) and cam.dtype == np.float32
            assert 0.0 <= cam.min() and cam.max() <= 1.0 + 1e-6
            if method.startswith("eigen"):
                continue  # class-agnostic first principal component: its sign is arbitrary, no localisation
            # the maximum (on binary spikes it is a plateau) sits on the patch: every arg-max pixel
            # within the 5x5 receptive field of the patch, their centroid within 1 px of its centre
            rows, cols = np.nonzero(cam[0] >= cam[0].max() - 1e-6)
            assert rows.min() >= at[0] - 2 and rows.max() <= at[0] + 4, (method, at, rows)
            assert cols.min() >= at[1] - 2 and cols.max() <= at[1] + 4, (method, at, cols)
            centre = (rows.mean(), cols.mean())
            assert abs(centre[0] - (at[0] + 1)) <= 1.0 and abs(centre[1] - (at[1] + 1)) <= 1.0, (
                method,
                at,
                centre,
            )
            peaks.append((round(centre[0]), round(centre[1])))
        assert method.startswith("eigen") or len(set(peaks)) == 3, (
            f"{method}: the maximum did not move: {peaks}"
        )


def test_cam_static_image_repeats_it_and_state_is_reset(trained_patch_net):
    pytest.importorskip("pytorch_grad_cam")
    net = trained_patch_net
    x, _ = patch_batch(2, torch.Generator().manual_seed(3), at=(4, 4))
    a = snn_cam(net, x, targets=[1, 1])
    b = snn_cam(net, x[0], T=T, targets=[1, 1])  # the static image, repeated at every step
    np.testing.assert_array_equal(a, b)  # same input, state reset around each call: identical maps
    for m in net.modules():
        if isinstance(m, neuron.BaseNode):
            assert not isinstance(m.v, torch.Tensor), "the network's state was left set after snn_cam"
    with pytest.raises(ValueError, match="T: expected a positive int"):
        snn_cam(net, x[0])
    with pytest.raises(ValueError, match="method: expected one of"):
        snn_cam(net, x, method="nope")


def test_cam_adapter_and_target_layers():
    net = tiny_snn()
    net.eval()
    x = torch.rand(T, 3, 2, SIZE, SIZE)
    model = SNNImageClassifier(net, T)
    folded = x.permute(1, 0, 2, 3, 4).reshape(3, T * 2, SIZE, SIZE)
    with torch.no_grad():
        out = model(folded)
        functional.reset_net(net)
        ref = net(x).mean(0)
        functional.reset_net(net)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"x: expected \[B, T\*C, H, W\]"):
        model(torch.rand(3, 3, SIZE, SIZE))
    names = [n for n, _ in spatial_layers(net, x)]
    # in the order the calls return: conv/BN inside the container ([T*B, ...]), the container, the LIF
    assert names[:4] == ["0.0", "0.1", "0", "1"] and "3" in names and "4" not in names
    assert default_target_layer(net, x)[0] == "3"  # the last spiking layer
    r = multistep_reshape(T)
    t = torch.arange(2 * 3 * 4, dtype=torch.float32).view(T, 3, 4, 1, 1)
    torch.testing.assert_close(r(t), t.mean(0))
    torch.testing.assert_close(r(t.flatten(0, 1)), t.mean(0))
    with pytest.raises(ValueError, match="target layer output"):
        r(torch.rand(3, 4, 1))


# ------------------------------------------------------------------------------------------ landscape
def _eval_batches(n=2, b=16, seed=4):
    g = torch.Generator().manual_seed(seed)
    return [patch_batch(b, g) for _ in range(n)]


def test_landscape_origin_is_the_models_own_loss_exactly(trained_patch_net):
    net = trained_patch_net
    batches = _eval_batches()
    with torch.no_grad():  # the model's loss, computed by hand
        total = 0.0
        for x, y in batches:
            functional.reset_net(net)
            total += float(F.cross_entropy(net(x).mean(0), y, reduction="sum"))
        functional.reset_net(net)
    own = total / sum(len(y) for _, y in batches)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s2 = landscape_2d(net, batches, radius=0.5, points=3, seed=0)
    s1 = landscape_1d(net, batches, radius=0.5, points=5, seed=0)
    assert s2.origin_loss == own and s2.loss[1, 1] == own
    assert s1.origin_loss == own and s1.loss[2] == own
    assert evaluate(net, batches)[0] == own
    assert s2.loss.shape == (3, 3) and s2.evaluations == 9 and s2.betas is not None
    with torch.no_grad():  # TET: the mean over steps of the per-step cross-entropies
        tet = 0.0
        for x, y in batches:
            functional.reset_net(net)
            lg = net(x)
            tet += sum(float(F.cross_entropy(lg[t], y, reduction="sum")) for t in range(T)) / T
        functional.reset_net(net)
    tet /= sum(len(y) for _, y in batches)
    st = landscape_1d(net, batches, radius=0.5, points=3, seed=0, loss="tet")
    assert (
        st.origin_loss == pytest.approx(tet, rel=1e-6)
        and st.origin_loss == evaluate(net, batches, loss="tet")[0]
    )
    with pytest.raises(ValueError, match="loss: expected one of"):
        landscape_1d(net, batches, loss="mse")
    assert np.all(s2.loss[[0, 2], :] != own), "moving along a direction must change the loss"
    for k, v in net.state_dict().items():  # weights (and BN buffers) restored bit-exactly
        assert torch.equal(v, before[k]), k


def test_landscape_1d_points_are_theta_plus_alpha_d(trained_patch_net):
    net = trained_patch_net
    before = [p.detach().clone() for p in net.parameters()]
    batches = _eval_batches(n=1)
    s = landscape_1d(net, batches, radius=0.5, points=3, seed=7)
    d = random_direction(net, 7)
    with torch.no_grad():
        for p, dp in zip(net.parameters(), d):
            p.add_(dp, alpha=0.5)
    moved = evaluate(net, batches)[0]
    with torch.no_grad():
        for p, b in zip(net.parameters(), before):
            p.copy_(b)
    assert moved == pytest.approx(s.loss[2], rel=1e-6) and moved != s.origin_loss


def test_random_direction_is_filter_normalised_and_ignores_bn_and_biases():
    net = tiny_snn()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.mul_(3.0)
    d = random_direction(net, 0)
    for (name, p), dp in zip(net.named_parameters(), d):
        if p.dim() <= 1:
            assert torch.count_nonzero(dp) == 0, name  # BN weights/biases and biases: zero direction
        else:
            torch.testing.assert_close(dp.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
    # seeded per parameter name: a net with one more module gets the same direction on the shared ones
    bigger = nn.Sequential(*tiny_snn(), nn.Linear(2, 3))
    d_big = random_direction(bigger, 0)
    assert len(d_big) == len(d) + 2 and all(torch.equal(a, b) for a, b in zip(d, d_big))
    assert not torch.equal(random_direction(net, 0, index=1)[0], d[0])
    assert not torch.equal(random_direction(net, 1)[0], d[0])


def test_grid_centre_is_exactly_zero_and_bad_points_raise():
    g = grid(0.3, 7)
    assert g[3] == 0.0 and g[0] == -0.3 and g[-1] == 0.3 and len(g) == 7
    with pytest.raises(ValueError, match="points: expected an odd int"):
        grid(1.0, 4)
    with pytest.raises(ValueError, match="radius: expected a positive"):
        grid(0.0, 5)


# ------------------------------------------------------------------------------------------------ CKA
def test_linear_cka_pinned_on_dyadic_inputs():
    x = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    y = torch.tensor([[1.0], [-1.0], [0.0], [0.0]])
    z = torch.tensor([[0.0], [0.0], [1.0], [-1.0]])
    assert linear_cka(x, y) == 0.5  # (x.y)^2 / (|x|^2 |y|^2) = 4 / (4 * 2)
    assert linear_cka(y, z) == 0.0
    assert linear_cka(x, x) == 1.0
    assert linear_cka(x, torch.ones(4, 3)) == 0.0  # constant features: no alignment
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    w = torch.randn(16, 5, dtype=torch.float64)
    assert linear_cka(w, 2.0 * w @ q) == pytest.approx(1.0, abs=1e-12)  # rotation and scale invariant
    with pytest.raises(ValueError, match="y: expected the same number of samples"):
        linear_cka(x, torch.ones(3, 1))


def test_cka_map_of_a_model_against_itself_is_symmetric_with_unit_diagonal(trained_patch_net):
    net = trained_patch_net
    g = torch.Generator().manual_seed(5)
    xs = [patch_batch(8, g)[0] for _ in range(2)]
    layers = ["0", "1", "2", "3", "4"]
    feats = collect_features(net, xs, layers)
    assert feats["1"].shape == (16, T * 8 * SIZE * SIZE) and feats["4"].shape == (16, T * 2)
    m, rows, cols = cka_map(feats)
    assert rows == cols == layers and m.shape == (5, 5)
    np.testing.assert_allclose(np.diag(m), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(m, m.T)
    assert np.all((m >= 0) & (m <= 1 + 1e-12)) and m[0, 4] < 0.99
    m2, _, _ = cka_map(feats, dict(feats))  # both sides computed: still symmetric
    np.testing.assert_allclose(m2, m2.T, rtol=0, atol=1e-14)
    steps = collect_features(net, xs, ["1"], time="steps")["1"]
    assert steps.shape == (T, 16, 8, SIZE, SIZE)
    tm = cka_time_map(steps)
    np.testing.assert_allclose(np.diag(tm), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(tm, tm.T)
    with pytest.raises(ValueError, match="layers: expected module names"):
        collect_features(net, xs, ["nope"])


# -------------------------------------------------------------------------------------------- figures
def _is_png(path):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 100
    assert img[..., :3].std() > 0.01  # not a blank canvas


def _texts(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return [t for t in out if t]


@pytest.mark.slow
def test_plot_cams_writes_a_labelled_image(tmp_path):
    ev = torch.rand(3, T, 2, SIZE, SIZE)
    im = torch.rand(3, 1, SIZE, SIZE)
    cams = {"transfer": np.random.rand(3, SIZE, SIZE), "baseline": np.random.rand(3, SIZE, SIZE)}
    p = tmp_path / "sub" / "cam.png"
    fig = plot_cams(p, ev, im, cams, sample_titles=["a", "b", "c"], title="CAM test")
    _is_png(p)
    texts = _texts(fig)
    for t in ("CAM test", "transfer", "baseline", "static image", "a", "c"):
        assert t in texts, (t, texts)
    with pytest.raises(ValueError, match=r"cams\['x'\]"):
        plot_cams(p, ev, im, {"x": np.zeros((3, 5, 5))})


@pytest.mark.slow
def test_plot_landscapes_writes_a_labelled_image(tmp_path):
    net = tiny_snn()
    net.eval()
    b = _eval_batches(n=1, b=8)
    s2 = landscape_2d(net, b, radius=0.5, points=3)
    s1 = landscape_1d(net, b, radius=0.5, points=3)
    p = tmp_path / "landscape.png"
    fig = plot_landscapes(p, {"A": s2, "B": s2}, {"A": s1}, title="LS test")
    _is_png(p)
    texts = _texts(fig)
    assert "LS test" in texts and "direction 1 (alpha)" in texts and "1-D slices" in texts
    assert any(t.startswith("A\nloss at theta") for t in texts)
    with pytest.raises(ValueError, match=r"surfaces\['A'\]: expected a 2-D Landscape"):
        plot_landscapes(p, {"A": s1})


def test_plot_cka_maps_writes_a_labelled_image(tmp_path):
    m = np.array([[1.0, 0.5], [0.5, 1.0]])
    p = tmp_path / "cka.png"
    fig = plot_cka_maps(
        p, {"model": (m, ["l1", "l2"], ["l1", "l2"])}, xlabel="event", ylabel="static", title="CKA test"
    )
    _is_png(p)
    texts = _texts(fig)
    assert {"CKA test", "model", "event", "static"} <= set(texts)
    with pytest.raises(ValueError, match="does not match"):
        plot_cka_maps(p, {"bad": (m, ["l1"], ["l1", "l2"])})


# ------------------------------------------------------------------------------------- the example
@pytest.mark.slow
def test_transfer_analysis_example_writes_the_three_figures(tmp_path, one_thread):
    """examples/transfer_analysis.py's main() (in-process: a second interpreter would spend most of the
    test importing torch and grad-cam) on saved, untrained and identical transfer/baseline nets."""
    import importlib.util
    import json
    from pathlib import Path

    pytest.importorskip("pytorch_grad_cam")
    recipe = pytest.importorskip("sj_transfer.recipe")
    from sj_common.recipe import Data

    for kind in ("transfer", "baseline"):
        # the engine's best.pt of the packaged config (no results.json: the example falls back to --config)
        cfg = recipe.RECIPE.config("mnist5k", {"method.baseline": kind == "baseline"})
        torch.manual_seed(0)
        model = recipe.RECIPE.build_model(cfg, Data(None, None, None, num_classes=10))
        (tmp_path / kind).mkdir()
        torch.save({"model": model.state_dict(), "epoch": 1, "val_acc1": 0.0}, tmp_path / kind / "best.pt")
    path = Path(__file__).resolve().parents[2] / "examples" / "transfer_analysis.py"
    spec = importlib.util.spec_from_file_location("transfer_analysis_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "fig"
    argv = ["--run-dir", str(tmp_path), "--out", str(out), "--subset", "16", "--grid", "3", "--line", "3"]
    rep = example.main([*argv, "--cka-samples", "16"])
    for f in ("cam.png", "landscape.png", "cka.png"):
        _is_png(out / f)
    assert json.loads((out / "analysis.json").read_text()) == json.loads(json.dumps(rep))
    assert set(rep["landscape"]) == {"transfer", "baseline"} and rep["landscape_loss"] == "tet"
    # the same initial weights and the same directions (seeded per parameter name): the same landscape
    assert rep["landscape"]["transfer"]["loss_at_theta"] == rep["landscape"]["baseline"]["loss_at_theta"]
    diag = rep["cka_diagonal"]["events: transfer (rows) vs baseline (cols)"]
    assert list(diag)[:3] == ["conv1+bn", "lif1", "pool1"] and diag["conv1+bn"] == 1.0
    assert set(rep["seconds"]) >= {"cam", "landscape_transfer", "landscape_baseline", "cka"}

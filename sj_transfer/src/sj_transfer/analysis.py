"""Grad-CAM, loss landscapes and layer-wise CKA maps of a trained transfer run and its event-only baseline.

The three figures of :mod:`sj_common.analysis` for two ``sj-transfer train`` run folders (each with
``best.pt`` and ``results.json``)::

    from sj_transfer.analysis import analyze_runs
    report = analyze_runs("runs/x-transfer", "runs/x-baseline", "runs/x-figures", subset=64, grid=5, line=9)

* :func:`load_run`: the run's network, rebuilt from its saved typed config through
  :data:`sj_transfer.recipe.RECIPE` (so every ``model.*`` option, e.g. ``shared_head`` / ``bn_per_step``,
  is honoured) and loaded from ``best.pt`` with the engine's safe loader (``weights_only=True``).
* :func:`analysis_data`: a seeded subset of the test split as the recipe reads it (``data.cache_dir``,
  ``data.preset``, frames resized to ``data.size``), with the static images encoded as the static branch
  sees them. The embedded default (``data.event: mnist5k``) only.
* :func:`analyze_runs`: writes ``cam.png``, ``landscape.png``, ``cka.png``, ``landscape.npz`` and
  ``analysis.json`` (the returned report) to ``out``.

Cost (2 CPU cores, one thread, the embedded default at T = 8, 17 x 17): the 2-D landscapes dominate,
``grid**2 + line`` evaluations of ``subset`` samples per model; 11 x 11 on 256 samples takes a few
minutes, 5 x 5 on 64 samples seconds. ``analysis.json`` ``seconds`` records the wall time of every part.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .models import TransferVGGSNN
    from .recipe import TransferConfig

__all__ = ["KINDS", "load_run", "analysis_data", "analyze_runs", "layer_names"]

KINDS = ("transfer", "baseline")


def load_run(
    run_dir: str | Path, *, config: str | Path = "mnist5k", baseline: bool | None = None
) -> tuple[TransferVGGSNN, TransferConfig, dict]:
    """``(network in eval mode, its typed config, results dict)`` of a ``sj-transfer train`` run folder.

    The config is ``results.json``'s ``recipe.config`` (:meth:`Recipe.from_dict`); a folder without one
    (only ``best.pt``) falls back to ``config`` (a packaged config name or a YAML path) with
    ``method.baseline`` set to ``baseline`` when given. The model is built by ``RECIPE.build_model`` and
    ``best.pt`` read by :meth:`Recipe.load_trained` (``sj_common.engine.load_checkpoint``: weights only, a
    checkpoint that does not fit the model is a ``CheckpointError`` naming the file).
    """
    from sj_common.config import UsageError
    from sj_common.recipe import Data

    from .recipe import RECIPE

    run = Path(run_dir)
    if not (run / "best.pt").is_file():
        raise FileNotFoundError(f"run_dir: expected a run folder with best.pt, got {str(run)!r}")
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").is_file() else {}
    saved = (results.get("recipe") or {}).get("config")
    if saved:
        cfg = RECIPE.from_dict(saved, where=str(run / "results.json"))
    else:
        cfg = RECIPE.config(config, {} if baseline is None else {"method.baseline": bool(baseline)})
    if cfg.data.num_classes is None and cfg.data.event != "mnist5k":
        raise UsageError(f"data.num_classes: needed to rebuild the model of {str(run)!r}, got null")
    num_classes = cfg.data.num_classes or 10  # mnist5k: ten digits
    data = Data(None, None, None, num_classes=num_classes, sequence_input=True)
    model = RECIPE.load_trained(cfg, data, checkpoint=run / "best.pt")
    return model.net.eval(), cfg, results


def analysis_data(
    cfg: TransferConfig, n: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded subset of ``n`` test samples of the embedded default, as the recipe reads them.

    Returns ``(events [N, T, 2, S, S], static [N, T, 2, S, S], images [N, 28, 28], y [N])``: the event
    frames of ``MNIST5kEvents`` (``data.cache_dir``, ``data.preset``, ``data.split_seed``, as
    ``RECIPE.build_data``) and the static digits padded to the sensor size and encoded as the static branch
    sees them (``encode_static``: every step and polarity is the image), both resized to ``data.size``
    (area, the recipe's step). ``n`` larger than the test split takes all of it, sorted by index.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sj_common.data import MNIST5kEvents
    from sj_common.data.paired import encode_static

    d = cfg.data
    if d.event != "mnist5k":
        raise ValueError(f"data.event: the analysis reads the embedded default ('mnist5k'), got {d.event!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    T, size = d.T, d.size
    cache = d.cache_dir or str(Path(tempfile.gettempdir()) / "sj_cache")
    ds = MNIST5kEvents("test", T=T, seed=d.split_seed, cache_dir=cache, preset=d.preset, shuffle=False)
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n])
    ev = torch.stack([ds[int(i)][0] for i in idx])  # [N, T, 2, 34, 34]
    y = torch.as_tensor(ds.targets[idx], dtype=torch.long)
    imgs = torch.from_numpy(ds.static.images[idx]).float() / 255.0  # [N, 28, 28]
    pad = (ds.sensor_size[0] - 28) // 2
    st = encode_static(F.pad(imgs[:, None], (pad,) * 4), T, use_hsv=d.use_hsv)

    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (size, size):
            return x
        B = x.shape[0]
        return F.interpolate(x.flatten(0, 1), size=(size, size), mode="area").view(B, T, 2, size, size)

    return resize(ev), resize(st), imgs, y


def _batches(x: torch.Tensor, y: torch.Tensor, bs: int) -> list:
    """``[N, T, ...]`` -> list of ``([T, b, ...], y [b])``."""
    return [(x[i : i + bs].transpose(0, 1).contiguous(), y[i : i + bs]) for i in range(0, len(y), bs)]


def layer_names(net: TransferVGGSNN) -> tuple[list[str], list[str]]:
    """``(module names, labels)`` of ``net.features``: ``conv1+bn``, ``lif1``, ``pool1``, ..."""
    names, labels, k = [], [], {"conv": 0, "lif": 0, "pool": 0}
    for i, mod in enumerate(net.features):
        kind = "lif" if hasattr(mod, "v_threshold") else ("pool" if "Pool" in repr(mod) else "conv")
        k[kind] += 1
        names.append(f"features.{i}")
        labels.append(f"{kind}{k[kind]}" + ("+bn" if kind == "conv" else ""))
    return names, labels


def analyze_runs(
    transfer_dir: str | Path,
    baseline_dir: str | Path,
    out: str | Path,
    *,
    subset: int = 256,
    grid: int = 11,
    line: int = 21,
    radius: float = 1.0,
    cka_samples: int = 256,
    seed: int = 0,
    cam_method: str = "gradcam",
    loss: str = "tet",
    config: str | Path = "mnist5k",
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write ``cam.png``, ``landscape.png``, ``cka.png``, ``landscape.npz`` and ``analysis.json`` to ``out``.

    Args:
        transfer_dir, baseline_dir: ``sj-transfer train`` run folders of the transfer model and of the
            event-only baseline (:func:`load_run`; ``config`` is the fallback for folders without
            ``results.json``). The test data follow the transfer run's config.
        subset: test samples of the loss landscapes; grid: 2-D points per axis (odd); line: 1-D points
            (odd); radius: half-width in filter-normalised units; the same seeded directions for both models.
        cka_samples: test samples of the CKA maps; seed: directions and subsets.
        cam_method: a key of ``sj_common.analysis.METHODS``.
        loss: ``tet`` (the mean per-step cross-entropy, the event objective both models train on) or
            ``ce`` (cross-entropy of the time-averaged logits).
        seconds: times measured before (e.g. training), kept in the report's ``seconds``.

    Figures: ``cam.png``, for one test sample of each of the classes 0..5, the event frames, the static
    image and the CAM (target: the true class; layer: the last LIF) of the transfer model's event head, of
    the baseline and of the transfer model's static head on the static image; ``landscape.png``, the 2-D
    loss contours and 1-D slices of the event head around each model's trained weights; ``cka.png``,
    linear CKA between every feature layer on static (rows) and event (columns) inputs for each model, and
    transfer against baseline on events.

    Returns the report (also ``analysis.json``): ``runs``, ``samples``, ``T``, ``test_acc1_engine``,
    ``landscape`` (per model: ``loss_at_theta``, ``acc_at_theta``, ``mean_rise_2d``,
    ``max_rise_2d_inner_half``, ``curvature_1d_at_theta``, ``mean_rise_1d``, timings), ``landscape_loss``,
    ``cka_diagonal`` (per map: layer label -> CKA), ``seconds``, ``figures``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sj_common.analysis import (
        cka_map,
        collect_features,
        evaluate,
        landscape_1d,
        landscape_2d,
        plot_cams,
        plot_cka_maps,
        plot_landscapes,
        snn_cam,
    )
    from spikingjelly.activation_based import functional

    if loss not in ("tet", "ce"):
        raise ValueError(f"loss: expected 'tet' or 'ce', got {loss!r}")
    for name, v in (("subset", subset), ("cka_samples", cka_samples)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = dict(seconds or {})
    dirs = {"transfer": Path(transfer_dir), "baseline": Path(baseline_dir)}
    nets, cfgs, results = {}, {}, {}
    for kind in KINDS:
        nets[kind], cfgs[kind], results[kind] = load_run(
            dirs[kind], config=config, baseline=kind == "baseline"
        )
    if nets["transfer"].static_head is None and not nets["transfer"].shared_head:
        raise ValueError(
            f"transfer_dir: expected a transfer run (a static head), got a baseline network in "
            f"{str(dirs['transfer'])!r}"
        )
    cfg = cfgs["transfer"]
    n = max(subset, cka_samples)
    ev, st, imgs, y = analysis_data(cfg, n, seed=seed)
    T = ev.shape[1]
    report: dict[str, Any] = {"runs": {k: str(v) for k, v in dirs.items()}, "samples": n, "T": T}
    report["seconds"] = seconds
    report["test_acc1_engine"] = {k: results[k].get("test_acc1") for k in KINDS}

    # 1. Grad-CAM: one sample per class (the first of classes 0..5 in the subset), target = the true class
    t0 = time.perf_counter()
    pick = [int(np.flatnonzero(y.numpy() == c)[0]) for c in range(6) if (y == c).any()]
    evs, sts, ys = ev[pick].transpose(0, 1), st[pick].transpose(0, 1), y[pick].tolist()

    def event_head(net, x):
        return net(x, head="event")

    def static_head(net, x):
        return net(x, head="static")

    cams = {
        "transfer (events)": snn_cam(
            nets["transfer"], evs, method=cam_method, targets=ys, forward=event_head
        ),
        "baseline (events)": snn_cam(
            nets["baseline"], evs, method=cam_method, targets=ys, forward=event_head
        ),
        "transfer (static image)": snn_cam(
            nets["transfer"], sts, method=cam_method, targets=ys, forward=static_head
        ),
    }
    preds = {}
    with torch.no_grad():
        for k in KINDS:
            functional.reset_net(nets[k])
            preds[k] = nets[k](evs).mean(0).argmax(1).tolist()
            functional.reset_net(nets[k])
    titles = [f"label {c}\nT {preds['transfer'][i]} / B {preds['baseline'][i]}" for i, c in enumerate(ys)]
    plot_cams(
        out / "cam.png",
        ev[pick],
        F.interpolate(imgs[pick][:, None], size=ev.shape[-2:], mode="area"),
        cams,
        sample_titles=titles,
        title=f"{cam_method} (target: true class; layer: last LIF); rows: label, predicted by "
        "T(ransfer) / B(aseline)",
    )
    seconds["cam"] = time.perf_counter() - t0

    # 2. Loss landscapes of the event head, the same directions for both models
    sub = _batches(ev[:subset], y[:subset], 128)
    surfaces, lines, land = {}, {}, {}
    for k in KINDS:
        loss0, acc0 = evaluate(nets[k], sub, loss=loss)
        t0 = time.perf_counter()
        lines[k] = landscape_1d(nets[k], sub, radius=radius, points=line, seed=seed, loss=loss)
        surfaces[k] = landscape_2d(nets[k], sub, radius=radius, points=grid, seed=seed + 1, loss=loss)
        seconds[f"landscape_{k}"] = time.perf_counter() - t0
        s, l1 = surfaces[k], lines[k]
        c, h = line // 2, l1.alphas[1] - l1.alphas[0]
        inner = np.abs(s.alphas) <= radius / 2  # the inner half of the grid (contains theta)
        land[k] = {
            "loss_at_theta": loss0,
            "acc_at_theta": acc0,
            "mean_rise_2d": float(np.mean(s.loss - s.origin_loss)),
            "max_rise_2d_inner_half": float(np.max((s.loss - s.origin_loss)[inner][:, inner])),
            "curvature_1d_at_theta": float((l1.loss[c + 1] - 2 * l1.loss[c] + l1.loss[c - 1]) / h**2),
            "mean_rise_1d": float(np.mean(l1.loss - l1.origin_loss)),
            "seconds_2d": s.seconds,
            "seconds_1d": l1.seconds,
            "evaluations": s.evaluations + l1.evaluations,
        }
    plot_landscapes(
        out / "landscape.png",
        surfaces,
        lines,
        title=f"Event-head {loss.upper()} loss around the trained weights ({subset} test samples, "
        f"{grid}x{grid} grid, filter-normalised directions shared by both models)",
        loss_label=f"{loss.upper()} loss",
    )
    np.savez(
        out / "landscape.npz",
        **{f"{k}_2d": surfaces[k].loss for k in KINDS},
        **{f"{k}_1d": lines[k].loss for k in KINDS},
        alphas_2d=surfaces["transfer"].alphas,
        alphas_1d=lines["transfer"].alphas,
    )
    report["landscape"] = land
    report["landscape_loss"] = loss

    # 3. CKA: static vs event inputs, layer by layer, for each model; transfer vs baseline on events
    t0 = time.perf_counter()
    names, labels = layer_names(nets["transfer"])
    m = cka_samples
    xe = [b for b, _ in _batches(ev[:m], y[:m], 128)]
    xs = [b for b, _ in _batches(st[:m], y[:m], 128)]
    feats = {
        (k, src): collect_features(nets[k], xb, names, forward=event_head)
        for k in KINDS
        for src, xb in (("static", xs), ("event", xe))
    }
    maps, report["cka_diagonal"] = {}, {}
    for title, a, b in (
        ("transfer: static (rows) vs event (cols)", ("transfer", "static"), ("transfer", "event")),
        ("baseline: static (rows) vs event (cols)", ("baseline", "static"), ("baseline", "event")),
        ("events: transfer (rows) vs baseline (cols)", ("transfer", "event"), ("baseline", "event")),
    ):
        mat, _, _ = cka_map(feats[a], feats[b])
        maps[title] = (mat, labels, labels)
        report["cka_diagonal"][title] = dict(zip(labels, np.diag(mat).round(4).tolist()))
    plot_cka_maps(
        out / "cka.png",
        maps,
        xlabel="layer",
        ylabel="layer",
        title=f"Linear CKA between layers ({m} test samples, all {T} steps flattened)",
    )
    seconds["cka"] = time.perf_counter() - t0
    report["figures"] = [str(out / f) for f in ("cam.png", "landscape.png", "cka.png")]
    (out / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return report

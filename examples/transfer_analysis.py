"""Grad-CAM, loss landscapes and layer-wise CKA maps of a static-to-event transfer run and its baseline.

One command writes the three figures of ``sj_common.analysis`` for a trained ``sj_transfer`` model and
its event-only baseline on the embedded default (MNIST-5k and its emulated event twin):

    python examples/transfer_analysis.py --run-dir runs/analysis                  # train both if needed
    python examples/transfer_analysis.py --run-dir runs/analysis --epochs 10      # shorter training
    python examples/transfer_analysis.py --run-dir runs/analysis --out docs/analysis

``--run-dir`` holds ``transfer/`` and ``baseline/`` run folders; when one lacks ``best.pt`` it is trained
with the CLI (``sj-transfer train --config CONFIG --out DIR [--baseline] [--epochs N]``, one process,
one thread). The networks are rebuilt from :class:`sj_transfer.models.TransferVGGSNN` and the model
section of the run's ``results.json`` and read from ``best.pt`` with ``torch.load(weights_only=True)``.

Writes to ``--out`` (default ``RUN_DIR/figures``):

* ``cam.png``: for a few test samples (one per class), the event frames, the static image, and the
  Grad-CAM (target: the true class, layer: the last spiking layer) of the transfer model's event head,
  of the baseline, and of the transfer model's static head on the static image.
* ``landscape.png``: 2-D loss contours of the event head around each model's trained weights along
  the same two seeded filter-normalised directions (seeded per parameter name: identical on the shared
  layers), and the 1-D slices. Loss: ``--loss tet`` (default; the mean per-step cross-entropy, the
  event objective both models are trained on) or ``ce`` (cross-entropy of the time-averaged logits).
  Evaluated on a fixed seeded subset of the test split (``--subset``, default 256).
* ``cka.png``: linear CKA between every layer of the feature extractor on static inputs (rows) and on
  event inputs (columns) of the same test samples, for each model; and the transfer model against the
  baseline on event inputs.
* ``analysis.json``: accuracies, the landscape summaries (loss at theta, mean rise over the grid, 1-D
  curvature at theta), the CKA diagonals and the wall time of every part; ``landscape.npz``: the grids.

Cost on 2 CPU cores (one thread): see ``analysis.json`` ``seconds``; the 2-D landscapes (11 x 11 points,
256 samples, both models) dominate and take a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("transfer", "baseline")


def _train(kind: str, out: Path, config: str, epochs: int | None) -> None:
    exe = Path(sys.executable).parent / "sj-transfer"  # the console script of this environment
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "sj_transfer.cli"]
    cmd = [*cli, "train", "--config", config, "--out", str(out)]
    if kind == "baseline":
        cmd.append("--baseline")
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def _packaged_config(name: str) -> dict:
    import importlib.resources

    import yaml

    path = Path(name)
    if not path.is_file():
        path = importlib.resources.files("sj_transfer") / "configs" / f"{name}.yaml"
    return yaml.safe_load(path.read_text())


def load_net(run: Path, kind: str, config: str):
    """``(TransferVGGSNN in eval mode, its config sections, results dict)`` from ``run/best.pt``."""
    from sj_transfer.models import TransferVGGSNN
    from sj_transfer.surrogate import QGateGrad, back_ei_gate_grad

    results = json.loads((run / "results.json").read_text()) if (run / "results.json").is_file() else {}
    cfg = results.get("recipe", {}).get("config") or _packaged_config(config)
    d, m = cfg["data"], cfg.get("model", {})
    alpha = float(m.get("surrogate_alpha", 2.0))
    sg = QGateGrad(alpha) if m.get("surrogate", "qgategrad") == "qgategrad" else back_ei_gate_grad(alpha)
    net = TransferVGGSNN(
        int(d.get("num_classes", 10)),
        in_channels=2,
        image_size=int(d["size"]),
        cfg=list(m.get("cfg", [16, "P", 32, "P"])),
        tau=float(m.get("tau", 2.0)),
        v_threshold=float(m.get("v_threshold", 0.5)),
        surrogate_function=sg,
        static_head=kind == "transfer",
    )
    ckpt = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    state = ckpt["model"] if "model" in ckpt else ckpt
    net.load_state_dict({k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")})
    return net.eval(), cfg, results


def load_data(cfg: dict, n: int, seed: int = 0):
    """Test split of the embedded default: ``(events [N, T, 2, S, S], static [N, T, 2, S, S], images [N, 28, 28], y)``.

    A seeded random subset of ``n`` samples; frames resized to ``data.size`` (area), static images padded
    to the sensor size and encoded as the method's static branch sees them (every step and polarity = the image).
    """
    import tempfile

    from sj_common.data import MNIST5kEvents
    from sj_common.data.paired import encode_static

    d = cfg["data"]
    if d.get("event") != "mnist5k":
        raise SystemExit(
            f"--config: this example analyses the embedded default (mnist5k), got data.event={d.get('event')!r}"
        )
    T, size = int(d["T"]), int(d["size"])
    cache = os.environ.get("SJ_CACHE_DIR", str(Path(tempfile.gettempdir()) / "sj_cache"))
    ds = MNIST5kEvents("test", T=T, seed=int(d.get("split_seed", 0)), cache_dir=cache)
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n])
    ev = torch.stack([ds[int(i)][0] for i in idx])  # [N, T, 2, 34, 34]
    y = torch.as_tensor(ds.targets[idx], dtype=torch.long)
    imgs = torch.from_numpy(ds.static.images[idx]).float() / 255.0  # [N, 28, 28]
    pad = (ds.sensor_size[0] - 28) // 2
    st = encode_static(F.pad(imgs[:, None], (pad,) * 4), T, use_hsv=bool(d.get("use_hsv", True)))

    def resize(x):
        B = x.shape[0]
        return F.interpolate(x.flatten(0, 1), size=(size, size), mode="area").view(B, T, 2, size, size)

    return resize(ev), resize(st), imgs, y


def _batches(x: torch.Tensor, y: torch.Tensor, bs: int):
    """``[N, T, ...]`` -> list of ``([T, b, ...], y [b])``."""
    return [(x[i : i + bs].transpose(0, 1).contiguous(), y[i : i + bs]) for i in range(0, len(y), bs)]


def _layer_names(net) -> tuple[list[str], list[str]]:
    names, labels, k = [], [], {"conv": 0, "lif": 0, "pool": 0}
    for i, mod in enumerate(net.features):
        kind = "lif" if hasattr(mod, "v_threshold") else ("pool" if "Pool" in repr(mod) else "conv")
        k[kind] += 1
        names.append(f"features.{i}")
        labels.append(f"{kind}{k[kind]}" + ("+bn" if kind == "conv" else ""))
    return names, labels


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/analysis", help="holds transfer/ and baseline/ run folders")
    ap.add_argument("--config", default="mnist5k", help="sj_transfer config (for training and as a fallback)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs when a run is missing")
    ap.add_argument("--out", default=None, help="figure folder (default RUN_DIR/figures)")
    ap.add_argument("--cam-method", default="gradcam", help="a key of sj_common.analysis.METHODS")
    ap.add_argument("--subset", type=int, default=256, help="test samples of the loss landscape")
    ap.add_argument("--grid", type=int, default=11, help="2-D landscape points per axis (odd)")
    ap.add_argument("--line", type=int, default=21, help="1-D landscape points (odd)")
    ap.add_argument(
        "--radius", type=float, default=1.0, help="landscape half-width (filter-normalised units)"
    )
    ap.add_argument("--cka-samples", type=int, default=256, help="test samples of the CKA maps")
    ap.add_argument("--seed", type=int, default=0, help="directions and subsets")
    ap.add_argument(
        "--loss",
        default="tet",
        choices=["tet", "ce"],
        help="landscape loss: tet (mean per-step cross-entropy: the event objective both models train on) "
        "or ce (cross-entropy of the time-averaged logits)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

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

    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for kind in KINDS:
        if not (run_dir / kind / "best.pt").is_file():
            t0 = time.perf_counter()
            _train(kind, run_dir / kind, args.config, args.epochs)
            seconds[f"train_{kind}"] = time.perf_counter() - t0
    nets, results = {}, {}
    for kind in KINDS:
        nets[kind], cfg, results[kind] = load_net(run_dir / kind, kind, args.config)
    n = max(args.subset, args.cka_samples)
    ev, st, imgs, y = load_data(cfg, n, seed=args.seed)
    T = ev.shape[1]
    report: dict = {"run_dir": str(run_dir), "samples": n, "T": T, "seconds": seconds}
    report["test_acc1_engine"] = {k: results[k].get("test_acc1") for k in KINDS}

    # 1. Grad-CAM: one sample per class (the first of classes 0..5 in the subset), target = the true class
    t0 = time.perf_counter()
    pick = [int(np.flatnonzero(y.numpy() == c)[0]) for c in range(6) if (y == c).any()]
    evs, sts, ys = ev[pick].transpose(0, 1), st[pick].transpose(0, 1), y[pick].tolist()
    event_head = lambda net, x: net(x, head="event")  # noqa: E731
    static_head = lambda net, x: net(x, head="static")  # noqa: E731
    cams = {
        "transfer (events)": snn_cam(
            nets["transfer"], evs, method=args.cam_method, targets=ys, forward=event_head
        ),
        "baseline (events)": snn_cam(
            nets["baseline"], evs, method=args.cam_method, targets=ys, forward=event_head
        ),
        "transfer (static image)": snn_cam(
            nets["transfer"], sts, method=args.cam_method, targets=ys, forward=static_head
        ),
    }
    with torch.no_grad():
        preds = {}
        for k in KINDS:
            from spikingjelly.activation_based import functional

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
        title=f"{args.cam_method} (target: true class; layer: last LIF); rows: label, predicted by T(ransfer) / B(aseline)",
    )
    seconds["cam"] = time.perf_counter() - t0

    # 2. Loss landscapes (event head, cross-entropy of the time-averaged logits), same directions
    sub = _batches(ev[: args.subset], y[: args.subset], 128)
    surfaces, lines, land = {}, {}, {}
    for k in KINDS:
        loss0, acc0 = evaluate(nets[k], sub, loss=args.loss)
        t0 = time.perf_counter()
        lines[k] = landscape_1d(
            nets[k], sub, radius=args.radius, points=args.line, seed=args.seed, loss=args.loss
        )
        surfaces[k] = landscape_2d(
            nets[k], sub, radius=args.radius, points=args.grid, seed=args.seed + 1, loss=args.loss
        )
        seconds[f"landscape_{k}"] = time.perf_counter() - t0
        s, l1 = surfaces[k], lines[k]
        c, h = args.line // 2, l1.alphas[1] - l1.alphas[0]
        inner = np.abs(s.alphas) <= args.radius / 2  # the inner half of the grid (contains theta)
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
        title=f"Event-head {args.loss.upper()} loss around the trained weights ({args.subset} test samples, "
        f"{args.grid}x{args.grid} grid, filter-normalised directions shared by both models)",
        loss_label=f"{args.loss.upper()} loss",
    )
    np.savez(
        out / "landscape.npz",
        **{f"{k}_2d": surfaces[k].loss for k in KINDS},
        **{f"{k}_1d": lines[k].loss for k in KINDS},
        alphas_2d=surfaces["transfer"].alphas,
        alphas_1d=lines["transfer"].alphas,
    )
    report["landscape"] = land
    report["landscape_loss"] = args.loss

    # 3. CKA: static vs event inputs, layer by layer, for each model; transfer vs baseline on events
    t0 = time.perf_counter()
    names, labels = _layer_names(nets["transfer"])
    m = args.cka_samples
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
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

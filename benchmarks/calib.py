"""Cost of offset-spike calibration: calibrated SNN inference time at T over plain SNN time at T.

Measured side by side in one run (repetitions interleaved, medians), next to the ideal (T + rho) / T
(each calibrated layer does rho pre-simulation + T main neuron updates; the stateless layers run once)
and the goal 1.1 x ideal (issue #13). Prints ratios only; no absolute time is asserted anywhere.
Also prints the share of neurons whose initial potential the calibration moved: only those replay the
rho-step window, so the cost grows with it (``--bias`` raises the input drive and with it that share).

    python benchmarks/calib.py [--T 4 8 16] [--rho 4] [--batch 64] [--reps 7] [--width 16] [--quantile 0.99] [--threads 1]
                               [--path auto|gather|sync_free]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sj_common.threads import apply_thread_policy  # no torch import: call it before importing torch


def build_nets(ann, x, rho: int, quantile: float = 0.99, device="cpu", path: str = "auto"):
    """``(plain SNN, calibrated SNN)`` on ``device`` from the QCFS ``ann`` whose every lambda is first set
    to ``quantile`` of its pre-activation on ``x`` (as a trained lambda sits near the top of them).

    Also used by ``benchmarks/gpu.py`` (the CIFAR VGG-16 on a GPU)."""
    from sj_calib import QCFS, calibrate, convert

    def set_threshold(mod, inputs):
        mod.threshold.data.fill_(float(inputs[0].flatten().quantile(quantile).clamp(min=1e-3)))

    hooks = [m.register_forward_pre_hook(set_threshold) for m in ann.modules() if isinstance(m, QCFS)]
    with _no_grad():
        ann(x)
    for h in hooks:
        h.remove()
    plain = convert(ann).to(device)
    return plain, calibrate(plain, rho=rho, path=path)


def moved_share(cos, x, T: int) -> float:
    """The share of neurons whose initial potential the calibration moved on ``x`` at ``T``."""
    from sj_calib import spiking_layers

    cos.set_record(True)
    with _no_grad():
        cos(x, T=T)
    st = [m.stats() for _, m in spiking_layers(cos)]
    cos.set_record(False)
    return sum(s["lowered"] + s["raised"] + s["saturated"] for s in st) / sum(s["neuron_samples"] for s in st)


def _no_grad():
    import torch

    return torch.no_grad()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--rho", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--width", type=int, default=16)
    p.add_argument(
        "--quantile",
        type=float,
        default=0.99,
        help="each QCFS lambda = this quantile of its pre-activation on the batch (as training sets it)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--path",
        default="auto",
        choices=["auto", "gather", "sync_free"],
        help="calibration path (auto: sync_free on CUDA, gather elsewhere)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: sj_common.threads)")
    args = p.parse_args(argv)
    threads = apply_thread_policy(args.threads)

    import torch
    from sj_calib.models import small_vgg

    dev = torch.device(args.device)
    torch.manual_seed(0)
    ann = small_vgg(L=4, width=args.width).eval()
    x = torch.rand(args.batch, 1, 28, 28)
    plain, cos = build_nets(ann, x, args.rho, args.quantile, dev, path=args.path)
    x = x.to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"small_vgg width {args.width}, batch {args.batch}, rho {args.rho}, path {args.path}, device {dev}, "
        f"{threads} threads, "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start"
    )
    print(
        f"{'T':>4} {'plain ms':>10} {'calib ms':>10} {'ratio':>7} {'ideal':>7} {'goal':>7} {'moved':>7}  verdict"
    )
    worst = 0.0
    with torch.no_grad():
        for T in args.T:
            times = {"plain": [], "cos": []}
            plain(x, T=T), cos(x, T=T)  # warm-up
            for _ in range(args.reps):  # interleaved so load changes hit both alike
                for name, net in (("plain", plain), ("cos", cos)):
                    sync()
                    t0 = time.perf_counter()
                    net(x, T=T)
                    sync()
                    times[name].append(time.perf_counter() - t0)
            moved = moved_share(cos, x, T)
            a, b = statistics.median(times["plain"]), statistics.median(times["cos"])
            ideal = (max(T, args.rho) + args.rho) / T
            goal = 1.1 * ideal
            worst = max(worst, (b / a) / goal)
            verdict = "met" if b / a <= goal else "NOT met"
            print(
                f"{T:>4} {a * 1e3:>10.1f} {b * 1e3:>10.1f} {b / a:>7.2f} {ideal:>7.2f} {goal:>7.2f} "
                f"{moved:>6.1%}  {verdict}"
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"worst ratio / goal: {worst:.2f} (<= 1 meets the goal); load average {load:.2f} at end")


if __name__ == "__main__":
    main()

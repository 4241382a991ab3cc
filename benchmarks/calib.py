"""Cost of offset-spike calibration: calibrated SNN inference time at T over plain SNN time at T.

Measured side by side in one run (repetitions interleaved, medians), next to the ideal (T + rho) / T
(each calibrated layer does rho pre-simulation + T main neuron updates; the stateless layers run once).
Prints ratios only; no absolute time is asserted anywhere.

    python benchmarks/calib.py [--T 4 8 16] [--rho 4] [--batch 64] [--reps 7] [--width 16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from sj_calib.models import small_vgg

from sj_calib import QCFS, calibrate, convert


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--rho", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--width", type=int, default=16)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    ann = small_vgg(L=4, width=args.width).eval()
    for m in ann.modules():
        if isinstance(m, QCFS):
            m.threshold.data.fill_(2.0)
    x = torch.rand(args.batch, 1, 28, 28)
    plain = convert(ann)
    cos = calibrate(plain, rho=args.rho)
    print(
        f"small_vgg width {args.width}, batch {args.batch}, rho {args.rho}, {torch.get_num_threads()} threads"
    )
    print(f"{'T':>4} {'plain ms':>10} {'calib ms':>10} {'ratio':>7} {'ideal (T+rho)/T':>16}")
    with torch.no_grad():
        for T in args.T:
            times = {"plain": [], "cos": []}
            plain(x, T=T), cos(x, T=T)  # warm-up
            for _ in range(args.reps):  # interleaved so load changes hit both alike
                for name, net in (("plain", plain), ("cos", cos)):
                    t0 = time.perf_counter()
                    net(x, T=T)
                    times[name].append(time.perf_counter() - t0)
            a, b = statistics.median(times["plain"]), statistics.median(times["cos"])
            ideal = (max(T, args.rho) + args.rho) / T
            print(f"{T:>4} {a * 1e3:>10.1f} {b * 1e3:>10.1f} {b / a:>7.2f} {ideal:>16.2f}")


if __name__ == "__main__":
    main()

"""Speed and statistics of the saccade event emulator on the embedded MNIST-5k digits.

    .venv/bin/python benchmarks/emulator.py [--n 1000] [--fixture ../shared/fixtures/events/sample_nmnist.bin]

Prints CPU and wall ms per digit (batched and one by one), the build time of ``MNIST5kEvents('train')``,
and events per sample / ON fraction / duration / events per saccade next to a real N-MNIST recording when
the fixture (and tonic) are there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sj_common.data import MNIST5k, MNIST5kEvents, SaccadeEmulator


def _timed(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def _describe(name: str, evs: list[np.ndarray], span_us: int) -> None:
    n = np.array([len(e) for e in evs])
    on = np.array([e["p"].mean() for e in evs])
    dur = np.array([(e["t"].max() - e["t"].min()) / 1e3 for e in evs])
    t = np.concatenate([e["t"] - e["t"].min() for e in evs])
    h, _ = np.histogram(t, bins=30, range=(0, span_us))
    phases = [int(h[i * 10 : (i + 1) * 10].sum() / len(evs)) for i in range(3)]
    print(
        f"{name:>10}: events {n.mean():7.0f} (median {np.median(n):.0f}, p5-p95 {np.percentile(n, 5):.0f}-"
        f"{np.percentile(n, 95):.0f}), ON {on.mean():.3f}, duration {dur.mean():.1f} ms, per saccade {phases}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    default_fixture = Path(__file__).resolve().parents[1].parent / "shared/fixtures/events/sample_nmnist.bin"
    ap.add_argument("--fixture", type=Path, default=default_fixture)
    args = ap.parse_args()

    imgs = MNIST5k("train").images[: args.n]
    emu = SaccadeEmulator()
    evs, c, w = _timed(lambda: emu.batch(imgs, [[0, i] for i in range(len(imgs))]))
    print(f"batched: {c / len(imgs) * 1e3:.2f} ms CPU, {w / len(imgs) * 1e3:.2f} ms wall per digit")
    _, c1, w1 = _timed(lambda: [emu(im, seed=i) for i, im in enumerate(imgs[:100])])
    print(f"one by one: {c1 * 10:.2f} ms CPU, {w1 * 10:.2f} ms wall per digit")
    _, cb, wb = _timed(lambda: MNIST5kEvents("train", T=8))
    print(f"MNIST5kEvents('train', T=8) build: {cb:.1f} s CPU, {wb:.1f} s wall")
    _describe("emulated", evs, emu.duration_us)
    if args.fixture.is_file():
        try:
            import tonic
        except ImportError:
            return
        real = tonic.io.read_mnist_file(str(args.fixture), dtype=tonic.datasets.NMNIST.dtype)
        _describe("real", [real], int(real["t"].max() - real["t"].min()) + 1)


if __name__ == "__main__":
    main()

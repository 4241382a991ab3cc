"""Overhead of sj_common.engine.fit over a bare training loop (same model, data, optimizer).

    .venv/bin/python benchmarks/engine.py [--steps 20] [--repeats 2] [--batch-size 32] [--T 4]

Prints ms per step for both and the engine's overhead in %. The engine adds per step: top-1/top-5
counting, a few ``.item()`` reads, TensorBoard scalars and a tqdm update (both on here, as in real runs).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from sj_common.compat import lif_node
from sj_common.engine import TrainConfig, classification_step, fit, seed_everything
from spikingjelly.activation_based import functional, layer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        layer.Conv2d(2, 16, 3, padding=1, step_mode="m"),
        lif_node(),
        layer.MaxPool2d(2, step_mode="m"),
        layer.Conv2d(16, 32, 3, padding=1, step_mode="m"),
        lif_node(),
        layer.MaxPool2d(2, step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(32 * 8 * 8, 10, step_mode="m"),
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    n = a.steps * a.batch_size
    x = torch.rand(n, a.T, 2, 32, 32)
    data = TensorDataset(x, torch.randint(0, 10, (n,)))

    def bare_loop() -> float:
        net = model()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        t = time.perf_counter()
        for xb, yb in DataLoader(data, batch_size=a.batch_size, shuffle=True):
            loss = F.cross_entropy(net(xb.transpose(0, 1)).mean(0), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            functional.reset_net(net)
        return (time.perf_counter() - t) / a.steps * 1e3

    def engine_fit() -> float:
        with tempfile.TemporaryDirectory() as out:
            cfg = TrainConfig(out=out, epochs=1, batch_size=a.batch_size, device="cpu", progress=True)
            t = time.perf_counter()
            fit(model(), data, config=cfg, step=classification_step(True))
            return (time.perf_counter() - t) / a.steps * 1e3

    # interleaved repeats, best of each: other load on the machine hits both alike
    times = [(bare_loop(), engine_fit()) for _ in range(a.repeats)]
    bare, engine = min(t[0] for t in times), min(t[1] for t in times)
    print(f"threads={torch.get_num_threads()} T={a.T} batch={a.batch_size} steps={a.steps}")
    print(
        f"bare loop: {bare:.1f} ms/step; engine.fit: {engine:.1f} ms/step ({100 * (engine / bare - 1):+.1f} %)"
    )


if __name__ == "__main__":
    main()

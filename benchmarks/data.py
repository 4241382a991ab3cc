"""Event pipeline throughput against the training step's consumption (issue #13, item 4).

Pipelines, each in samples per second, through a ``DataLoader`` (batch 32) with 0 and ``--workers`` workers:

* ``nmnist``: N-MNIST ``.bin`` files, read (tonic's reader + event checks) + framed (``ToFrames``, T bins)
  + augmented (torchvision ``RandomCrop(34, padding=34 // 12)``, the transfer spec's event crop). The files are
  copies of the real recording ``../shared/fixtures/events/sample_nmnist.bin`` made in a temporary folder
  at run time (``--files`` of them, in tonic's layout) and deleted at the end; nothing is committed.
* ``nmnist+cache``: the same through the disk cache (``CachedFrames`` / ``FrameCache``): the first epoch
  fills it (``cold``), the second reads it (``warm``); augmentation runs after the cache.
* ``twin``: the emulated twin ``MNIST5kEvents`` (the demo's data): building a split emulates every digit
  (``build``, no cache), a later run loads the counts from the cache (``cached``); items are then indexed
  and augmented (``items``).

Against the consumption of the demo's training step (``benchmarks/contention.py``'s step: batch 32, T=4,
single-threaded as ``sj_common.threads`` sets it), measured in the same run, before and after the
pipelines. Goal: >= 3x the step's consumption with workers. The pipelines run alone here; in training the
workers share the CPUs with the step, so on 2 cores the margin is what lets them keep up. Prints ratios.

    python benchmarks/data.py [--T 4] [--files 320] [--workers 2] [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sj_common.threads import apply_thread_policy  # no torch import: call it before importing torch

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "events" / "sample_nmnist.bin"
GOAL = 3.0


def step_rate(T: int, steps: int) -> float:
    """Samples per second the demo's training step consumes (batch 32, T bins of 2 x 34 x 34)."""
    import torch
    import torch.nn.functional as F
    from sj_common.models import small_spiking_vgg
    from spikingjelly.activation_based import functional

    torch.manual_seed(0)
    net = small_spiking_vgg(cfg=(16, "M", 32, "M", 64, "M"), in_channels=2, num_classes=10, pool_size=4)
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-4)
    x = (torch.rand(T, 32, 2, 34, 34) < 0.05).float()
    y = torch.randint(0, 10, (32,))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x).mean(0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(net)
        if i:
            times.append(time.perf_counter() - t0)
    return 32 / statistics.median(times)


def loader_rate(dataset, workers: int, epochs: int = 1) -> list[float]:
    """Samples per second of each epoch through a DataLoader (batch 32, shuffled, persistent workers).

    Timed from the first batch of each epoch to its end, so the workers' start (a fresh Python importing
    torch, once per run) is left out; the first batch's samples are not counted.
    """
    import torch

    dl = torch.utils.data.DataLoader(
        dataset, batch_size=32, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    rates = []
    for _ in range(epochs):
        it = iter(dl)
        next(it)
        t0, n = time.perf_counter(), 0
        for _, y in it:
            n += len(y)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def make_nmnist_root(tmp: Path, files: int) -> Path:
    """``files`` copies of the real recording in tonic's layout ``NMNIST/Train/<digit>/*.bin``."""
    for i in range(files):
        d = tmp / "NMNIST" / "Train" / str(i % 10)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURE, d / f"{i:05d}.bin")
    return tmp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--files", type=int, default=320)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--twin-split", default="val", help="MNIST5kEvents split to build (val: 500 digits)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    threads = apply_thread_policy(args.threads)

    import torchvision
    from sj_common.data import CachedFrames, FrameCache, MNIST5kEvents
    from sj_common.data.events import event_dataset

    augment = torchvision.transforms.RandomCrop(34, padding=34 // 12)
    print(
        f"T={args.T}, {threads} torch threads, {os.cpu_count()} CPUs, workers 0 and {args.workers}, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    step = [step_rate(args.T, args.steps)]
    rows = []  # (pipeline, workers, samples/s)
    tmp = Path(tempfile.mkdtemp(prefix="sj-data-bench-"))
    try:
        if FIXTURE.is_file():
            root = make_nmnist_root(tmp / "root", args.files)
            ds = event_dataset("nmnist", root, "train", T=args.T, frame_transform=augment, bins="cover")
            plain = event_dataset("nmnist", root, "train", T=args.T, bins="cover")
            for w in (0, args.workers):
                rows.append(("nmnist read+frame+augment", w, loader_rate(ds, w)[0]))
                cache = FrameCache(tmp / f"cache{w}", "nmnist", params_hash=repr(plain.transform))
                cold, warm = loader_rate(CachedFrames(plain, cache, args.T, transform=augment), w, epochs=2)
                rows.append(("nmnist+cache cold (fill)", w, cold))
                rows.append(("nmnist+cache warm", w, warm))
        else:
            print(f"(no {FIXTURE}: N-MNIST rows skipped)")
        t0 = time.perf_counter()
        twin = MNIST5kEvents(args.twin_split, T=args.T, cache_dir=tmp / "twin")
        rows.append((f"twin build ({args.twin_split}, emulate)", 0, len(twin) / (time.perf_counter() - t0)))
        t0 = time.perf_counter()
        twin = MNIST5kEvents(args.twin_split, T=args.T, cache_dir=tmp / "twin", transform=augment)
        rows.append((f"twin cached load ({args.twin_split})", 0, len(twin) / (time.perf_counter() - t0)))
        for w in (0, args.workers):
            rows.append(("twin items+augment", w, loader_rate(twin, w)[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    step.append(step_rate(args.T, args.steps))
    need = statistics.median(step)
    print(f"training step consumes {need:.0f} samples/s (before {step[0]:.0f}, after {step[1]:.0f})")
    print(f"{'pipeline':>34} {'workers':>7} {'samples/s':>10} {'x step':>7} {'goal':>5}  verdict")
    for name, w, rate in rows:
        verdict = "met" if rate / need >= GOAL else "NOT met"
        if name.startswith("twin build"):
            verdict = "(once per run, then in memory)"
        print(f"{name:>34} {w:>7} {rate:>10.0f} {rate / need:>7.1f} {GOAL:>5.1f}  {verdict}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()

"""Cost of the method's extras: a training step with the domain loss and the sliding replacement over the
same two-branch step without them (static and event passes, both TET losses, backward, optimizer step).

Prints per-variant medians and the ratio (goal: <= 1.05). Repetitions are interleaved so machine load
hits both variants alike; no absolute time is asserted. ``build_steps`` is also timed on a GPU by
``benchmarks/gpu.py`` (AMP, peak memory).

    python benchmarks/transfer.py [--reps 30] [--batch 32] [--T 8] [--size 17] [--paper]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from sj_common.compat import set_fastest_backend
from sj_common.engine.util import autocast
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.models import PAPER_CFG, TransferVGGSNN
from sj_transfer.sampler import SlidingReplacement
from sj_transfer.train import TransferModel
from spikingjelly.activation_based import functional

SMALL = (16, "P", 32, "P")


def build_steps(
    batch: int,
    T: int,
    size: int,
    cfg: Sequence = SMALL,
    *,
    classes: int = 10,
    total: int = 30,
    device: str | torch.device = "cpu",
    amp: str = "off",
) -> tuple[dict[str, Callable[[int], None]], torch.nn.Module]:
    """``({"method": step, "plain": step}, net)``: one optimizer step each, ``step(i)`` at iteration ``i``
    of ``total`` (the sliding schedule), on one shared net and optimizer, synthetic inputs on ``device``.

    ``amp``: ``"off"`` or an autocast dtype (``"float16"`` with a GradScaler, as the engine does; CUDA only).
    """
    dev = torch.device(device)
    torch.manual_seed(0)
    net = TransferVGGSNN(classes, image_size=size, cfg=cfg).to(dev)
    set_fastest_backend(net, dev)
    full = TransferModel(net, DomainTransferLoss(T)).to(dev)  # domain loss on, learnable coefficients
    plain = TransferModel(net, DomainTransferLoss(T, regularization="none", domain_loss=False)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    opt.add_param_group({"params": [full.loss.coefficients]})
    on = amp != "off" and dev.type == "cuda"
    scaler = torch.amp.GradScaler(dev.type, enabled=on and amp == "float16")
    sliding = SlidingReplacement("sliding", generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    xs = torch.rand(T, batch, 2, size, size, generator=g).to(dev)
    xe = (torch.rand(T, batch, 2, size, size, generator=g) * 3).floor().to(dev)
    y = torch.randint(0, classes, (batch,), generator=g).to(dev)

    def make(with_method: bool) -> Callable[[int], None]:
        def step(i: int) -> None:
            s = xs
            if with_method:
                s, _ = sliding(xs, xe, i % total, total)
            with autocast(dev, on, "float16" if amp == "off" else amp):
                out = (full if with_method else plain)(s, xe, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(out.loss).backward()
            scaler.step(opt)
            scaler.update()
            functional.reset_net(net)

        return step

    return {"method": make(True), "plain": make(False)}, net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--size", type=int, default=17)
    p.add_argument("--paper", action="store_true", help="the paper's VGG-SNN at 48x48 (slow on a CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    size = 48 if a.paper else a.size
    steps, _ = build_steps(a.batch, a.T, size, PAPER_CFG if a.paper else SMALL, total=a.reps)

    def timed(with_method: bool, i: int) -> float:
        t = time.perf_counter()
        steps["method" if with_method else "plain"](i)
        return time.perf_counter() - t

    for i in range(3):  # warm-up
        timed(True, i), timed(False, i)
    times = {True: [], False: []}
    for i in range(a.reps):
        order = (True, False) if i % 2 == 0 else (False, True)
        for w in order:
            times[w].append(timed(w, i))
    m_full, m_plain = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"two-branch step, B={a.batch}, T={a.T}, {size}x{size}, threads={torch.get_num_threads()}, reps={a.reps}"
    )
    print(f"  with domain loss + sliding : {1e3 * m_full:8.1f} ms (median)")
    print(f"  without                    : {1e3 * m_plain:8.1f} ms (median)")
    print(f"  ratio                      : {m_full / m_plain:8.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()

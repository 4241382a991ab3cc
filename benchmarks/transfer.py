"""Cost of the method's extras: a training step with the domain loss and the sliding replacement over the
same two-branch step without them (static and event passes, both TET losses, backward, optimizer step).

Prints per-variant medians and the ratio (goal: <= 1.05). Repetitions are interleaved so machine load
hits both variants alike; no absolute time is asserted.

    python benchmarks/transfer.py [--reps 30] [--batch 32] [--T 8] [--size 17] [--paper]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.models import PAPER_CFG, TransferVGGSNN
from sj_transfer.sampler import SlidingReplacement
from sj_transfer.train import TransferModel
from spikingjelly.activation_based import functional


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
    torch.manual_seed(0)
    net = TransferVGGSNN(10, image_size=size, cfg=PAPER_CFG if a.paper else [16, "P", 32, "P"])
    full = TransferModel(net, DomainTransferLoss(a.T))  # domain loss on, learnable coefficients
    plain = TransferModel(net, DomainTransferLoss(a.T, regularization="none", domain_loss=False))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    opt.add_param_group({"params": [full.loss.coefficients]})
    sliding = SlidingReplacement("sliding", generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    xs = torch.rand(a.T, a.batch, 2, size, size, generator=g)
    xe = (torch.rand(a.T, a.batch, 2, size, size, generator=g) * 3).floor()
    y = torch.randint(0, 10, (a.batch,), generator=g)

    def step(with_method: bool, i: int) -> float:
        t = time.perf_counter()
        s = xs
        if with_method:
            s, _ = sliding(xs, xe, i, a.reps)
        out = (full if with_method else plain)(s, xe, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        functional.reset_net(net)
        return time.perf_counter() - t

    for i in range(3):  # warm-up
        step(True, i), step(False, i)
    times = {True: [], False: []}
    for i in range(a.reps):
        order = (True, False) if i % 2 == 0 else (False, True)
        for w in order:
            times[w].append(step(w, i))
    m_full, m_plain = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"two-branch step, B={a.batch}, T={a.T}, {size}x{size}, threads={torch.get_num_threads()}, reps={a.reps}"
    )
    print(f"  with domain loss + sliding : {1e3 * m_full:8.1f} ms (median)")
    print(f"  without                    : {1e3 * m_plain:8.1f} ms (median)")
    print(f"  ratio                      : {m_full / m_plain:8.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()

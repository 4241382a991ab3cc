"""torchrun support: process-group set-up, rank helpers and a seeded, resumable sharding sampler."""

from __future__ import annotations

import atexit
import copy
import math
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the run (1 without torchrun)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """True on rank 0 (and always without torchrun): the process that prints and writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"`` -> ``cuda:LOCAL_RANK``."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"TrainConfig.device: expected an available device, got {name!r} but CUDA is not available"
        )
    if name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA).

    Returns whether the run is distributed. An already initialised group is reused, so ``fit`` may be
    called several times in one process (e.g. teacher, then student).
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    atexit.register(_destroy)
    return True


def _destroy() -> None:
    if is_distributed():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a list of numbers over all processes (identity without torchrun)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_gather_object(obj):
    """Every process's ``obj`` as a list indexed by rank (``[obj]`` without torchrun)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


#: Added (times the rank) to the DataLoader generator's seed on ranks > 0: rank 0 keeps the seed of a
#: one-process run, so a one-process run draws what it drew before ranks took part.
_RANK_STRIDE = 2**61 - 1


def loader_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of the training DataLoader's generator, a function of ``(seed, epoch, rank)``.

    The generator seeds the DataLoader's workers (``torch.initial_seed()``, Python's and NumPy's RNGs in a
    worker), so random transforms of a data set run in workers differ per rank, per epoch and per worker,
    and are the same on a resume. Rank 0 (and a one-process run) gets ``seed * 100003 + epoch``.
    """
    return (int(seed) * 100003 + int(epoch) + int(rank) * _RANK_STRIDE) % 2**63


class ShardedSampler(Sampler[int]):
    """Seeded sampler whose order is a function of ``(seed, epoch)`` only, sharded over ranks.

    Why not ``DistributedSampler``: resuming in the middle of an epoch must skip the samples already
    seen without loading them, which needs a ``start`` offset. Like ``DistributedSampler`` it pads the
    order (by repeating its head) to a multiple of ``num_replicas`` when ``pad=True`` so every rank runs
    the same number of steps (needed for DDP), and rank ``r`` takes positions ``r, r + R, r + 2R, ...``.
    With ``pad=False`` (evaluation) nothing is repeated and ranks may get one sample less.

    A subclass changes what one epoch draws by overriding :meth:`epoch_order` (and :attr:`num_items`,
    e.g. :class:`sj_common.data.ClassBalancedSampler`); padding, sharding and ``start`` stay these. The
    engine (``fit(train_sampler=...)``) takes such a sampler as a prototype and makes, for every epoch,
    :meth:`sharded` copies for its rank.

    Args:
        n: data set length.
        seed, epoch: the permutation is ``torch.randperm(n, generator=Generator().manual_seed(seed * 100003 + epoch))``.
        shuffle: False keeps ``0..n-1``.
        rank, num_replicas: this process's shard.
        start: number of this rank's samples to skip (``steps_done * batch_size``).
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        num_replicas: int = 1,
        start: int = 0,
        pad: bool = True,
    ) -> None:
        if n < 1:
            raise ValueError(f"n: expected a non-empty data set, got length {n}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank: expected 0 <= rank < num_replicas={num_replicas}, got {rank}")
        self.n, self.seed, self.epoch, self.shuffle = n, seed, epoch, shuffle
        self.rank, self.num_replicas, self.start, self.pad = rank, num_replicas, start, pad

    @property
    def num_items(self) -> int:
        """Items one epoch draws over all ranks (before padding)."""
        return self.n

    def check_fits(self, length: int, name: str = "train_set") -> None:
        """Refuse a data set of another length than the one the draws index (naming ``name``)."""
        if length != self.n:
            raise ValueError(
                f"{name}: expected a data set of length {self.n} (the sampler's), got length {length}"
            )

    def epoch_order(self) -> list[int]:
        """The whole epoch's indices over all ranks, a function of ``(seed, epoch)``."""
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def set_epoch(self, epoch: int) -> None:
        """Draw ``epoch``'s order from now on (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def sharded(self, *, epoch: int, rank: int, num_replicas: int, start: int = 0) -> ShardedSampler:
        """A copy for ``epoch`` and one rank's shard, skipping that rank's first ``start`` items."""
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank: expected 0 <= rank < num_replicas={num_replicas}, got {rank}")
        out = copy.copy(self)
        out.epoch, out.rank, out.num_replicas, out.start = (
            int(epoch),
            int(rank),
            int(num_replicas),
            int(start),
        )
        return out

    def _order(self) -> list:
        order = self.epoch_order()
        if self.pad:
            n = len(order)
            total = math.ceil(n / self.num_replicas) * self.num_replicas
            order += (order * math.ceil(total / n))[: total - n]
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.start :])

    def __len__(self) -> int:
        n = self.num_items
        if self.pad:
            per_rank = math.ceil(n / self.num_replicas)
        else:
            per_rank = len(range(self.rank, n, self.num_replicas))
        return max(per_rank - self.start, 0)

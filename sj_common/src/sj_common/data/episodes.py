"""N-way k-shot episodes over any labelled data set (N-Omniglot's few-shot mode:
background classes to train, evaluation classes to test, in episodes).

:class:`FewShotEpisodes` is a torch batch sampler: each batch is one episode, the indices of ``n_way``
classes drawn without replacement, and for each of them ``k_shot`` support then ``k_query`` query samples
(all distinct), class-major: ``[c0 s0..s(k-1) q0.., c1 ...]``. Use it as
``DataLoader(ds, batch_sampler=FewShotEpisodes(ds.targets, 5, 1, 15, episodes=1000))`` with
``NOmniglot(root, split, subset="background")`` for meta-training and ``subset="evaluation"`` for testing
(both splits of the drawers, or build the set twice). Why our own: neither torch, torchvision nor tonic
ships an episode sampler. The labels inside an episode are the data set's; :meth:`FewShotEpisodes.relabel`
maps them to ``0..n_way-1`` in episode order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["FewShotEpisodes"]


class FewShotEpisodes(torch.utils.data.Sampler):
    """Seeded n-way k-shot episodes.

    Args:
        targets: 1-D integer labels (a data set's ``.targets``).
        n_way: classes per episode (>= 2).
        k_shot: support samples per class (>= 1).
        k_query: query samples per class (>= 0).
        episodes: episodes per pass (``len``).
        seed: seeds the draws; every pass (``iter``) continues the same stream, so epochs differ but a
            run repeats.

    Raises ValueError (naming the argument) when fewer than ``n_way`` classes hold ``k_shot + k_query``
    samples.
    """

    def __init__(
        self, targets, n_way: int, k_shot: int, k_query: int = 0, *, episodes: int = 100, seed: int = 0
    ):
        t = np.asarray(targets)
        if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"targets: expected 1-D integer labels, got shape {t.shape} of {t.dtype}")
        for name, v, lo in (
            ("n_way", n_way, 2),
            ("k_shot", k_shot, 1),
            ("k_query", k_query, 0),
            ("episodes", episodes, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
        need = k_shot + k_query
        self.pools = {int(c): np.flatnonzero(t == c) for c in np.unique(t)}
        self.classes = np.array([c for c, idx in self.pools.items() if len(idx) >= need], dtype=np.int64)
        if len(self.classes) < n_way:
            raise ValueError(
                f"n_way: {n_way} classes per episode need {need} samples each (k_shot + k_query), but only "
                f"{len(self.classes)} of the {len(self.pools)} classes have that many"
            )
        self.n_way, self.k_shot, self.k_query, self.episodes = n_way, k_shot, k_query, episodes
        self._rng = np.random.default_rng([int(seed), 0xE915])

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self) -> Iterator[list[int]]:
        need = self.k_shot + self.k_query
        for _ in range(self.episodes):
            chosen = self._rng.choice(self.classes, size=self.n_way, replace=False)
            batch = []
            for c in chosen:
                batch += self._rng.choice(self.pools[int(c)], size=need, replace=False).tolist()
            yield batch

    def relabel(self, labels: torch.Tensor) -> torch.Tensor:
        """An episode's labels ``[n_way * (k_shot + k_query)]`` (class-major, as yielded) -> ``0..n_way-1``."""
        n = self.n_way * (self.k_shot + self.k_query)
        if labels.shape != (n,):
            raise ValueError(f"labels: expected one episode's [{n}] labels, got shape {tuple(labels.shape)}")
        return torch.arange(self.n_way).repeat_interleave(self.k_shot + self.k_query).to(labels.device)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An episode batch ``[n_way * (k_shot + k_query), ...]`` -> ``(support [n_way, k_shot, ...],
        query [n_way, k_query, ...])``."""
        x = x.view(self.n_way, self.k_shot + self.k_query, *x.shape[1:])
        return x[:, : self.k_shot], x[:, self.k_shot :]

"""Tiny random data sets for the first-step tests of the packaged configs (the real data sets are not in
the repository): the shapes are the configs' layouts, the values random, the labels 0, 1, ..."""

import torch
from torch.utils.data import Dataset


class RandomItems(Dataset):
    """``n`` items ``(*tensors, label)``: one random tensor per shape in ``shapes`` (seeded by the index)."""

    def __init__(self, shapes, n: int = 2):
        self.shapes, self.targets = [tuple(s) for s in shapes], list(range(n))
        self.classes = [str(i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return (*(torch.rand(s, generator=g) for s in self.shapes), self.targets[i])

    def batch(self):
        """All items as one collated batch."""
        return torch.utils.data.default_collate([self[i] for i in range(len(self))])

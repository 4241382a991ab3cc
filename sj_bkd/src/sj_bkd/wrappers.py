"""The sj-bkd recipe's data and input wrappers: :class:`PairedFrames` (two framings of one event data set),
:class:`RepeatedInput` (an SNN teacher trained as a classifier) and :class:`ResizedInput` (a teacher that
sees a resized input). Kept out of :mod:`sj_bkd.recipe` so that the config and ``--help`` need no torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .distill import student_input

__all__ = ["PairedFrames", "RepeatedInput", "ResizedInput"]


class PairedFrames(Dataset):
    """``(x_student, x_teacher, y)`` from two framings of the same event samples (student T, teacher T')."""

    def __init__(self, a: Dataset, b: Dataset) -> None:
        if len(a) != len(b) or not np.array_equal(a.targets, b.targets):
            raise ValueError("teacher_T: the two framings of the data set differ in length or labels")
        self.a, self.b, self.targets, self.classes = a, b, a.targets, getattr(a, "classes", None)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i):
        (xa, y), (xb, _) = self.a[i], self.b[i]
        return xa, xb, y


class RepeatedInput(nn.Module):
    """An SNN teacher trained as a classifier: input repeated / framed to ``[T, B, ...]``, logits averaged
    over T (``[B, K]``)."""

    def __init__(self, net: nn.Module, T: int, sequence_input: bool) -> None:
        super().__init__()
        self.net, self.T, self.sequence_input = net, T, sequence_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(student_input(x, self.T, self.sequence_input)).mean(0)


class ResizedInput(nn.Module):
    """A teacher that sees its input resized to ``size`` (``[B, C, H, W]`` -> ``[B, C, size, size]``)."""

    def __init__(self, net: nn.Module, size: int, mode: str = "bilinear") -> None:
        super().__init__()
        self.net, self.size, self.mode = net, size, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(nn.functional.interpolate(x, size=self.size, mode=self.mode, align_corners=False))

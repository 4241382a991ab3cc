"""Small helpers of the engine with no engine dependencies (so every engine module may import them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP (or DataParallel) wrapper; ``model`` itself otherwise."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) tuples, lists and dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def check_dataset(data, name: str) -> None:
    """Refuse anything but a non-empty map-style data set, naming the argument."""
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(
            f"{name}: expected a map-style torch Dataset (with __len__), got {type(data).__name__}"
        )
    if len(data) == 0:
        raise ValueError(f"{name}: expected a non-empty data set, got length 0")


def make_loader(data, batch_size, sampler, workers, collate_fn, device, generator=None) -> DataLoader:
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        generator=generator,  # worker seeds from here, not from the global RNG (keeps resume exact)
        persistent_workers=False,
    )


def autocast(device: torch.device, enabled: bool, dtype: str = "float16"):
    """``torch.autocast`` on CUDA only; CPU runs stay float32 (and exact)."""
    on = enabled and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype), enabled=on)

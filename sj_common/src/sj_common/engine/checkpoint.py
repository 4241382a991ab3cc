"""Atomic checkpoints and the RNG states that make ``--resume`` continue exactly."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (when present) CUDA generator states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). Call it before building the model for a seeded init."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path.tmp`` and rename it onto ``path``: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Read an engine checkpoint (``checkpoint.pt`` / ``best.pt``) and optionally load its weights.

    ``model`` receives ``ckpt["model"]`` (a raw ``state_dict`` file works too); DDP wrappers are
    stripped first. Returns the whole checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: expected an engine checkpoint file, got {str(path)!r}, which does not exist"
        )
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if model is not None:
        from .loop import unwrap

        state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        unwrap(model).load_state_dict(state, strict=strict)
    return ckpt

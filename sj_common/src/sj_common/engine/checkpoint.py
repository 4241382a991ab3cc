"""Checkpoints: atomic writes, safe reads, RNG states, and the :class:`Checkpointer` of a training run.

Every file is read with ``torch.load(weights_only=True)``: a checkpoint holds tensors and plain Python
data only (the RNG states too: NumPy's as a tensor plus plain numbers, Python's as a tuple of ints),
so loading one never runs code. Anything that is not a readable engine checkpoint - missing, a
directory, empty, truncated, garbage, holding Python objects, or weights of another model - gets one
:class:`CheckpointError` naming the file and what is wrong.

Resume policy (``TrainConfig.resume``), enforced by :meth:`Checkpointer.resume` before any training:

* may change: :data:`RESUME_MAY_CHANGE` - ``epochs`` (the run continues to the new count; the cosine
  or step schedule is re-evaluated over the new total from the resume step on), ``out``, ``resume``,
  ``progress``, ``tensorboard``, ``workers``, ``device``, ``checkpoint_every_steps``,
  ``eval_batch_size``, ``find_unused_parameters``, ``deterministic``. Each change is applied and
  recorded in ``results.json`` (``"resumes"``: step, ``{field: [was, now]}``).
* may not change: every other ``TrainConfig`` field (lr, batch_size, optimizer, momentum, weight
  decay, scheduler, warm-up, seed, amp, grad_clip, label smoothing, max_steps_per_epoch, ...): they
  define the trajectory an exact resume reproduces. A change is refused with a ``ValueError`` naming
  each field as ``(was, now)``; start a new run (another ``out``) to change them.
* the model must be the checkpoint's: other keys or shapes are a :class:`CheckpointError`.
* the number of processes may change (with a printed warning): weights and optimizer continue, the
  RNG states are then not restored and the run is not bit-exact.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as D
from .config import TrainConfig
from .util import unwrap

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "RESUME_MAY_CHANGE",
    "atomic_save",
    "atomic_write_json",
    "load_checkpoint",
    "read_checkpoint",
    "check_state_fits",
    "resume_changes",
    "rng_state",
    "set_rng_state",
    "seed_everything",
]

CHECKPOINT, BEST, RESULTS = "checkpoint.pt", "best.pt", "results.json"

#: TrainConfig fields a ``--resume`` may change (see the module docstring); every other field must match.
RESUME_MAY_CHANGE = frozenset(
    {
        "epochs",
        "out",
        "resume",
        "progress",
        "tensorboard",
        "workers",
        "device",
        "checkpoint_every_steps",
        "eval_batch_size",
        "find_unused_parameters",
        "deterministic",
    }
)

#: Keys of a training checkpoint (``checkpoint.pt``); ``best.pt`` holds ``model``, ``epoch``, ``val_acc1``.
TRAINING_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "config",
    "epoch",
    "step_in_epoch",
    "global_step",
)


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message names the file and what is wrong."""


# ----------------------------------------------------------------------------------------------------
# RNG states as tensors and plain data
# ----------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (when initialised) CUDA generator states of this process.

    Plain data only, so ``torch.load(weights_only=True)`` reads it: Python's state is a tuple of ints,
    NumPy's a dict of a uint32 key tensor and plain numbers.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only when the device count matches)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([c.cpu() for c in cuda])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). Call it before building the model for a seeded init."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------


def _atomic_write(path: str | os.PathLike, write) -> None:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: cannot write a file there, it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise OSError(
                f"could not write {path} ({type(exc).__name__}: {exc}); the temporary file was removed "
                f"and {path} is unchanged"
            ) from exc
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path.tmp`` and rename it onto ``path``: a crash never leaves a half-written file.

    On failure (full disk, unwritable folder, an object torch cannot save) the temporary file is
    removed, ``path`` keeps its previous content, and an ``OSError`` names ``path`` and the cause.
    """
    _atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """``json.dump`` with the same guarantees as :func:`atomic_save`."""
    text = json.dumps(obj, indent=2, default=str) + "\n"
    _atomic_write(path, lambda tmp: tmp.write_text(text))


# ----------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line.strip().split(" was not an allowed")[0].replace("WeightsUnpickler error: ", "")
    return (text.splitlines() or [""])[0].strip()[:200]


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear error per way a file can be unusable.

    Raises ``FileNotFoundError`` (no such path) or :class:`CheckpointError` (a directory, an empty,
    truncated or garbage file, or one holding Python objects beyond tensors and plain data - refused
    without running anything), each naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"path: expected an engine checkpoint file, got {str(path)!r}, which does not exist"
        )
    if path.is_dir():
        raise CheckpointError(f"{path}: expected a checkpoint file, got a directory")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            hint = (
                " (an engine checkpoint from before RNG states were stored as plain data holds a pickled "
                "NumPy state: re-create it, or load it yourself with weights_only=False if you trust it)"
                if "numpy" in _first_line(exc)
                else ""
            )
            raise CheckpointError(
                f"{path}: refused to load: it holds Python objects beyond tensors and plain data, which "
                f"could run code ({_first_line(exc)}); nothing in it was run. Only checkpoints written "
                f"by sj_common (or plain state_dicts) are read{hint}"
            ) from None
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint, the file is corrupt or not a checkpoint "
            f"(UnpicklingError: {_first_line(exc)})"
        ) from exc
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint, the file is truncated, corrupt or not a "
            f"checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def check_state_fits(state: Any, model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the first differing keys and shapes unless
    ``state`` loads into ``model`` (missing/unexpected keys count only with ``strict``)."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: expected a checkpoint with a 'model' state_dict (or a state_dict of tensors), "
            f"got {type(state).__name__}"
            + (f" with keys {list(state)[:5]}" if isinstance(state, Mapping) else "")
        )
    target = unwrap(model).state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [
        f"{k} {list(state[k].shape)} in the file vs {list(target[k].shape)} in the model"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    problems = []
    if strict and missing:
        problems.append(f"{len(missing)} key(s) missing from the file, first {missing[:3]}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} key(s) the model does not have, first {unexpected[:3]}")
    if shapes:
        problems.append(f"{len(shapes)} shape(s) differ, first: " + "; ".join(shapes[:3]))
    if problems:
        raise CheckpointError(
            f"{path}: its weights do not fit the model {type(unwrap(model)).__name__} (a checkpoint of "
            "another model or config?): " + "; ".join(problems)
        )


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Read an engine checkpoint (``checkpoint.pt`` / ``best.pt``) and optionally load its weights.

    ``model`` receives ``ckpt["model"]`` (a raw ``state_dict`` file works too); DDP wrappers are
    stripped first. Returns the whole checkpoint dict. The file is read with ``weights_only=True``;
    an unusable file or weights that do not fit ``model`` raise :class:`CheckpointError` naming the
    file (see :func:`read_checkpoint`, :func:`check_state_fits`) before ``model`` is touched.
    """
    ckpt = read_checkpoint(path, map_location)
    if model is not None:
        state = ckpt["model"] if isinstance(ckpt, Mapping) and "model" in ckpt else ckpt
        check_state_fits(state, model, path, strict=strict)
        unwrap(model).load_state_dict(state, strict=strict)
    return ckpt


def resume_changes(saved: Mapping[str, Any], now: TrainConfig) -> tuple[dict, dict]:
    """Split the differences between a checkpoint's config and ``now`` into (allowed, refused) dicts of
    ``{field: (was, now)}`` under the resume policy (fields absent on either side, and ``resume``
    itself, are not compared)."""
    allowed, refused = {}, {}
    current = now.to_dict()
    for key, was in saved.items():
        if key in current and key != "resume" and current[key] != was:
            (allowed if key in RESUME_MAY_CHANGE else refused)[key] = (was, current[key])
    return allowed, refused


# ----------------------------------------------------------------------------------------------------
# The checkpointer of one training run
# ----------------------------------------------------------------------------------------------------


class Checkpointer:
    """Writes and restores the state of one run folder: ``checkpoint.pt`` (exact resume) and ``best.pt``.

    Every rank calls :meth:`save` (per-rank RNG states and partial-epoch sums are gathered); rank 0
    writes. Before each write the weights and optimizer state are checked: non-finite values are never
    saved; the run stops with ``FloatingPointError`` naming the step, and the file keeps the last good
    state.
    """

    def __init__(
        self, out_dir: str | os.PathLike, net: nn.Module, optimizer, scheduler, scaler, config: TrainConfig
    ):
        self.out_dir = Path(out_dir)
        self.path, self.best_path = self.out_dir / CHECKPOINT, self.out_dir / BEST
        self.net, self.optimizer, self.scheduler, self.scaler, self.config = (
            net,
            optimizer,
            scheduler,
            scaler,
            config,
        )
        self.last_saved_step: int | None = None

    def preflight(self) -> None:
        """Refuse, before any training, output paths that could never be written (a directory there)."""
        for p in (self.path, self.best_path, self.out_dir / RESULTS):
            if p.is_dir():
                raise CheckpointError(f"{p}: expected a file path for the run's output, got a directory")

    def _nonfinite(self) -> list[str]:
        named = [(f"model.{k}", t) for k, t in self.net.state_dict().items() if t.is_floating_point()]
        for i, s in enumerate(self.optimizer.state.values()):
            named += [
                (f"optimizer.state[{i}].{k}", t)
                for k, t in s.items()
                if torch.is_tensor(t) and t.is_floating_point()
            ]
        if not named:
            return []
        dev = named[0][1].device  # optimizer step counters may live on the CPU beside CUDA weights
        ok = torch.stack([torch.isfinite(t).all().to(dev) for _, t in named])  # one host read below
        if bool(ok.all()):
            return []
        return [name for (name, _), good in zip(named, ok.tolist()) if not good]

    def check_finite(self, where: str) -> None:
        bad = self._nonfinite()
        if bad:
            kept = (
                f"{self.path} still holds the last finite state (after step {self.last_saved_step})"
                if self.last_saved_step is not None
                else f"nothing was saved to {self.path}"
            )
            raise FloatingPointError(
                f"non-finite weights after {where} (steps count from 1) ({len(bad)} tensor(s), first {bad[:3]}): not saved, "
                f"training stopped; {kept}. Lower the learning rate or set grad_clip"
            )

    def save(self, state: dict[str, Any], elapsed_s: float, where: str) -> None:
        """Write ``checkpoint.pt`` (all ranks must call it). ``where`` names the step in errors."""
        self.check_finite(where)
        parts = D.all_gather_object({"rng": rng_state(), "meter": state["meter"]})
        if D.is_main_process():
            ckpt = {
                "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "config": self.config.to_dict(),
                "world_size": D.world_size(),
                "per_rank": parts,
                **state,
                "elapsed_s": elapsed_s,
            }
            atomic_save(ckpt, self.path)
        self.last_saved_step = state["global_step"]

    def save_best(self, epoch: int, val_acc1: float) -> None:
        """Write ``best.pt`` (rank 0) with the current weights."""
        self.check_finite(f"epoch {epoch} (best.pt)")
        if D.is_main_process():
            atomic_save(
                {"model": self.net.state_dict(), "epoch": epoch, "val_acc1": val_acc1}, self.best_path
            )

    def resume(self, state: dict[str, Any], device: torch.device) -> float | None:
        """Continue from ``checkpoint.pt`` under the resume policy: fills ``state``, restores weights,
        optimizer, scheduler, scaler and (same world size) RNG states. Returns the previous runs' wall
        time, or None when there is no checkpoint yet (the run starts from scratch)."""
        main = D.is_main_process()
        if not self.path.exists():
            if main:
                print(f"resume: no {self.path} yet, starting from scratch", flush=True)
            return None
        ckpt = read_checkpoint(self.path, device)
        if not isinstance(ckpt, Mapping) or any(k not in ckpt for k in TRAINING_KEYS):
            have = list(ckpt)[:6] if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise CheckpointError(
                f"{self.path}: not an engine training checkpoint (expected keys {list(TRAINING_KEYS)}, got "
                f"{have}); best.pt or a bare state_dict holds weights only and cannot be resumed"
            )
        check_state_fits(ckpt["model"], self.net, self.path)
        allowed, refused = resume_changes(ckpt["config"], self.config)
        if refused:
            raise ValueError(
                f"resume: {self.path} was trained with other settings that an exact resume cannot change "
                f"(field: (was, now)): {refused}. Use the checkpoint's values, or start a new run in "
                f"another folder. May change on resume: {sorted(RESUME_MAY_CHANGE)}"
            )
        self.net.load_state_dict(ckpt["model"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"{self.path}: its optimizer/scheduler state does not fit this run ({type(exc).__name__}: {exc})"
            ) from exc
        state.update({k: ckpt[k] for k in state if k in ckpt})
        state.setdefault("resumes", [])
        state["resumes"] = list(state.get("resumes") or []) + [
            {"global_step": ckpt["global_step"], "changed": {k: list(v) for k, v in allowed.items()}}
        ]
        parts = ckpt.get("per_rank") or []
        if len(parts) == D.world_size():
            set_rng_state(parts[D.rank()]["rng"])
            state["meter"] = parts[D.rank()]["meter"]
        elif main:
            print(
                f"resume: checkpoint was written by {ckpt.get('world_size')} processes, now {D.world_size()}: "
                "RNG states not restored, the run continues but not bit-exactly",
                flush=True,
            )
        if allowed and main:
            print(f"resume: applied changes (field: (was, now)): {allowed}", flush=True)
        if main:
            print(f"resumed {self.path} at epoch {state['epoch']}, step {state['global_step']}", flush=True)
        self.last_saved_step = ckpt["global_step"]
        return float(ckpt.get("elapsed_s", 0.0))

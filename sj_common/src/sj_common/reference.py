"""Load the authors' checkpoints of a method into our models: the registry, the safe reader, one error.

>>> load_reference_checkpoint(model, "model_best.pth.tar", source="<name>")

This module knows no model: each source's converter lives in the plugin that owns the models it fills, and
registers itself with :func:`register_source` when its module is imported. A plugin names that module in
its ``sj_common.reference_sources`` entry point (name: the source, value: the module), so
``load_reference_checkpoint(..., source=name)`` (and detection, ``source=None``) finds an installed plugin
that nobody imported yet::

    # a plugin's pyproject.toml
    [project.entry-points."sj_common.reference_sources"]
    my_source = "my_plugin.reference"

    # my_plugin/reference.py
    @register_source("my_source", lambda keys: "encoder.0.weight" in keys, "MyNet -> my_plugin.models")
    def convert(ref, model, extras) -> Conversion: ...

The sj-plugins sources and the distribution that provides each are listed in :data:`PROVIDERS`, only to
name what to install when a source is asked for and not installed.

Everything is decided from the two state dicts' key names and shapes (ours from ``model.state_dict()``),
so a model built on ``torch.device("meta")`` can be loaded too (the tensors are then assigned, not copied).
Anything the converter cannot place (a reference key no rule maps, a key of ours nothing fills, a shape or
a stored constant that differs) is reported in ONE :class:`ReferenceCheckpointError` naming every key;
nothing is loaded then. Files are read with ``torch.load(weights_only=True)`` and an explicit allow-list
(:data:`SAFE_GLOBALS`): a file that needs anything else is refused, never loaded unsafely.

Why not ``torch.load`` + ``load_state_dict`` directly: the reference models are different ``nn.Module``
trees (other names, a Conv1d where we use a 1x1 Conv2d, conv biases where we have none), so a key-level
converter is needed; SpikingJelly and timm ship none for the papers' code bases.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import pickle
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROVIDERS",
    "SAFE_GLOBALS",
    "SOURCES",
    "Conversion",
    "ReferenceCheckpointError",
    "ReferenceSource",
    "convert_reference_state",
    "detect_source",
    "fold_bias",
    "get_source",
    "load_reference_checkpoint",
    "map_keys",
    "our_shapes",
    "register_source",
    "safe_load",
    "unwrap_container",
]

#: The only non-tensor classes a reference file may hold: BKDSNN and timm save ``args`` (argparse.Namespace).
SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)
#: Container keys that hold the weights, in the order they are tried (timm: ``state_dict``, BKDSNN SEW:
#: ``model``; ``state_dict_ema`` only when neither is there or when asked for with ``container_key``).
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model", "state_dict_ema")
#: The entry point group a plugin names its converter module in (name: the source, value: the module).
ENTRY_POINT_GROUP = "sj_common.reference_sources"
#: source -> the distribution that provides it, for the sj-plugins sources: only used to say what to
#: install (``tests/common/test_reference.py`` checks it against the plugins' entry points).
PROVIDERS: dict[str, str] = {"qcfs": "sj-calib", "bkdsnn": "sj-bkd", "transfer_for_dvs": "sj-transfer"}


class ReferenceCheckpointError(ValueError):
    """A reference checkpoint that cannot be loaded: unreadable, or keys/shapes/constants that do not fit."""


@dataclass
class Conversion:
    """What a converter returns.

    ``state``: tensors under our key names. ``used``: reference keys it consumed (mapped, folded,
    concatenated, checked or dropped as unused). ``dropped``: the subset dropped as unused by the reference's
    forward. ``folded``: ``(reference bias key, our BN running_mean key)`` pairs. ``problems``: constants
    that differ from ours, one line each. ``hints``: advice appended to an error.
    """

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)
    folded: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    #: our key -> the reference key it came from
    source_of: dict[str, str] = field(default_factory=dict)

    def put(self, ref_key: str, ours: str, tensor: torch.Tensor) -> None:
        self.state[ours] = tensor
        self.used.add(ref_key)
        self.source_of[ours] = ref_key


Converter = Callable[[Mapping[str, torch.Tensor], nn.Module, Mapping[str, Any]], Conversion]


@dataclass(frozen=True)
class ReferenceSource:
    """A registered source: ``convert(ref_state, model, container_extras) -> Conversion`` and
    ``detect(ref_keys) -> bool`` (used when ``source=None``)."""

    name: str
    convert: Converter
    detect: Callable[[set[str]], bool]
    description: str


#: name -> :class:`ReferenceSource`: the sources registered so far in this process (see :func:`get_source`).
SOURCES: dict[str, ReferenceSource] = {}


def register_source(name: str, detect: Callable[[set[str]], bool], description: str):
    """Decorator registering ``convert`` under ``name`` (each plugin registers its sources this way).

    Registering the same function again (a module reloaded) replaces it; another function under a taken
    name is a ``ValueError`` naming both.
    """

    def wrap(convert: Converter) -> Converter:
        old = SOURCES.get(name)
        where = f"{convert.__module__}.{convert.__qualname__}"
        if old is not None and f"{old.convert.__module__}.{old.convert.__qualname__}" != where:
            raise ValueError(
                f"name: source {name!r} is registered by {old.convert.__module__}.{old.convert.__qualname__}; "
                f"{where} cannot take it too"
            )
        SOURCES[name] = ReferenceSource(name, convert, detect, description)
        return convert

    return wrap


def _load_plugins(name: str | None = None) -> None:
    """Import the converter modules the installed plugins name in :data:`ENTRY_POINT_GROUP` (only those of
    ``name`` when given); importing one registers its sources. A plugin that fails to import is an
    ``ImportError`` naming the entry point."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in SOURCES or (name is not None and ep.name != name):
            continue
        try:
            ep.load()
        except Exception as e:
            dist = getattr(ep.dist, "name", "?")
            raise ImportError(
                f"source {ep.name!r}: the {dist} plugin's converter module {ep.value!r} failed to import: {e}"
            ) from e


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _not_installed(names: Iterable[str]) -> str:
    return ", ".join(f"{n} (pip install {PROVIDERS[n]})" for n in sorted(names) if n not in SOURCES)


def get_source(name: str) -> ReferenceSource:
    """The registered source ``name``, importing the installed plugin that provides it if needed.

    Raises ``ImportError`` saying what to install when ``name`` is an sj-plugins source whose plugin is not
    installed, and ``ValueError`` naming the known sources when ``name`` is none of them.
    """
    if name not in SOURCES:
        _load_plugins(name)
    if name in SOURCES:
        return SOURCES[name]
    if name in PROVIDERS:
        dist = PROVIDERS[name]
        if _installed(dist):  # e.g. an editable install made before the plugin declared its entry point
            raise ImportError(
                f"source: {name!r} checkpoints are read by the {dist} plugin, which is installed but declares no "
                f"{ENTRY_POINT_GROUP!r} entry point for it: reinstall it (pip install --force-reinstall {dist}; "
                "in this repository: bash scripts/setup.sh)"
            )
        raise ImportError(
            f"source: {name!r} checkpoints are read by the {dist} plugin, which is not installed: pip install {dist}"
        )
    _load_plugins()
    missing = _not_installed(PROVIDERS)
    raise ValueError(
        f"source: expected one of {sorted(SOURCES)}, got {name!r}"
        + (f"; not installed: {missing}" if missing else "")
    )


# --------------------------------------------------------------------------------------------- reading


def safe_load(path: str | os.PathLike, *, arg: str = "path") -> Any:
    """``torch.load(path, weights_only=True)`` with :data:`SAFE_GLOBALS` allowed, on the CPU.

    Never falls back to an unsafe load: a file holding any other Python object (or a pickled payload)
    raises :class:`ReferenceCheckpointError` naming the file and what was refused; nothing in it runs.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{arg}: no checkpoint file at {str(p)!r} (nothing is downloaded)")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        why = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[-1] if first else "")
        raise ReferenceCheckpointError(
            f"{arg}: {str(p)!r} holds objects a weights-only load refuses ({why.strip()}); allowed besides "
            f"tensors: {[c.__module__ + '.' + c.__qualname__ for c in SAFE_GLOBALS]}. It is not loaded "
            "unsafely: re-save just its state_dict from a trusted environment."
        ) from e


def unwrap_container(obj: Any, container_key: str | None = None, *, arg: str = "path") -> tuple[dict, dict]:
    """``(state_dict with 'module.' stripped, the other container entries)``.

    ``obj`` is a bare state dict, or a dict holding one under ``container_key`` (default: the first of
    :data:`CONTAINER_KEYS` present).
    """
    if not isinstance(obj, Mapping):
        raise ReferenceCheckpointError(f"{arg}: the file holds a {type(obj).__name__}, expected a dict")
    extras: dict = {}
    if container_key is not None:
        if container_key not in obj or not isinstance(obj[container_key], Mapping):
            raise ReferenceCheckpointError(
                f"container_key: {container_key!r} is not a state dict in the file; its keys: {sorted(obj)}"
            )
        state, extras = obj[container_key], {k: v for k, v in obj.items() if k != container_key}
    elif all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        key = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise ReferenceCheckpointError(
                f"{arg}: no state dict in the file: expected tensors or one of {list(CONTAINER_KEYS)}, "
                f"got keys {sorted(obj)}"
            )
        state, extras = obj[key], {k: v for k, v in obj.items() if k != key}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ReferenceCheckpointError(f"{arg}: state dict entries that are not tensors: {bad[:10]}")
    return {k.removeprefix("module."): v for k, v in state.items()}, extras


# --------------------------------------------------------------------------------------------- helpers


def our_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """``{key: shape}`` of ``model.state_dict()`` (meta tensors too)."""
    return {k: v.shape for k, v in model.state_dict().items()}


def fold_bias(conv: Conversion, ref_key: str, bias: torch.Tensor, bn_prefix: str) -> None:
    """Fold a conv bias into the following BN: ``BN(Wx + b)`` with mean ``mu`` == ``BN(Wx)`` with mean
    ``mu - b`` (train mode too: the batch mean absorbs ``b``). ``bn_prefix`` is ours; its running mean
    must have been mapped already."""
    key = bn_prefix + "running_mean"
    if key not in conv.state:
        conv.problems.append(f"{ref_key}: the BN {bn_prefix[:-1]!r} to fold it into has no running_mean")
        return
    mean = conv.state[key]
    if mean.shape != bias.shape:
        conv.problems.append(
            f"{ref_key}: shape {tuple(bias.shape)} cannot fold into {key} {tuple(mean.shape)}"
        )
        return
    # meta tensors (keys-and-shapes checks): skip the arithmetic, whose meta kernels import torch._prims (s)
    conv.state[key] = torch.empty_like(mean) if mean.is_meta or bias.is_meta else mean - bias
    conv.used.add(ref_key)
    conv.folded.append((ref_key, key))


def map_keys(ref: Mapping[str, torch.Tensor], conv: Conversion, rules: Iterable[tuple[str, Any]]) -> None:
    """Rename by regex rules ``(pattern, replacement)`` (``re.fullmatch``; the first match wins); a
    replacement may be a callable ``(match, tensor) -> (our key, tensor) | None`` (None: leave unmapped)."""
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in ref.items():
        for pat, rep in compiled:
            m = pat.fullmatch(k)
            if m is None:
                continue
            if callable(rep):
                out = rep(m, v)
                if out is not None:
                    conv.put(k, *out)
            else:
                conv.put(k, m.expand(rep), v)
            break


# --------------------------------------------------------------------------------------------- loading


def detect_source(keys: Iterable[str]) -> str:
    """The source whose key signature ``keys`` match (exactly one), among every installed plugin's."""
    keys = set(keys)
    _load_plugins()
    hits = [n for n, s in SOURCES.items() if s.detect(keys)]
    if len(hits) != 1:
        missing = _not_installed(PROVIDERS)
        raise ReferenceCheckpointError(
            f"source: cannot tell the checkpoint's source from its keys (matches: {hits}); "
            f"pass source= one of {sorted(SOURCES)}" + (f" (not installed: {missing})" if missing else "")
        )
    return hits[0]


def convert_reference_state(
    ref: Mapping[str, torch.Tensor],
    model: nn.Module,
    source: str,
    *,
    extras: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    what: str = "checkpoint",
) -> Conversion:
    """Convert ``ref`` (keys already unwrapped and ``module.``-stripped) to ``model``'s keys and check it.

    Raises ONE :class:`ReferenceCheckpointError` listing every reference key left unmapped, every key of
    ours left unset, every shape and stored constant that differs. ``ignore``: ``fnmatch`` patterns of
    reference keys you deliberately leave out (e.g. ``'aux_head.*'`` for a network of ours without that head).
    """
    conv = get_source(source).convert(ref, model, extras or {})
    patterns = list(ignore)
    ignored = {k for k in ref if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    conv.used.update(ignored)
    for k in [k for k, src in conv.source_of.items() if src in ignored]:
        del conv.state[k], conv.source_of[k]
    ours = our_shapes(model)
    unmapped = [k for k in ref if k not in conv.used]
    missing = [k for k in ours if k not in conv.state]
    unexpected = [f"{k} (from {conv.source_of.get(k, '?')})" for k in conv.state if k not in ours]
    shapes = [
        f"{k}: file {tuple(v.shape)}, ours {tuple(ours[k])}"
        for k, v in conv.state.items()
        if k in ours and tuple(v.shape) != tuple(ours[k])
    ]
    lines = []
    if unmapped:
        lines.append(f"reference keys no rule maps ({len(unmapped)}): {unmapped}")
    if missing:
        lines.append(f"keys of ours nothing in the file sets ({len(missing)}): {missing}")
    if unexpected:
        lines.append(f"mapped keys ours does not have ({len(unexpected)}): {unexpected}")
    if shapes:
        lines.append(f"shapes that differ ({len(shapes)}): {shapes}")
    if conv.problems:
        lines.append(f"stored constants / structure that differ: {conv.problems}")
    if lines:
        hint = "".join(f"\n  hint: {h}" for h in conv.hints)
        raise ReferenceCheckpointError(
            f"{what} ({source}) does not fit {type(model).__name__}; nothing was loaded:\n  "
            + "\n  ".join(lines)
            + hint
        )
    return conv


def load_reference_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    source: str | None = None,
    *,
    container_key: str | None = None,
    ignore: Iterable[str] = (),
    assign: bool | None = None,
) -> Conversion:
    """Load an authors' checkpoint file into ``model`` (in place); returns the :class:`Conversion`.

    Args:
        model: our model (the one the source's plugin converts to); DDP / ``torch.compile`` wrappers are
            unwrapped.
        path: the reference file (read weights-only; see :func:`safe_load`).
        source: a registered source (:func:`get_source`; the sj-plugins ones are the keys of
            :data:`PROVIDERS`); None: detected from the key names among every installed plugin's.
        container_key: which entry holds the weights (default ``state_dict``, else ``model``, else
            ``state_dict_ema``); e.g. ``'state_dict_ema'`` for timm's EMA weights.
        ignore: ``fnmatch`` patterns of reference keys to leave out on purpose.
        assign: ``load_state_dict(assign=...)``; default True when ``model`` has meta tensors (it is then
            materialised from the file), else False (values copied into ``model``'s tensors).

    Raises :class:`ReferenceCheckpointError` (a ``ValueError``) with every problem at once and loads
    nothing when the file does not fit; ``FileNotFoundError`` when ``path`` does not exist; ``ImportError``
    (what to install) when the plugin of ``source`` is not installed.
    """
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    target = getattr(target, "_orig_mod", target)
    if source is not None:
        get_source(source)  # an unknown source or a plugin not installed fails before the file is read
    ref, extras = unwrap_container(safe_load(path), container_key)
    src = source if source is not None else detect_source(ref)
    conv = convert_reference_state(ref, target, src, extras=extras, ignore=ignore, what=repr(str(path)))
    if assign is None:
        assign = any(t.is_meta for t in target.state_dict().values())
    target.load_state_dict(conv.state, strict=True, assign=assign)
    return conv

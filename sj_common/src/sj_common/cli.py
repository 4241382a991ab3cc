"""Helpers the plugin command lines share: YAML configs, argparse flags for TrainConfig, a text table.

A plugin CLI reads like::

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mnist5k")
    add_train_args(parser)                                   # --epochs, --lr, --out, --amp/--no-amp, ...
    args = parser.parse_args()
    cfg = load_config(args.config, package="sj_calib")       # path or packaged name
    train = train_config_from(cfg.get("train", {}), args)    # YAML, then only the flags given
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .engine.config import TrainConfig
from .engine.report import format_table, print_table

__all__ = [
    "load_config",
    "available_configs",
    "add_train_args",
    "train_config_from",
    "apply_overrides",
    "print_table",
    "format_table",
]


def available_configs(package: str) -> list[str]:
    """Names of the YAML files shipped in ``<package>/configs/`` (without ``.yaml``)."""
    try:
        folder = resources.files(package) / "configs"
    except ModuleNotFoundError as e:
        raise ValueError(f"package: expected an importable package name, got {package!r}") from e
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(path_or_name: str | Path, package: str | None = None) -> dict[str, Any]:
    """Read a YAML config: a file path, or a bare name resolved to ``<package>/configs/<name>.yaml``.

    Raises ``FileNotFoundError`` naming the path tried (and, for a packaged name, the available
    configs) and ``ValueError`` when the file is not a YAML mapping.
    """
    path = Path(path_or_name)
    text: str | None = None
    if path.is_file():
        text = path.read_text()
        where = str(path)
    elif package is not None and path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        res = resources.files(package) / "configs" / f"{path_or_name}.yaml"
        where = f"{package}/configs/{path_or_name}.yaml"
        if not res.is_file():
            raise FileNotFoundError(
                f"path_or_name: no config {str(path_or_name)!r} in {package}/configs/; "
                f"available: {', '.join(available_configs(package)) or '(none)'}"
            )
        text = res.read_text()
    else:
        hint = f" (and it is not a config name of {package})" if package else ""
        raise FileNotFoundError(
            f"path_or_name: expected a YAML config file, got {str(path)!r}, which does not exist{hint}"
        )
    data = yaml.safe_load(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _base_type(tp: Any) -> type:
    """``int | None`` -> ``int``."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def add_train_args(
    parser: argparse.ArgumentParser, *, group_title: str = "training"
) -> argparse.ArgumentParser:
    """Add one ``--flag`` per :class:`TrainConfig` field (``--batch-size`` and ``--batch_size`` both work).

    Defaults are ``None`` so that only the flags given on the command line override the YAML; booleans
    get ``--amp`` / ``--no-amp`` pairs. Returns ``parser``.
    """
    group = parser.add_argument_group(group_title)
    for name, tp in _field_types().items():
        base = _base_type(tp)
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        default = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)
        shown = "required" if default is dataclasses.MISSING else f"config default {default!r}"
        if base is bool:
            group.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=shown
            )
        else:
            group.add_argument(
                *flags, dest=name, type=base, default=None, metavar=base.__name__.upper(), help=shown
            )
    return parser


def _coerce(name: str, value: Any, tp: Any) -> Any:
    base = _base_type(tp)
    if value is None:
        if type(None) in typing.get_args(tp):
            return None
        raise ValueError(f"{name}: expected {base.__name__}, got None")
    if base is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    if base is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, base) or (base is not bool and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {base.__name__}, got {value!r} ({type(value).__name__})")
    return value


def train_config_from(
    config: Mapping[str, Any] | argparse.Namespace,
    *overrides: Mapping[str, Any] | argparse.Namespace,
    ignore: Iterable[str] = (),
) -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping (e.g. a YAML section) and optional overrides.

    A mapping must hold only TrainConfig fields (plus the names in ``ignore``): unknown keys raise a
    ``ValueError`` naming them. An ``argparse.Namespace`` (from :func:`add_train_args`) contributes only
    its TrainConfig fields that are not ``None``, so other CLI options and flags left out do not
    override. Later arguments win. Values are checked against the field types (``1e-3`` strings
    become floats).
    """
    types = _field_types()
    ignore = set(ignore)
    merged: dict[str, Any] = {}
    for i, src in enumerate((config, *overrides)):
        label = "config" if i == 0 else f"overrides[{i - 1}]"
        if isinstance(src, argparse.Namespace):
            merged.update({k: v for k, v in vars(src).items() if k in types and v is not None})
            continue
        if not isinstance(src, Mapping):
            raise TypeError(f"{label}: expected a mapping or argparse.Namespace, got {type(src).__name__}")
        unknown = sorted(set(src) - set(types) - ignore)
        if unknown:
            raise ValueError(f"{label}: unknown TrainConfig keys {unknown}; valid keys: {sorted(types)}")
        merged.update({k: v for k, v in src.items() if k in types})
    if "out" not in merged:
        raise ValueError("out: expected a run folder (YAML key 'out' or --out), got none")
    return TrainConfig(**{k: _coerce(k, v, types[k]) for k, v in merged.items()})


def apply_overrides(config: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with ``key.sub=value`` assignments applied (values parsed as YAML).

    For method hyperparameters that have no dedicated flag: ``--set method.alpha=0.5``. A missing
    intermediate key is an error naming it (typos must not pass silently).
    """
    out = yaml.safe_load(yaml.safe_dump(dict(config)))  # deep copy of plain data
    for a in assignments:
        key, sep, raw = a.partition("=")
        if not sep or not key:
            raise ValueError(f"assignments: expected 'key.sub=value', got {a!r}")
        *parents, leaf = key.split(".")
        node = out
        for j, p in enumerate(parents):
            if not isinstance(node.get(p), dict):
                raise KeyError(
                    f"assignments: {'.'.join(parents[: j + 1])!r} is not a section of the config ({a!r})"
                )
            node = node[p]
        if leaf not in node:
            raise KeyError(f"assignments: unknown key {key!r}; keys here: {sorted(node)}")
        node[leaf] = yaml.safe_load(raw)
    return out

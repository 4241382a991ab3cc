"""Lazy package exports (PEP 562): ``import sj_calib`` and a command line's ``--help`` load no torch.

Each package ``__init__`` names where its exports live and installs the two hooks::

    _LAZY = {"fit": "loop", "TrainConfig": "config"}   # export -> submodule
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

An export must not share its name with a submodule: once anything imports that submodule, the import system
binds the module onto the package and ``__getattr__`` is never asked again (``tests/common/test_exports.py``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports`` (name -> submodule)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__

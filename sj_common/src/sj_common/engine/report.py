"""What a run reports: package versions for results.json and a short plain-text table."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

# Read through importlib.metadata, so nothing (tonic in particular, GPL-3.0) is imported.
_PACKAGES = (
    "torch",
    "torchvision",
    "spikingjelly",
    "numpy",
    "tonic",
    "sj-common",
    "sj-transfer",
    "sj-bkd",
    "sj-calib",
)


def package_versions() -> dict[str, str]:
    """Versions of python and the installed packages the results depend on (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.2f}"
    return "-" if v is None else str(v)


def format_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], columns: Iterable[str] | None = None
) -> str:
    """A fixed-width text table.

    ``rows`` is a list of dicts (one line each; columns from ``columns`` or the union of keys in
    order) or a single mapping, shown as two columns ``metric | value``. Floats print with 2 decimals.
    """
    if isinstance(rows, Mapping):
        rows = [{"metric": k, "value": v} for k, v in rows.items()]
    rows = list(rows)
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    columns = list(columns)
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [" | ".join(s.ljust(w) for s, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], columns: Iterable[str] | None = None
) -> None:
    """Print :func:`format_table` (call it on rank 0 only under torchrun)."""
    print(format_table(rows, columns), flush=True)

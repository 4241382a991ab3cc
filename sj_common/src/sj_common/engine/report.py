"""What a run reports: package versions for results.json and a short plain-text table."""

from __future__ import annotations

import functools
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

# Read through importlib.metadata, so nothing (tonic in particular, GPL-3.0) is imported.
_PACKAGES = ("torch", "torchvision", "spikingjelly", "numpy", "tonic", "sj-common")
_SJ_COMMON = re.compile(r"sj[-_.]common(?![\w.-])", re.IGNORECASE)


@functools.cache
def _plugins() -> tuple[str, ...]:
    """The installed distributions that require sj-common (the plugins; none is named here). Cached: reading
    every distribution's metadata takes a few tenths of a second."""
    found = set()
    for dist in metadata.distributions():
        if any(_SJ_COMMON.match(req) for req in dist.requires or ()):
            found.add(dist.metadata["Name"])
    return tuple(sorted(found))


def package_versions() -> dict[str, str]:
    """Versions of python, the installed packages the results depend on (absent ones left out) and every
    installed plugin of sj-common."""
    out = {"python": platform.python_version()}
    for name in (*_PACKAGES, *_plugins()):
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


class RunReport:
    """Everything a training run shows and writes besides checkpoints, on rank 0 only.

    * a tqdm bar per epoch (``progress``), its postfix (mean loss since the last update, lr) refreshed
      every ``log_every`` steps and at epoch end - never per step, so no per-step host sync;
    * one line per epoch (``progress``): train/val loss and top-1;
    * TensorBoard scalars under ``out/tb`` (``tensorboard``): ``train/loss_step`` (the mean loss over
      the last ``log_every`` steps) and ``train/lr`` at each update, every epoch row's numbers;
    * at the end ``results.json`` and a short table.
    """

    def __init__(
        self, out_dir, *, main: bool, progress: bool, tensorboard: bool, epochs: int, purge_step: int = 0
    ) -> None:
        from pathlib import Path

        self.out_dir, self.main, self.progress, self.epochs = Path(out_dir), main, progress, epochs
        self.writer = None
        if main and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=purge_step or None)
        self.bar = None

    def start_epoch(self, epoch: int, steps_per_epoch: int, start: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=steps_per_epoch,
            initial=start,
            desc=f"epoch {epoch + 1}/{self.epochs}",
            leave=False,
            disable=not (self.main and self.progress),
            dynamic_ncols=True,
        )

    def step(self) -> None:
        self.bar.update(1)

    def log(self, global_step: int, loss: float, lr: float) -> None:
        """An update at a logging interval (the caller has read ``loss`` back to the host once)."""
        if self.main:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
        if self.writer is not None:
            self.writer.add_scalar("train/loss_step", loss, global_step)
            self.writer.add_scalar("train/lr", lr, global_step)

    def end_epoch(self, row: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
        epoch = row["epoch"]
        if self.writer is not None:
            for k, v in row.items():
                if (
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and k != "epoch"
                    and not k.endswith("_n")
                ):
                    self.writer.add_scalar(k.replace("_", "/", 1), v, epoch)
            self.writer.flush()
        if self.main and self.progress:
            keys = ("train_loss", "train_acc1", "val_loss", "val_acc1")
            print(
                f"epoch {epoch}/{self.epochs} "
                + " ".join(f"{k}={row[k]:.4f}" for k in keys if isinstance(row.get(k), float)),
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finish(self, results: Mapping[str, Any], path) -> None:
        """Write ``results.json`` to ``path`` and print the summary table (rank 0)."""
        self.close()
        if not self.main:
            return
        from .checkpoint import atomic_write_json

        atomic_write_json(results, path)
        history = results.get("history") or []
        last = history[-1] if history else {}
        print_table(
            {
                "epochs": len(history),
                "train_acc1": last.get("train_acc1"),
                "best_val_acc1": results.get("best_val_acc1"),
                "test_acc1": results.get("test_acc1"),
                "test_acc5": results.get("test_acc5"),
                "wall_time_s": results.get("wall_time_s"),
                "results": str(path),
            }
        )

"""``sj-transfer``: train static-to-event transfer (or its event-only baseline) from a YAML config.

    sj-transfer train --config mnist5k --out runs/transfer
    sj-transfer train --config mnist5k --baseline --out runs/baseline
    sj-transfer train --config ncaltech101_r0.1 --data-root ~/data --epochs 300
    torchrun --nproc_per_node=2 -m sj_transfer.cli train --config cifar10dvs --data-root ~/data
    sj-transfer configs                      # list the packaged configs

Every TrainConfig field has a flag (``--epochs``, ``--lr``, ``--seed``, ``--amp/--no-amp``, ...);
``--train-ratio`` and ``--T`` set the data section; ``--set section.key=value`` sets anything else
(``--set method.sliding=no_sliding``). Writes ``results.json`` (engine) to ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import sys

from sj_common.cli import add_train_args, apply_overrides, available_configs, load_config, print_table

PACKAGE = "sj_transfer"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sj-transfer", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the method (or --baseline) through the shared engine")
    t.add_argument(
        "--config", default="mnist5k", help="YAML path or packaged name (see `sj-transfer configs`)"
    )
    t.add_argument("--data-root", default=None, help="local folder with the real data sets (not for mnist5k)")
    t.add_argument("--baseline", action="store_true", help="train the same network on event data alone")
    t.add_argument(
        "--train-ratio", type=float, default=None, help="fraction of event training samples per class"
    )
    t.add_argument("--T", type=int, default=None, help="time steps")
    t.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    add_train_args(t)
    sub.add_parser("configs", help="list the packaged configs")
    return p


def main(argv=None) -> dict | None:
    args = _parser().parse_args(argv)
    if args.command == "configs":
        print("\n".join(available_configs(PACKAGE)))
        return None
    from .recipe import run

    cfg = load_config(args.config, package=PACKAGE)
    if args.train_ratio is not None:
        if not 0.0 < args.train_ratio <= 1.0:
            raise SystemExit(f"--train-ratio: expected a value in (0, 1], got {args.train_ratio}")
        cfg["data"]["train_ratio"] = args.train_ratio
    if args.T is not None:
        cfg["data"]["T"] = args.T
    cfg = apply_overrides(cfg, args.assignments)
    train = dict(cfg.get("train", {}))
    from sj_common.engine import TrainConfig

    overrides = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names() and v is not None}
    if "out" not in overrides and "out" not in train:
        kind = "baseline" if args.baseline else "transfer"
        overrides["out"] = f"runs/{cfg.get('name', 'transfer')}-{kind}"
    out = overrides.pop("out", train.pop("out", None))
    cfg["train"] = train
    res = run(cfg, out, data_root=args.data_root, baseline=args.baseline, train_overrides=overrides)
    from sj_common.engine import is_main_process

    if is_main_process():
        print_table(
            [
                {
                    "method": res.get("method"),
                    "train_ratio": res.get("train_ratio"),
                    "best_val_acc1": res.get("best_val_acc1"),
                    "test_acc1": res.get("test_acc1"),
                    "wall_time_s": res.get("wall_time_s"),
                }
            ]
        )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])

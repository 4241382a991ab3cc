"""``sj-bkd``: train ANN teachers and distil SpikingJelly students through the shared engine.

sj-bkd train --config mnist5k --teacher train --out runs/bkd
sj-bkd train --config imagenet_sew34_r34 --data-root ~/data/imagenet --teacher-weights r34.pth
torchrun --nproc_per_node=4 -m sj_bkd.cli train --config cifar100_cml4_384_vits --data-root ~/data ...
sj-bkd list
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from .distill import MODES
from .recipe import list_configs, load_config, run


def _set(cfg: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ValueError(f"--set: expected key.sub=value, got {assignment!r}")
    key, value = assignment.split("=", 1)
    node = cfg
    *path, last = key.split(".")
    for p in path:
        node = node.setdefault(p, {})
    node[last] = yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sj-bkd", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="(train the teacher, then) distil the student")
    t.add_argument(
        "--config", default="mnist5k", help=f"YAML file or packaged name: {', '.join(list_configs())}"
    )
    t.add_argument("--out", default=None, help="run folder (default runs/bkd/<config>)")
    t.add_argument("--data-root", default=None, help="local data folder (real data sets; never downloads)")
    t.add_argument(
        "--teacher",
        choices=("load", "train"),
        default="load",
        help="load weights, or train the ANN teacher first",
    )
    t.add_argument(
        "--teacher-weights", default=None, help="local teacher checkpoint (.pt/.pth; .npz for timm ViTs)"
    )
    t.add_argument(
        "--mode",
        default=None,
        choices=MODES,
        help="override distill.mode (lasnn taps student.layers/teacher.layers)",
    )
    t.add_argument("--resume", action="store_true", help="continue from <out>/student/checkpoint.pt")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None)
    t.add_argument("--max-steps-per-epoch", type=int, default=None, help="smoke tests")
    t.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. distill.lam=0.4"
    )
    t.add_argument("--no-progress", action="store_true")
    sub.add_parser("list", help="packaged configs and models")
    return parser


def main(argv: list[str] | None = None) -> dict | None:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        from .models import list_models

        print("configs:", ", ".join(list_configs()))
        for k, v in list_models().items():
            print(f"{k}:", ", ".join(v))
        return None
    cfg = load_config(args.config)
    for a in args.set:
        _set(cfg, a)
    if args.mode:
        cfg.setdefault("distill", {})["mode"] = args.mode
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "resume": args.resume or None,
        "max_steps_per_epoch": args.max_steps_per_epoch,
        "progress": False if args.no_progress else None,
    }
    out = Path(args.out or f"runs/bkd/{Path(str(args.config)).stem}")
    res = run(
        cfg,
        out,
        teacher=args.teacher,
        teacher_weights=args.teacher_weights,
        data_root=args.data_root,
        overrides=overrides,
    )
    rows = {k: {m: v.get(m) for m in ("best_val_acc1", "test_acc1")} for k, v in res.items()}
    print(json.dumps(rows, indent=1))
    return res


if __name__ == "__main__":
    main()

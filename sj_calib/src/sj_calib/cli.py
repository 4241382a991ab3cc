"""``sj-calib train | convert | calibrate | sweep`` (also ``python -m sj_calib.cli`` / ``torchrun -m sj_calib.cli``).

* ``train``: the QCFS ANN through ``sj_common.engine.fit`` (DDP under torchrun, AMP on CUDA, resume,
  model selection on the validation split); writes ``best.pt`` and ``results.json`` to ``--out``.
* ``convert``: the uncalibrated QCFS SNN (IF neurons, v_0 = theta/2) at every T of ``--T``.
* ``calibrate``: the offset-spike calibrated SNN at every T, with the offset-spike histogram.
* ``sweep``: ANN vs uncalibrated vs calibrated, firing rates, SynOps/energy, latency, ``sweep.png``.

``convert``/``calibrate``/``sweep`` need ``--checkpoint`` (a ``best.pt`` of ``train``) and evaluate on the
test split on one process (rank 0 under torchrun). Method options come from the config's ``calib``
section and can be overridden (``--rho 8 --T 1 2 4 --shift theta``) or with ``--set calib.iterations=2``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from sj_common.cli import add_train_args

    p = argparse.ArgumentParser(prog="sj-calib", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("train", "convert", "calibrate", "sweep"):
        s = sub.add_parser(name, help=name)
        s.add_argument("--config", default="mnist5k", help="YAML path or packaged name (default mnist5k)")
        s.add_argument("--data-root", "--data_root", dest="data_root", default=None)
        s.add_argument(
            "--set",
            dest="assignments",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override any config entry, e.g. --set model.L=8",
        )
        if name == "train":
            add_train_args(s)  # --out, --epochs, --lr, --resume, ...
        else:
            s.add_argument(
                "--checkpoint", required=True, help="best.pt of `sj-calib train` (or a state dict)"
            )
            s.add_argument(
                "--out", default=None, help="output folder (default: <checkpoint folder>/<command>)"
            )
            s.add_argument("--T", type=int, nargs="+", default=None, help="time steps to read out")
            s.add_argument("--rho", type=int, default=None)
            s.add_argument("--shift", choices=("reference", "theta"), default=None)
            s.add_argument("--saturate", choices=("reference", "skip"), default=None)
            s.add_argument("--iterations", type=int, default=None)
            s.add_argument("--fold-bn", dest="fold_bn", action=argparse.BooleanOptionalAction, default=None)
            s.add_argument("--batch-size", dest="batch_size", type=int, default=None)
            s.add_argument("--max-batches", dest="max_batches", type=int, default=None)
            s.add_argument("--device", default="cpu")
    return p


def _calib_options(cfg: dict, args) -> dict:
    c = dict(cfg.get("calib", {}))
    for k in ("T", "rho", "shift", "saturate", "iterations", "fold_bn", "batch_size", "max_batches"):
        v = getattr(args, k, None)
        if v is not None:
            c[k] = v
    c.setdefault("T", [1, 2, 4, 8])
    c.setdefault("rho", 4)
    return c


def _write(out: Path, payload: dict) -> Path:
    from sj_common.engine import package_versions
    from sj_common.engine.checkpoint import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "versions": package_versions()}
    atomic_write_json(payload, out / "results.json")
    return out / "results.json"


def _table(rows: dict[str, list], Ts: list[int]) -> str:
    head = "model".ljust(14) + "".join(f"T={t}".rjust(9) for t in Ts)
    lines = [head, "-" * len(head)]
    for name, accs in rows.items():
        lines.append(name.ljust(14) + "".join(f"{a:9.2f}" for a in accs))
    return "\n".join(lines)


def main(argv=None) -> dict:
    from sj_common.cli import apply_overrides, load_config, train_config_from

    args = build_parser().parse_args(argv)
    cfg = apply_overrides(load_config(args.config, package="sj_calib"), args.assignments)
    if args.command == "train":
        from sj_common.engine import is_main_process

        from .recipe import train_ann

        tc = train_config_from(cfg.get("train", {}), args)
        _, res = train_ann(cfg, tc, args.data_root, extra_results={"calib_config": cfg})
        if is_main_process():
            print(
                f"QCFS ANN: best val {res['best_val_acc1']:.2f}%  test {res['test_acc1']:.2f}%  -> {tc.out}"
            )
        return res

    import os

    from .recipe import build_datasets, load_ann

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 evaluates and writes
        return {}
    t0 = time.time()
    c = _calib_options(cfg, args)
    Ts = sorted({int(t) for t in c["T"]})
    ann = load_ann(cfg, args.checkpoint).to(args.device)
    seed = int(cfg.get("train", {}).get("seed", 0))
    _, _, test = build_datasets(cfg, args.data_root, seed=seed)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / args.command
    kw = dict(batch_size=int(c.get("batch_size", 128)), device=args.device, max_batches=c.get("max_batches"))
    opts = dict(
        shift=c.get("shift", "reference"),
        saturate=c.get("saturate", "reference"),
        iterations=int(c.get("iterations", 1)),
    )
    from . import calibrate, convert
    from .sweep import latency, snn_sweep, sweep

    if args.command == "sweep":
        res = sweep(
            ann, test, Ts, int(c["rho"]), fold_bn=bool(c.get("fold_bn", False)), out=out, **opts, **kw
        )
        rows = {
            "ANN": [res["ann_acc"]] * len(Ts),
            "uncalibrated": res["uncalibrated"]["acc"],
            "calibrated": res["calibrated"]["acc"],
        }
    else:
        snn = convert(ann, fold_bn=bool(c.get("fold_bn", False)))
        rho = int(c["rho"]) if args.command == "calibrate" else 0
        if rho:
            snn = calibrate(snn, rho=rho, **opts)
        r = snn_sweep(snn, test, Ts, **kw)
        res = {
            "T": Ts,
            "rho": rho,
            args.command: r,
            "latency": latency(Ts, rho, r["D"], r["iterations"] or 1),
        }
        if rho:
            res.update(opts)
        rows = {"calibrated" if rho else "uncalibrated": r["acc"]}
    res.update(
        command=args.command, config=cfg, checkpoint=str(args.checkpoint), wall_time_s=time.time() - t0
    )
    path = _write(out, res)
    print(_table(rows, Ts))
    if args.command != "convert":
        lat = res["latency"]
        print(
            f"latency: rho={lat['rho']}, per-layer work rho+T={lat['per_layer_work']}, "
            f"streaming D*rho+T={lat['streaming']} (D={lat['D']})"
        )
    print(f"results: {path}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])

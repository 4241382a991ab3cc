"""The one command line of every plugin: ``main(recipe)`` (``sj-calib``, ``sj-transfer``, ``sj-bkd``).

Sub-commands (a plugin adds its own stages, e.g. calib's ``convert`` / ``calibrate`` / ``sweep``)::

    <prog> train   [--config NAME|FILE] [--set KEY=VALUE ...] [--out DIR] [--data-root DIR] [--resume]
                   [--epochs N --lr X ... every TrainConfig field] [--from-reference PATH] [--threads N]
    <prog> eval    [--config ...] [--checkpoint best.pt | --from-reference PATH] [--device DEV]
    <prog> configs                                  # the packaged configs, one line each

``--help`` after a sub-command shows the values the chosen config will use
(``sj-calib train --config mnist5k --help``). Exit status: 0 on success; 2 on a usage or config error
(one line on stderr; ``--debug`` shows the traceback); 1 when the run itself fails. ``--help`` imports no
torch (tests/common/test_help_fast.py): the TrainConfig module and each plugin's config are torch-free, the
config is parsed for the help without the recipe's :meth:`~sj_common.recipe.Recipe.check` (which may
import the method's code), and torch, data sets, torchvision and plotting load inside the commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import (
    Assignment,
    ConfigError,
    UsageError,
    available_configs,
    describe_type,
    parse_assignment,
)

__all__ = ["main", "train_flag_help"]

_COMMON = ("train", "eval")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=110)


# ----------------------------------------------------------------------------------------------------------
# Config values for help texts
# ----------------------------------------------------------------------------------------------------------


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for p in key.split("."):
        if node is None:
            return None
        node = node.get(p) if isinstance(node, Mapping) else getattr(node, p, None)
    return node


def _field_type(cls: type, key: str) -> Any:
    tp: Any = cls
    for p in key.split("."):
        sub = _section(tp)
        if sub is None:
            return Any
        tp = typing.get_type_hints(sub).get(p, Any)
    return tp


def _section(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for a in typing.get_args(tp):
        if dataclasses.is_dataclass(a):
            return a
    return None


def _base(tp: Any) -> Any:
    """``int | None`` -> ``int``; ``list[int]`` -> ``int`` (with nargs); Literal -> its values' type."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return type(args[0])
    if origin in (typing.Union, types.UnionType):
        return _base(args[0]) if len(args) == 1 else str
    if origin in (list, tuple, Sequence):
        return _base(args[0]) if args else str
    return tp if tp in (int, float, str, bool) else str


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(map(str, v))
    return repr(v) if isinstance(v, str) else str(v)


def train_flag_help() -> dict[str, str]:
    """TrainConfig field -> its description (the comment after the field in ``sj_common/engine/config.py``)."""
    import inspect

    from .engine import TrainConfig

    out: dict[str, str] = {}
    try:
        src = inspect.getsource(TrainConfig)
    except (OSError, TypeError):
        return out
    names = set(TrainConfig.field_names())
    for line in src.splitlines():
        s = line.strip()
        name = s.split(":", 1)[0].strip()
        if name in names and "#" in s:
            out[name] = s.split("#", 1)[1].strip()
    return out


_TRAIN_HELP = {  # flag texts where the field's comment is not one
    "epochs": "training epochs of this stage",
    "batch_size": "batch size per process",
    "lr": "peak learning rate",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay",
    "warmup_epochs": "epochs of linear learning-rate warm-up (one longer than the run is shortened)",
    "seed": "seed of the initialisation, data order and augmentation",
    "workers": "DataLoader worker processes",
    "grad_clip": "clip the gradient norm to this value (none: no clipping)",
    "label_smoothing": "cross-entropy label smoothing",
    "checkpoint_every_steps": "also save checkpoint.pt every N steps (0: at each epoch end only)",
    "max_steps_per_epoch": "cut every epoch to N steps (smoke runs)",
    "eval_batch_size": "evaluation batch size (none: --batch-size)",
}


# ----------------------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------------------


def _pre_parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=None)
    p.add_argument("--set", dest="assignments", action="append", default=[])
    p.add_argument("--out", default=None)
    args, _ = p.parse_known_args(argv)
    return args


def _load(recipe, config: str | None, out: str | None, assignments: Sequence[Assignment], check: bool = True):
    """(parsed config, where) for ``config`` with ``assignments`` applied (``check=False``: for ``--help``)."""
    return recipe.parse_config(config, assignments, out, check=check)


def _add_common(s: argparse.ArgumentParser, recipe, cfg: Any, where: str) -> None:
    s.add_argument(
        "--config",
        default=recipe.default_config,
        metavar="NAME|FILE",
        help=f"packaged config name (listed by: {recipe.prog} configs) or a YAML file (now: {where})",
    )
    s.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config key, checked and typed, e.g. --set train.lr=1e-4 (repeatable)",
    )
    s.add_argument(
        "--data-root",
        "--data_root",
        dest="data_root",
        default=None,
        metavar="DIR",
        help="local folder of the real data sets (nothing is downloaded; the embedded mnist5k needs none)",
    )
    s.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: OMP_NUM_THREADS or 1; 0 = every CPU)",
    )
    s.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _add_reference(s: argparse.ArgumentParser, checkpoint_help: str | None) -> None:
    if checkpoint_help:
        s.add_argument("--checkpoint", default=None, metavar="FILE", help=checkpoint_help)
    s.add_argument(
        "--from-reference",
        dest="reference",
        default=None,
        metavar="PATH",
        help="a checkpoint published by the method's authors"
        + (" (instead of --checkpoint)" if checkpoint_help else " to fine-tune from"),
    )
    s.add_argument(
        "--reference-source",
        default=None,
        metavar="NAME",
        help="the format of --from-reference when the method has several",
    )


def _add_recipe_flags(s: argparse.ArgumentParser, recipe, command: str, cfg: Any) -> None:
    group = None
    for f in recipe.flags:
        if command not in f.commands:
            continue
        group = group or s.add_argument_group(f"{recipe.prog} options")
        now = _get(cfg, f.key)
        text = f"{f.help} ({f.key}; config: {_show(now)})"
        kw: dict[str, Any] = dict(dest=f"cfg:{f.key}", default=argparse.SUPPRESS, help=text)
        if f.const is not None:
            group.add_argument(*f.names, action="store_const", const=f.const, **kw)
            continue
        tp = _field_type(recipe.config_type, f.key)
        if _base(tp) is bool:
            group.add_argument(*f.names, action=argparse.BooleanOptionalAction, **kw)
            continue
        kw["type"] = _base(tp)
        if f.choices:
            kw["choices"] = f.choices
        else:
            kw["metavar"] = describe_type(_base(tp)).upper()
        if f.nargs:
            kw["nargs"] = f.nargs
        group.add_argument(*f.names, **kw)


def _add_train_flags(s: argparse.ArgumentParser, train: Any, out: str) -> None:
    from .engine import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    described = {**train_flag_help(), **_TRAIN_HELP}
    g = s.add_argument_group("training (sj_common.engine.TrainConfig; the value shown is the config's)")
    g.add_argument("--out", default=None, metavar="DIR", help=f"run folder (config: {out})")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "out":
            continue
        tp = hints[f.name]
        base = _base(tp)
        flags = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        text = f"{described.get(f.name, f.name.replace('_', ' '))} (config: {_show(getattr(train, f.name))})"
        kw: dict[str, Any] = dict(dest=f"cfg:train.{f.name}", default=argparse.SUPPRESS, help=text)
        if base is bool:
            g.add_argument(flags[0], action=argparse.BooleanOptionalAction, **kw)
        else:
            none = " (or none)" if type(None) in typing.get_args(tp) else ""
            g.add_argument(*flags, type=_none_or(base) if none else base, metavar=base.__name__.upper(), **kw)


def _none_or(base: type):
    def conv(text: str):
        return None if text.lower() in ("none", "null") else base(text)

    conv.__name__ = base.__name__
    return conv


def _build_parser(recipe, command: str | None, cfg: Any, where: str) -> argparse.ArgumentParser:
    p = _Parser(
        prog=recipe.prog,
        description=recipe.description,
        formatter_class=_Formatter,
        epilog=f"{recipe.prog} COMMAND --help shows a command's flags with the values its --config uses.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    helps = {
        "train": "train the method from a config (results.json and best.pt in --out)",
        "eval": "evaluate a trained checkpoint (or an authors' checkpoint) on the test split",
        **{s.name: s.help for s in recipe.stages},
        "configs": "list the packaged configs",
    }
    for name, text in helps.items():
        s = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        if name != command or name == "configs":
            continue
        _add_common(s, recipe, cfg, where)
        out = cfg.train.out
        if name == "train":
            _add_train_flags(s, cfg.train, out)
            _add_reference(s, None)
        else:
            s.add_argument(
                "--out",
                default=None,
                metavar="DIR",
                help=f"folder for results.json (default: beside the checkpoint, in {name}/)",
            )
            _add_reference(s, f"a best.pt written by {recipe.prog} train (default: {Path(out) / 'best.pt'})")
            s.add_argument(
                "--device",
                dest="cfg:train.device",
                default=argparse.SUPPRESS,
                help=f"'cpu', 'cuda', 'cuda:1' or 'auto' (config: {_show(cfg.train.device)})",
            )
            s.add_argument(
                "--progress",
                "--no-progress",
                dest="cfg:train.progress",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"progress bar (config: {cfg.train.progress})",
            )
        _add_recipe_flags(s, recipe, name, cfg)
    return p


# ----------------------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------------------


def _assignments(args: argparse.Namespace, flag_names: Mapping[str, str]) -> list[Assignment]:
    out = []
    for text in args.assignments:
        key, value = parse_assignment(text)
        out.append(Assignment(key, value, f"--set {text}"))
    for dest, value in vars(args).items():
        if dest.startswith("cfg:"):
            key = dest[4:]
            out.append(Assignment(key, value, flag_names.get(key, f"--{key}")))
    return out


def _flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    names: dict[str, str] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse keeps no public list
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sp in action.choices.values():
                names.update(_flag_names(sp))
        elif action.dest.startswith("cfg:") and action.option_strings:
            names[action.dest[4:]] = action.option_strings[0]
    return names


def _list_configs(recipe) -> None:
    from importlib import resources

    names = available_configs(recipe.package)
    width = max((len(n) for n in names), default=0)
    for n in names:
        text = (resources.files(recipe.package) / "configs" / f"{n}.yaml").read_text()
        first = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")), "")
        print(f"{n.ljust(width)}  {first}".rstrip())


def _one_line_warnings(prog: str) -> None:
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)

    warnings.showwarning = show


def _run(recipe, argv: list[str]) -> int:
    if "--debug" not in argv:
        _one_line_warnings(recipe.prog)
    commands = {"train", "eval", "configs", *(s.name for s in recipe.stages)}
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in commands:
        _build_parser(recipe, None, None, "").parse_args(argv)  # prints help or the one-line error
        return 2
    if command == "configs":
        _build_parser(recipe, "configs", None, "").parse_args(argv)
        _list_configs(recipe)
        return 0
    pre = _pre_parse(argv)
    pre_assign = [Assignment(*parse_assignment(t), f"--set {t}") for t in pre.assignments]
    # the values --help shows; the recipe's checks (which may import torch) run on the second parse below
    cfg, where = _load(recipe, pre.config, pre.out if command == "train" else None, pre_assign, check=False)
    parser = _build_parser(recipe, command, cfg, where)
    args = parser.parse_args(argv)
    from .threads import apply_thread_policy

    # first, while no OpenMP runtime is loaded yet (the recipe's checks below may import torch), so that
    # OMP_WAIT_POLICY=PASSIVE still takes effect
    apply_thread_policy(args.threads)
    out = args.out if command == "train" else None
    cfg, where = _load(recipe, args.config, out, _assignments(args, _flag_names(parser)))
    from .engine import is_main_process, print_table

    if command == "train":
        res = recipe.train(
            cfg, data_root=args.data_root, reference=args.reference, reference_source=args.reference_source
        )
        rows = recipe.summary(cfg, res)
        if rows and is_main_process():
            print_table(rows)
        return 0

    if not is_main_process():  # under torchrun, evaluation stages run on rank 0 only
        return 0
    checkpoint = args.checkpoint
    if checkpoint is None and args.reference is None:
        checkpoint = str(Path(cfg.train.out) / "best.pt")
    data = recipe.build_data(cfg, data_root=args.data_root)
    model = recipe.load_trained(
        cfg, data, checkpoint=checkpoint, reference=args.reference, reference_source=args.reference_source
    )
    source = Path(checkpoint) if checkpoint else Path(args.reference)
    out = Path(args.out) if args.out else source.resolve().parent / command
    if command == "eval":
        import time

        from .config import to_dict
        from .engine import package_versions
        from .engine.checkpoint import atomic_write_json

        t0 = time.time()
        res = recipe.evaluate(cfg, model, data)
        payload = {
            "command": "eval",
            "checkpoint": str(source),
            "test": res,
            "config": to_dict(cfg),
            "wall_time_s": time.time() - t0,
            "versions": package_versions(),
        }
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(payload, out / "results.json")
        print_table([{"checkpoint": str(source), "test_acc1": res.get("acc1"), "n": res.get("n")}])
        print(f"results: {out / 'results.json'}")
        return 0
    stage = next(s for s in recipe.stages if s.name == command)
    stage.run(recipe, cfg, model, data, out=out, source=str(source))
    return 0


def main(recipe, argv: Sequence[str] | None = None) -> int:
    """Run ``recipe``'s command line; returns the exit status (0 ok, 2 usage/config error, 1 failed run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _run(recipe, argv)
    except (ConfigError, UsageError, FileNotFoundError) as e:  # a file the user named is missing: usage
        if debug:
            raise
        print(f"{recipe.prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{recipe.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the exit status tells a failed run; --debug shows it all
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(
            f"{recipe.prog}: error: {type(e).__name__}: {msg} (--debug shows the traceback)", file=sys.stderr
        )
        return 1

"""sj_common.config (typed sections, coercion, errors), sj_common.recipe (the runner) and sj_common.cli (the shell).

The plugins' console scripts are run as subprocesses in tests/{calib,transfer,bkd}/test_cli.py; here a fake
recipe exercises the shell in-process: exit codes, flags over the YAML, help texts with the config's values.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import pytest
from sj_common.cli import main
from sj_common.config import (
    Assignment,
    ConfigError,
    apply_assignments,
    available_configs,
    parse,
    parse_assignment,
    read_yaml,
    section_from,
    to_dict,
)
from sj_common.engine import TrainConfig, format_table
from sj_common.recipe import Flag, Recipe, check_warmup


def method(alpha: float = 0.5, mode: str = "mixed", steps: list[int] | None = None, lam: float = 0.15):
    """A method whose defaults the config section reads from this signature."""


Method = section_from("Method", (method, ["alpha", "mode", "steps", "lam"]))


@dataclass
class FakeConfig:
    train: TrainConfig
    name: str = ""
    method: Method = field(default_factory=Method)  # type: ignore[valid-type]


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepkg_cli"
    (pkg / "configs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "configs" / "mnist5k.yaml").write_text(
        "# the fake default\ntrain:\n  epochs: 3\n  lr: 1e-3\nmethod:\n  alpha: 0.25\n"
    )
    (pkg / "configs" / "cifar.yaml").write_text("train: {epochs: 300}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakepkg_cli"


class FakeRecipe(Recipe):
    prog = "sj-fake"
    package = "fakepkg_cli"
    config_type = FakeConfig
    flags = (Flag(("--alpha",), "method.alpha", "the alpha"),)

    def __init__(self, fail: Exception | None = None):
        self.fail, self.runs = fail, []

    def train(self, cfg, *, data_root=None, reference=None, reference_source=None):
        if self.fail is not None:
            raise self.fail
        if reference is not None:
            self.load_reference(None, reference, reference_source)  # the default: a usage error
        self.runs.append(cfg)
        return {"test_acc1": 50.0}


@pytest.mark.compat
def test_read_yaml_path_and_packaged_name(tmp_path, fake_package):
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  batch_size: 16\n")
    assert read_yaml(f) == ({"train": {"batch_size": 16}}, str(f))
    raw, where = read_yaml("mnist5k", package=fake_package)
    assert raw["method"] == {"alpha": 0.25} and raw["train"]["epochs"] == 3
    assert where == "fakepkg_cli/configs/mnist5k.yaml"
    assert available_configs(fake_package) == ["cifar", "mnist5k"]
    with pytest.raises(ConfigError, match="available: cifar, mnist5k"):
        read_yaml("imagenet", package=fake_package)
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_yaml(tmp_path / "list.yaml")


@pytest.mark.compat
def test_parse_coerces_and_names_key_source_and_type(tmp_path):
    raw = {"train": {"out": str(tmp_path), "epochs": 3.0, "lr": "1e-3"}, "method": {"steps": [1, 2]}}
    cfg = parse(FakeConfig, raw, where="run.yaml")
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)  # YAML's "1e-3" string coerced
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.train.optimizer == "adamw"  # TrainConfig's default
    assert (cfg.method.alpha, cfg.method.mode, cfg.method.lam) == (0.5, "mixed", 0.15)  # the signature's
    assert cfg.method.steps == [1, 2]
    assert to_dict(cfg)["method"] == {"alpha": 0.5, "mode": "mixed", "steps": [1, 2], "lam": 0.15}
    bad = [
        (
            {"train": {"out": "x", "epoch": 3}},
            r"train.epoch: unknown key \(from run.yaml\); valid keys here: .*epochs",
        ),
        (
            {"train": {"out": "x", "epochs": "many"}},
            r"train.epochs: expected int, got 'many' \(from run.yaml\)",
        ),
        ({"train": {"out": "x", "amp": 1}}, r"train.amp: expected bool, got 1"),
        ({"train": {"out": "x", "epochs": 2.5}}, r"train.epochs: expected int, got 2.5"),
        (
            {"train": {"out": "x"}, "method": {"steps": [1, "a"]}},
            r"method.steps: expected a list of int or None",
        ),
        ({"train": {"out": "x"}, "method": 3}, r"method: expected a mapping"),
        ({"train": {"epochs": 3}}, r"train.out: missing"),
        ({"train": {"out": "x", "epochs": 0}}, r"TrainConfig.epochs: expected an integer >= 1, got 0"),
    ]
    for raw, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            parse(FakeConfig, raw, where="run.yaml")


@pytest.mark.compat
def test_assignments_are_checked_typed_and_traced():
    raw = {"train": {"out": "x", "epochs": 3}, "method": {"alpha": 0.5}}
    key, value = parse_assignment("method.alpha=0.25")
    assert (key, value) == ("method.alpha", 0.25)
    new, sources = apply_assignments(FakeConfig, raw, [Assignment(key, value, "--set method.alpha=0.25")])
    assert new["method"]["alpha"] == 0.25 and raw["method"]["alpha"] == 0.5  # a copy
    assert parse(FakeConfig, new, sources=sources).method.alpha == 0.25
    with pytest.raises(ConfigError, match=r"method.alpah: unknown key \(from --set method.alpah=1\)"):
        apply_assignments(FakeConfig, raw, [Assignment("method.alpah", 1, "--set method.alpah=1")])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("method.alpha")
    # a wrong type set by a flag names the flag
    new, sources = apply_assignments(FakeConfig, raw, [Assignment("train.lr", "fast", "--lr")])
    with pytest.raises(ConfigError, match=r"train.lr: expected float, got 'fast' \(from --lr\)"):
        parse(FakeConfig, new, sources=sources)


@pytest.mark.compat
def test_warmup_longer_than_the_run_is_shortened(tmp_path):
    with pytest.warns(UserWarning, match="shortened to 1"):
        tc = check_warmup(TrainConfig(out=str(tmp_path), epochs=2, warmup_epochs=2))
    assert tc.warmup_epochs == 1
    with pytest.warns(UserWarning, match="shortened to 0"):
        assert check_warmup(TrainConfig(out=str(tmp_path), epochs=1, warmup_epochs=1)).warmup_epochs == 0
    assert check_warmup(TrainConfig(out=str(tmp_path), epochs=3, warmup_epochs=2)).warmup_epochs == 2


@pytest.mark.compat
def test_shell_exit_codes_flags_and_help(tmp_path, fake_package, capsys):
    recipe = FakeRecipe()
    out = str(tmp_path / "run")
    # flags override only when given; --set too; the YAML otherwise
    assert main(recipe, ["train", "--batch-size", "8", "--no-amp", "--out", out, "--alpha", "0.125"]) == 0
    cfg = recipe.runs[-1]
    assert (cfg.train.batch_size, cfg.train.amp, cfg.train.epochs, cfg.train.out) == (8, False, 3, out)
    assert cfg.train.lr == 1e-3 and cfg.method.alpha == 0.125
    assert main(recipe, ["train", "--set", "train.lr=1e-4", "--max_steps_per_epoch", "2"]) == 0
    cfg = recipe.runs[-1]
    assert cfg.train.lr == 1e-4 and cfg.train.max_steps_per_epoch == 2
    assert cfg.train.out == "runs/fakepkg_cli_mnist5k"  # the default: runs/<package without sj_>_<config>
    capsys.readouterr()
    # usage and config errors: 2, one line naming the key and where it came from
    for argv, msg in [
        (["train", "--config", "nope"], "no config 'nope'"),
        (["train", "--set", "method.alpah=1"], "method.alpah: unknown key (from --set method.alpah=1)"),
        (["train", "--set", "train.epochs=many"], "train.epochs: expected int, got 'many'"),
        (["train", "--epochs", "x"], "--epochs: invalid int value"),
        (["train", "--from-reference", "x.pt"], "--from-reference"),
        (["fly"], "invalid choice"),
    ]:
        code = _status(recipe, argv)
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and msg in err, (argv, err)
    # a failure during the run: 1, one line; --debug shows the traceback (the exception)
    failing = FakeRecipe(RuntimeError("disk full\nmore"))
    assert main(failing, ["train"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "sj-fake: error: RuntimeError: disk full (--debug shows the traceback)"
    with pytest.raises(RuntimeError, match="disk full"):
        main(failing, ["train", "--debug"])
    # configs: one line per packaged config with its first comment
    assert main(recipe, ["configs"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cifar", "mnist5k  the fake default"]
    # help: the values the chosen config will use
    with pytest.raises(SystemExit) as e:
        main(recipe, ["train", "--config", "cifar", "--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0
    assert "training epochs of this stage (config: 300)" in text and "(config: 'adamw')" in text
    assert "the alpha (method.alpha; config: 0.5)" in text and "--from-reference PATH" in text
    with pytest.raises(SystemExit):
        main(recipe, ["--help"])
    top = capsys.readouterr().out
    assert all(c in top for c in ("train", "eval", "configs"))


def _status(recipe, argv) -> int:
    """The exit status of the shell: its return value, or argparse's SystemExit code."""
    try:
        return main(recipe, argv)
    except SystemExit as e:
        return e.code


@pytest.mark.compat
def test_fit_model_seeds_the_initialisation_in_one_place(tmp_path):
    import torch
    from sj_common.recipe import Data, fit_model
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))
    ds.targets, ds.classes = ds.tensors[1].numpy(), ["a", "b"]
    data = Data(ds, None, None, num_classes=2)
    weights = []
    for i in range(2):
        torch.manual_seed(100 + i)  # whatever the global RNG holds before
        tc = TrainConfig(
            out=str(tmp_path / str(i)),
            epochs=1,
            max_steps_per_epoch=1,
            progress=False,
            tensorboard=False,
            seed=3,
        )
        model, res = fit_model(lambda: torch.nn.Linear(4, 2), data, tc)
        weights.append(json.dumps(res["history"]))
    assert weights[0] == weights[1]
    assert dataclasses.is_dataclass(data) and format_table({"acc1": 1.0}).startswith("metric")


def _documented_commands() -> list[tuple[str, list[str]]]:
    """Every sj-* command of the README and the docs pages (code blocks and inline code) and of the configs'
    ``# Run:`` comments."""
    import re
    import shlex
    from importlib import resources
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    docs = [p for p in sorted((root / "docs").rglob("*.md")) if not {"_build", "notebooks"} & set(p.parts)]
    readme = "\n".join(p.read_text(encoding="utf-8") for p in [root / "README.md", *docs])
    lines, prose, fence = [], [], None
    for ln in readme.splitlines():
        if ln.startswith("```"):
            fence = None if fence is not None else ln[3:].strip()
        elif fence is None:
            prose.append(ln)
        elif fence in ("", "bash"):
            lines.append(ln)
    lines = "\n".join(lines).replace("\\\n", " ").splitlines()  # continued lines
    lines += [" ".join(c.split()) for c in re.findall(r"`([^`]+)`", "\n".join(prose))]
    lines = [
        re.sub(r"torchrun .*?-m (sj_\w+)\.cli", lambda m: m.group(1).replace("_", "-"), ln) for ln in lines
    ]
    for pkg in ("sj_calib", "sj_transfer", "sj_bkd"):
        for p in (resources.files(pkg) / "configs").iterdir():
            lines += [ln.split("Run:", 1)[1] for ln in p.read_text().splitlines() if ln.startswith("# Run:")]
    out = []
    for line in lines:
        line = re.sub(r"\s+(#.*|\(.*\))$", "", line.strip())  # a comment or a remark in parentheses
        for part in line.split("&&"):
            part = re.sub(r"\[[^\]]*\]", " ", part).strip().rstrip("\\").strip()
            m = re.search(
                r"\b(sj-calib|sj-transfer|sj-bkd)\s+(train|eval|convert|calibrate|sweep|configs)\b.*", part
            )
            if m and "<" not in part and "..." not in part:
                argv = shlex.split(m.group(0))
                out.append((argv[0], argv[1:]))
    return out


@pytest.mark.slow
def test_every_documented_command_parses():
    """The README's, the docs pages' and the configs' commands are accepted by the shell (flags, config keys,
    types)."""
    import importlib

    from sj_common.cli import _build_parser, _flag_names, _load

    commands = _documented_commands()
    assert len(commands) >= 20 and {p for p, _ in commands} == {"sj-calib", "sj-transfer", "sj-bkd"}
    for prog, argv in commands:
        recipe = importlib.import_module(f"{prog.replace('-', '_')}.recipe").RECIPE
        if argv[0] == "configs":
            continue
        from sj_common.cli import _assignments, _pre_parse

        pre = _pre_parse(argv)
        cfg, where = _load(recipe, pre.config, pre.out, [])
        parser = _build_parser(recipe, argv[0], cfg, where)
        args = parser.parse_args(argv)
        _load(recipe, args.config, getattr(args, "out", None), _assignments(args, _flag_names(parser)))

"""sj_common.cli: YAML configs (paths and packaged names), argparse flags for TrainConfig, overrides."""

from __future__ import annotations

import argparse

import pytest
from sj_common.cli import (
    add_train_args,
    apply_overrides,
    available_configs,
    format_table,
    load_config,
    train_config_from,
)
from sj_common.engine import TrainConfig


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepkg_cli"
    (pkg / "configs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "configs" / "mnist5k.yaml").write_text("train:\n  epochs: 3\n  lr: 1e-3\nmethod:\n  alpha: 0.5\n")
    (pkg / "configs" / "cifar.yaml").write_text("train: {epochs: 300}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakepkg_cli"


@pytest.mark.compat
def test_load_config_path_and_packaged_name(tmp_path, fake_package):
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  batch_size: 16\n")
    assert load_config(f) == {"train": {"batch_size": 16}}
    cfg = load_config("mnist5k", package=fake_package)
    assert cfg["method"] == {"alpha": 0.5} and cfg["train"]["epochs"] == 3
    assert available_configs(fake_package) == ["cifar", "mnist5k"]
    with pytest.raises(FileNotFoundError, match="available: cifar, mnist5k"):
        load_config("imagenet", package=fake_package)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.compat
def test_flags_override_only_when_given(tmp_path, fake_package):
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_train_args(parser)
    args = parser.parse_args(["--config", "mnist5k", "--batch-size", "8", "--no-amp", "--out", str(tmp_path)])
    yaml_train = load_config(args.config, package=fake_package)["train"]
    cfg = train_config_from(yaml_train, args)
    assert isinstance(cfg, TrainConfig)
    assert cfg.epochs == 3  # from YAML, no flag given
    assert cfg.lr == pytest.approx(1e-3) and isinstance(cfg.lr, float)  # YAML's "1e-3" string coerced
    assert cfg.batch_size == 8 and cfg.amp is False  # flags win
    assert cfg.optimizer == "adamw"  # dataclass default
    # underscore spelling works too, and every field has a flag
    args = parser.parse_args(["--max_steps_per_epoch", "2", "--grad-clip", "1.5"])
    assert args.max_steps_per_epoch == 2 and args.grad_clip == 1.5
    assert all(hasattr(args, f) for f in TrainConfig.field_names())


@pytest.mark.compat
def test_train_config_from_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['epoch', 'lrr'\]"):
        train_config_from({"out": str(tmp_path), "epoch": 3, "lrr": 0.1})
    assert train_config_from({"out": str(tmp_path), "alpha": 1}, ignore=["alpha"]).epochs == 10
    with pytest.raises(ValueError, match="out"):
        train_config_from({"epochs": 3})
    with pytest.raises(ValueError, match="epochs: expected int, got 'many'"):
        train_config_from({"out": str(tmp_path), "epochs": "many"})
    with pytest.raises(ValueError, match="amp: expected bool"):
        train_config_from({"out": str(tmp_path), "amp": 1})
    with pytest.raises(TypeError, match="config"):
        train_config_from([("out", "x")])


@pytest.mark.compat
def test_apply_overrides_and_table():
    cfg = {"train": {"epochs": 3}, "method": {"alpha": 0.5}}
    new = apply_overrides(cfg, ["method.alpha=0.25", "train.epochs=7"])
    assert new == {"train": {"epochs": 7}, "method": {"alpha": 0.25}} and cfg["method"]["alpha"] == 0.5
    with pytest.raises(KeyError, match="unknown key 'method.alpha2'"):
        apply_overrides(cfg, ["method.alpha2=1"])
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides(cfg, ["method.alpha"])
    table = format_table([{"T": 1, "acc": 12.345}, {"T": 8, "acc": 99.0}])
    lines = table.splitlines()
    assert lines[0].split() == ["T", "|", "acc"] and "12.35" in lines[2] and "99.00" in lines[3]
    assert "metric" in format_table({"acc1": 1.0})

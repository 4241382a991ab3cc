"""CLI and packaged configs."""

import json

import numpy as np
import pytest
from sj_bkd.cli import main
from sj_bkd.models import STUDENTS, TEACHERS
from sj_bkd.recipe import _train_config, build_data, list_configs, load_config


def test_every_config_loads_and_names_known(tmp_path):
    names = list_configs()
    assert "mnist5k" in names and len(names) >= 20
    for n in names:
        cfg = load_config(n)
        assert cfg["student"]["name"] in STUDENTS, n
        t = cfg["teacher"]["name"]
        assert t in TEACHERS or t in STUDENTS, n
        assert cfg["distill"]["lam"] == 0.15 and cfg["data"]["T"] == 4
        _train_config(cfg["train"], tmp_path, {})  # every key is a TrainConfig field
    assert load_config("imagenet_sew50_r50_mixed")["distill"]["alpha"] == 7e-5
    assert load_config("cifar100_cml4_384_vits_mixed")["distill"]["alpha"] == 2e-3
    with pytest.raises(FileNotFoundError, match="packaged config"):
        load_config("no_such_config")


def test_mnist5k_limited_data_student():
    # the embedded default: teacher on the whole train split, student on a stratified 10%
    cfg = load_config("mnist5k")
    t_train, val, test, k = build_data(cfg, role="teacher")
    s_train = build_data(cfg, seed=1)[0]
    assert (len(t_train), len(s_train), len(val), len(test), k) == (3500, 350, 500, 1000, 10)
    assert np.bincount(s_train.targets, minlength=10).min() >= 30  # stratified
    # data.subset_seed (0 in this config) fixes the subset for every training seed; without it, the seed draws it
    assert np.array_equal(s_train.indices, build_data(cfg, seed=2)[0].indices)
    cfg["data"]["subset_seed"] = None
    assert not np.array_equal(build_data(cfg, seed=1)[0].indices, build_data(cfg, seed=2)[0].indices)
    with pytest.raises(ValueError, match="role"):
        build_data(cfg, role="pupil")


# one step on a few images: the smallest run of the mnist5k config
TINY = ["--epochs", "1", "--max-steps-per-epoch", "1", "--no-progress", "--set", "data.train_subset=32"]
TINY += ["--set", "data.T=2", "--set", "data.val_subset=20", "--set", "data.test_subset=20"]


def test_cli_teacher_train_then_distil(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--config", "mnist5k", "--teacher", "train", "--out", str(out), *TINY]
    res = main([*args, "--set", "data.teacher_train_subset=48"])
    assert (out / "teacher" / "teacher.pt").is_file() and (out / "student" / "results.json").is_file()
    r = json.loads((out / "student" / "results.json").read_text())
    assert 0 <= r["test_acc1"] <= 100 and "train_bkd" in r["history"][0] and "train_wsld" in r["history"][0]
    assert res["teacher"]["test_acc1"] >= 0

    # load the trained teacher from its file, plain KD mode; twice: a seeded run repeats exactly (init included)
    def kd(name):
        weights = str(out / "teacher" / "teacher.pt")
        return main(
            [
                "train",
                "--config",
                "mnist5k",
                "--teacher-weights",
                weights,
                "--mode",
                "kd",
                "--out",
                str(tmp_path / name),
                *TINY,
            ]
        )

    res2, again = kd("kd"), kd("kd_again")
    assert res2["student"]["history"] == again["student"]["history"]
    assert "train_kd" in res2["student"]["history"][0]


def test_cli_missing_teacher_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher-weights"):
        main(["train", "--config", "mnist5k", "--out", str(tmp_path), "--set", "data.train_subset=32"])
    with pytest.raises(FileNotFoundError, match="no weights file"):
        main(
            [
                "train",
                "--config",
                "mnist5k",
                "--out",
                str(tmp_path),
                "--teacher-weights",
                str(tmp_path / "nope.pt"),
                "--set",
                "data.train_subset=32",
                "--epochs",
                "1",
                "--max-steps-per-epoch",
                "1",
                "--no-progress",
            ]
        )

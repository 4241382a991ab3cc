"""Packaged configs, the data of the mnist5k config, and ``sj-bkd`` as a user runs it (installed script)."""

import json

import numpy as np
import pytest
from sj_bkd.models import STUDENTS, TEACHERS
from sj_bkd.recipe import RECIPE, build_data
from sj_common.config import ConfigError, available_configs

from tests.console import script, scripts, usage_errors


def test_every_config_loads_and_names_known():
    names = available_configs("sj_bkd")
    assert "mnist5k" in names and len(names) >= 20
    for n in names:
        cfg = RECIPE.config(n)  # every key known and well typed (train: TrainConfig fields)
        assert cfg.student.name in STUDENTS, n
        assert cfg.teacher.name in TEACHERS or cfg.teacher.name in STUDENTS, n
        assert cfg.distill.lam == 0.15 and cfg.data.T == 4
    assert RECIPE.config("imagenet_sew50_r50_mixed").distill.alpha == 7e-5
    assert RECIPE.config("cifar100_cml4_384_vits_mixed").distill.alpha == 2e-3
    with pytest.raises(ConfigError, match="available"):
        RECIPE.config("no_such_config")
    # the teacher's train section: its own keys, the student's for the rest, its own run folder
    cfg = RECIPE.config("mnist5k", {"train.max_steps_per_epoch": 3}, out="runs/x")
    assert (cfg.teacher.train.epochs, cfg.train.epochs) == (10, 40)
    assert cfg.teacher.train.max_steps_per_epoch == 3
    assert (cfg.teacher.train.out, cfg.train.out) == ("runs/x/teacher", "runs/x/student")


def test_mnist5k_limited_data_student():
    # the embedded default: teacher on the whole train split, student on a stratified 10%
    cfg = RECIPE.config("mnist5k", {"train.seed": 1})
    t = build_data(cfg, role="teacher")
    s_train = build_data(cfg).train
    assert (len(t.train), len(s_train), len(t.val), len(t.test), t.num_classes) == (3500, 350, 500, 1000, 10)
    assert t.sequence_input is False
    assert np.bincount(s_train.targets, minlength=10).min() >= 30  # stratified
    # data.subset_seed (0 in this config) fixes the subset for every training seed; without it, the seed draws it
    assert np.array_equal(
        s_train.indices, build_data(RECIPE.config("mnist5k", {"train.seed": 2})).train.indices
    )

    def free(seed):
        return build_data(
            RECIPE.config("mnist5k", {"train.seed": seed, "data.subset_seed": None})
        ).train.indices

    assert not np.array_equal(free(1), free(2))
    with pytest.raises(ValueError, match="role"):
        build_data(cfg, role="pupil")


# one step on a few images: the smallest run of the mnist5k config
TINY = ["--epochs", "1", "--max-steps-per-epoch", "1", "--no-progress", "--set", "data.train_subset=32"]
TINY += ["--set", "data.T=2", "--set", "data.val_subset=20", "--set", "data.test_subset=20"]


@pytest.mark.slow
def test_cli_teacher_train_then_distil(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--config", "mnist5k", "--teacher", "train", "--teacher-epochs", "1", "--out", str(out)]
    r = script("sj-bkd", *args, *TINY, "--set", "data.teacher_train_subset=48")
    assert r.code == 0, r.err
    assert "{" not in r.err and "Traceback" not in r.err  # no results dict on stderr
    assert (out / "teacher" / "teacher.pt").is_file() and (out / "student" / "results.json").is_file()
    res = json.loads((out / "student" / "results.json").read_text())
    assert (
        0 <= res["test_acc1"] <= 100
        and "train_bkd" in res["history"][0]
        and "train_wsld" in res["history"][0]
    )
    teacher = json.loads((out / "teacher" / "results.json").read_text())
    assert teacher["test_acc1"] >= 0 and len(teacher["history"]) == 1  # --teacher-epochs, not the config's 10
    assert "teacher" in r.out and "student" in r.out  # the table of both stages

    # load the trained teacher from its file, plain KD mode; twice: a seeded run repeats exactly (init included)
    def kd(name):
        w = str(out / "teacher" / "teacher.pt")
        return [
            "train",
            "--config",
            "mnist5k",
            "--teacher-weights",
            w,
            "--mode",
            "kd",
            "--out",
            str(tmp_path / name),
        ]

    runs = scripts(("sj-bkd", [*kd("kd"), *TINY]), ("sj-bkd", [*kd("kd_again"), *TINY]))
    assert [x.code for x in runs] == [0, 0], [x.err for x in runs]
    res2, again = (
        json.loads((tmp_path / n / "student" / "results.json").read_text()) for n in ("kd", "kd_again")
    )
    assert res2["history"] == again["history"]
    assert "train_kd" in res2["history"][0]
    # eval: the student checkpoint on the test split
    r = script("sj-bkd", "eval", "--config", "mnist5k", "--checkpoint", str(tmp_path / "kd" / "student" / "best.pt"),
               "--mode", "kd", "--set", "data.T=2", "--set", "data.test_subset=20", "--no-progress")  # fmt: skip
    assert r.code == 0, r.err
    ev = json.loads((tmp_path / "kd" / "student" / "eval" / "results.json").read_text())
    assert ev["test"]["n"] == 20


@pytest.mark.slow
def test_usage_errors_exit_2_naming_the_key(tmp_path):
    usage_errors(
        "sj-bkd",
        [
            (["train", "--config", "no_such_config"], "no_such_config"),
            (
                ["train", "--config", "mnist5k", "--teacher", "train", "--set", "distill.lamm=0.4"],
                "distill.lamm",
            ),
            (["train", "--set", "train.lr=fast"], "train.lr: expected float"),
            (["train", "--set", "data.train_subset=32"], "--teacher-weights"),  # no teacher
            (
                ["train", "--teacher-weights", str(tmp_path / "nope.pt"), "--set", "data.train_subset=32"],
                "nope.pt",
            ),
        ],
        cwd=tmp_path,
    )

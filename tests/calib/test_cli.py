"""``sj-calib`` as a user runs it: the installed console script, the README's ``train && sweep`` chain, errors."""

import json

import pytest

from tests.console import script, shell, usage_errors

TINY = "--config mnist5k --set model.width=4"
TRAIN = (
    f"sj-calib train {TINY} --epochs 1 --max-steps-per-epoch 2 --batch-size 16 --no-progress --no-tensorboard"
)
READ = "--T 1 2 --max-batches 1 --batch-size 20"


@pytest.mark.slow
def test_readme_chain_train_then_convert_calibrate_sweep_eval(tmp_path):
    # the README's `sj-calib train --config mnist5k && sj-calib sweep --config mnist5k --checkpoint ...`, tiny
    ckpt = "runs/calib_mnist5k/best.pt"
    stages = " && ".join(
        f"sj-calib {c} {TINY} --checkpoint {ckpt} {READ}" for c in ("convert", "calibrate", "sweep")
    )
    r = shell(f"{TRAIN} && {stages} && sj-calib eval {TINY}", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "{" not in r.err and "Traceback" not in r.err  # no results dict, no traceback
    run = tmp_path / "runs" / "calib_mnist5k"
    assert (run / "best.pt").is_file() and "test_acc1" in json.loads((run / "results.json").read_text())
    for cmd in ("convert", "calibrate", "sweep"):
        data = json.loads((run / cmd / "results.json").read_text())
        assert data["T"] == [1, 2] and data["command"] == cmd
    assert (run / "sweep" / "sweep.png").stat().st_size > 1000
    data = json.loads((run / "sweep" / "results.json").read_text())
    assert set(data) >= {"ann_acc", "uncalibrated", "calibrated", "latency", "offset_histogram"}
    assert data["latency"]["per_layer_work"] == [5, 6]
    assert "calibrated" in r.out
    ev = json.loads((run / "eval" / "results.json").read_text())
    assert ev["command"] == "eval" and 0 <= ev["test"]["acc1"] <= 100 and ev["test"]["n"] == 1000


@pytest.mark.slow
def test_usage_errors_exit_2_naming_the_key(tmp_path):
    usage_errors(
        "sj-calib",
        [
            (["train", "--config", "no_such_config"], "no_such_config"),
            (["train", "--set", "distill.lamm=0.4"], "distill.lamm"),
            (["train", "--set", "train.lr=fast"], "train.lr: expected float"),
            (["sweep", "--config", "mnist5k"], "--checkpoint"),  # no best.pt at the default path
        ],
        cwd=tmp_path,
    )


def test_help_shows_the_configs_values():
    r = script("sj-calib", "train", "--config", "mnist5k", "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "peak learning rate (config: 0.05)" in text and "(config: 'sgd')" in text  # not TrainConfig's

"""``sj-transfer`` as a user runs it: the installed console script, tiny transfer and baseline runs, errors."""

import json

import pytest

from tests.console import script, scripts, usage_errors


@pytest.fixture
def cache(frame_cache):
    return frame_cache


def _tiny(cache, out):
    args = [
        "train",
        "--config",
        "mnist5k",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "2",
        "--batch-size",
        "16",
    ]
    args += ["--no-tensorboard", "--no-progress", "--T", "2", "--train-ratio", "0.2", "--cache-dir", cache]
    return [*args, "--out", str(out)]


@pytest.mark.slow
def test_train_transfer_and_baseline(tmp_path, cache):
    r = script("sj-transfer", *_tiny(cache, tmp_path / "t"))  # fills the frame cache for the two below
    assert r.code == 0, r.err
    assert "{" not in r.err and "Traceback" not in r.err  # no results dict on stderr
    saved = json.loads((tmp_path / "t" / "results.json").read_text())
    assert saved["method"] == "transfer" and saved["num_train_events"] == 700
    assert 0.0 <= saved["test_acc1"] <= 100.0 and "train_cka" in saved["history"][0]
    assert "transfer" in r.out
    # the mnist5k config warms up for 1 epoch: a 1-epoch run would never reach the full learning rate
    assert "warning: train.warmup_epochs: 1 warm-up epochs in a 1-epoch run; shortened to 0" in r.err
    assert saved["config"]["warmup_epochs"] == 0
    base_args = [*_tiny(cache, tmp_path / "b"), "--baseline", "--set", "method.alpha=0.3"]
    again_args = [*_tiny(cache, tmp_path / "b_again"), "--baseline", "--set", "method.alpha=0.3"]
    runs = scripts(("sj-transfer", base_args), ("sj-transfer", again_args))
    assert [x.code for x in runs] == [0, 0], [x.err for x in runs]
    base, again = (json.loads((tmp_path / o / "results.json").read_text()) for o in ("b", "b_again"))
    assert base["method"] == "baseline" and base["num_train_events"] == 700
    assert base["history"] == again["history"]  # a seeded run repeats exactly, initialisation included
    assert base["recipe"]["config"]["method"]["alpha"] == 0.3
    assert "baseline" in runs[0].out


@pytest.mark.slow
def test_usage_errors_exit_2_naming_the_key(tmp_path):
    usage_errors(
        "sj-transfer",
        [
            (["train", "--config", "no_such_config"], "available"),
            (["train", "--set", "method.alpah=0.4"], "method.alpah"),
            (["train", "--set", "train.lr=fast"], "train.lr: expected float"),
            (["train", "--config", "ncaltech101_r0.1"], "--data-root"),
        ],
        cwd=tmp_path,
    )
    r = script("sj-transfer", "configs")
    names = [line.split()[0] for line in r.out.splitlines()]
    assert r.code == 0 and "mnist5k" in names and "ncaltech101_r0.1" in names

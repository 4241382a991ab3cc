"""sj_transfer.analysis: a run folder is rebuilt from its saved typed config through the recipe (every model
option honoured) and read with the engine's safe loader; bad folders and data fail naming the argument.
(The figures themselves: tests/common/test_analysis.py, through examples/transfer_analysis.py.)"""

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")

from sj_common.config import to_dict  # noqa: E402
from sj_common.engine import CheckpointError  # noqa: E402
from sj_common.recipe import Data  # noqa: E402
from sj_transfer.analysis import analysis_data, layer_names, load_run  # noqa: E402
from sj_transfer.recipe import RECIPE  # noqa: E402


def _save_run(path, overrides, *, results=True, seed=0):
    cfg = RECIPE.config("mnist5k", overrides)
    torch.manual_seed(seed)
    model = RECIPE.build_model(cfg, Data(None, None, None, num_classes=10))
    path.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "epoch": 1}, path / "best.pt")
    if results:
        saved = {"test_acc1": 12.5, "recipe": {"prog": "sj-transfer", "config": to_dict(cfg)}}
        (path / "results.json").write_text(json.dumps(saved))
    return model


def test_load_run_rebuilds_the_saved_config_with_newer_model_options(tmp_path, one_thread):
    over = {"model.shared_head": True, "model.bn_per_step": True, "model.tau": 4.0}
    model = _save_run(tmp_path / "run", over, seed=3)
    net, cfg, results = load_run(tmp_path / "run")  # the default fallback config has neither option
    assert cfg.model.shared_head and cfg.model.bn_per_step and cfg.model.tau == 4.0
    assert net.shared_head and net.bn_per_step and net.static_head is None and not net.training
    assert results["test_acc1"] == 12.5
    saved = model.net.state_dict()
    assert saved.keys() == net.state_dict().keys()
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items())
    names, labels = layer_names(net)
    assert names[:3] == ["features.0", "features.1", "features.2"]
    assert labels[:3] == ["conv1+bn", "lif1", "pool1"]


def test_load_run_without_results_uses_the_fallback_config(tmp_path, one_thread):
    _save_run(tmp_path / "b", {"method.baseline": True}, results=False)
    net, cfg, results = load_run(tmp_path / "b", baseline=True)
    assert cfg.method.baseline and net.static_head is None and results == {}
    # a checkpoint of another network than the fallback config's: the engine's loader names the file
    _save_run(tmp_path / "c", {"method.baseline": True, "model.cfg": [8, "P"]}, results=False)
    with pytest.raises(CheckpointError, match="best.pt"):
        load_run(tmp_path / "c", baseline=False)


def test_bad_run_folder_and_data_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_dir: expected a run folder with best.pt"):
        load_run(tmp_path)
    cfg = RECIPE.config("mnist5k")
    with pytest.raises(ValueError, match="data.event: .*'mnist5k'.*'nmnist'"):
        analysis_data(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, event="nmnist")), 4)
    with pytest.raises(ValueError, match="n: expected an int >= 1, got 0"):
        analysis_data(cfg, 0)

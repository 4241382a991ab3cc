from importlib import resources

import numpy as np
import pytest
import torch
import yaml
from sj_common.config import ConfigError
from sj_common.data import PairedStaticEvent, Subset, stratified_subset
from sj_common.recipe import Data
from sj_transfer.recipe import RECIPE
from torch.utils.data import Dataset


class _Const(Dataset):
    """Items whose pixel values encode their label: static value = label / 10, event value = label + 1."""

    def __init__(self, labels, shape, offset):
        self.targets = np.asarray(labels, dtype=np.int64)
        self.classes = [str(c) for c in range(int(self.targets.max()) + 1)]
        self.shape, self.offset = shape, offset

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        y = int(self.targets[i])
        return torch.full(self.shape, y / 10 if self.offset == 0 else y + 1.0), y


def test_pairing_keeps_classes_aligned_and_sliding_keeps_labels():
    from sj_transfer.sampler import SlidingReplacement

    rng = np.random.default_rng(0)
    static = _Const(rng.permutation(np.repeat(np.arange(5), 7)), (1, 6, 6), 0)
    event = _Const(rng.permutation(np.repeat(np.arange(5), 20)), (3, 2, 6, 6), 1)
    paired = PairedStaticEvent(static, Subset(event, np.arange(100)), T=3, train_ratio=0.5, seed=1)
    xs, xe, ys = zip(*(paired[i] for i in range(len(paired))))
    xs, xe, ys = torch.stack(xs), torch.stack(xe), torch.tensor(ys)
    assert len(paired) == 50 and np.bincount(paired.targets).tolist() == [10] * 5
    torch.testing.assert_close(xs[:, 0, 0, 0, 0], ys.float() / 10)  # static partner of the same class
    torch.testing.assert_close(xe[:, 0, 0, 0, 0], ys.float() + 1)
    # the baseline trains on the same event samples (same stratified subset for the same seed)
    assert np.array_equal(paired.indices, stratified_subset(event.targets, 0.5, 1))
    mixed, mask = SlidingReplacement(lambda i, n: 0.5, batch_dim=0)(xs, xe, 0, 1)
    val = mixed[:, 0, 0, 0, 0]
    assert mask.any() and (~mask).any()
    torch.testing.assert_close(val[mask], ys[mask].float() + 1)  # replaced by its own event sample
    torch.testing.assert_close(val[~mask], ys[~mask].float() / 10)


def _configs():
    folder = resources.files("sj_transfer") / "configs"
    return {p.name[:-5]: yaml.safe_load(p.read_text()) for p in folder.iterdir() if p.name.endswith(".yaml")}


def test_every_config_is_complete():
    cfgs = _configs()
    for pair in ("ncaltech101", "cifar10dvs"):
        for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            assert f"{pair}_r{r}" in cfgs
            assert cfgs[f"{pair}_r{r}"]["data"]["train_ratio"] == r
        assert cfgs[pair]["data"]["train_ratio"] == 1.0
    assert {"mnist5k", "nomniglot", "cepdvs"} <= set(cfgs)  # the two other paper sets since issue 20
    for name, cfg in cfgs.items():
        RECIPE.config(name)  # every key known and well typed
        assert "seeds" not in cfg, name  # nothing reads it
        assert set(cfg["method"]) == {
            "alpha", "regularization", "coefficient_init", "tet", "tet_lambda", "mse_target", "sliding", "power",
            "domain_loss", "event_bn_stats",
        }, name  # fmt: skip
        assert {"T", "size", "train_ratio", "use_hsv", "crop_padding", "static_ratio"} <= set(cfg["data"]), (
            name
        )
        assert {
            "epochs",
            "batch_size",
            "lr",
            "optimizer",
            "weight_decay",
            "scheduler",
            "warmup_epochs",
        } <= set(cfg["train"]), name
    nc = cfgs["ncaltech101"]
    assert (nc["data"]["T"], nc["data"]["size"], nc["method"]["alpha"], nc["method"]["power"]) == (
        10,
        48,
        0.5,
        3,
    )
    lr = nc["train"]["lr"] * nc["train"]["batch_size"] / nc["train"]["lr_reference_batch"]  # timm scaling
    assert lr == pytest.approx(5e-3 * 120 / 1024) and nc["train"]["epochs"] == 300
    cfg = RECIPE.config("cifar10dvs")
    model = RECIPE.build_model(cfg, Data(None, None, None, num_classes=10, sequence_input=True))
    assert model.net.feature_dim == 512 * 3 * 3 and model.loss.T == 10
    with pytest.raises(ConfigError, match="data.sizee: unknown key"):
        RECIPE.config("mnist5k", {"data.sizee": 3})


def test_method_defaults_are_the_loss_signature():
    import inspect

    from sj_transfer.loss import DomainTransferLoss
    from sj_transfer.sampler import make_schedule
    from sj_transfer.train import TransferModel

    m = RECIPE.config_type.__dataclass_fields__["method"].default_factory()
    loss = inspect.signature(DomainTransferLoss).parameters
    renamed = {"coefficient_init": "init"}
    for key in (
        "alpha",
        "regularization",
        "coefficient_init",
        "tet",
        "tet_lambda",
        "mse_target",
        "domain_loss",
    ):
        assert getattr(m, key) == loss[renamed.get(key, key)].default, key
    model = inspect.signature(TransferModel).parameters
    assert (m.baseline, m.event_bn_stats) == (model["baseline"].default, model["event_bn_stats"].default)
    assert m.power == inspect.signature(make_schedule).parameters["power"].default and m.sliding == "sliding"


@pytest.mark.slow  # emulates the event twin's frames
def test_subset_seed_gives_baseline_and_transfer_one_subset_for_every_seed(frame_cache):
    def indices(baseline, seed, subset_seed=None):
        sets = {
            "data.T": 2,
            "data.train_ratio": 0.1,
            "data.subset_seed": subset_seed,
            "data.cache_dir": frame_cache,
        }
        cfg = RECIPE.config("mnist5k", {**sets, "method.baseline": baseline, "train.seed": seed})
        return RECIPE.build_data(cfg).train.indices

    per_seed = {s: indices(False, s) for s in (0, 1)}
    assert not np.array_equal(per_seed[0], per_seed[1])  # no subset_seed: the training seed draws it
    kept = [indices(b, s, subset_seed=0) for b in (False, True) for s in (1, 2)]
    assert all(np.array_equal(k, per_seed[0]) for k in kept)


@pytest.mark.slow
def test_transfer_table_example_smoke(tmp_path, monkeypatch):
    import importlib
    from pathlib import Path

    # importable by name, so the spawned worker processes can unpickle its job function
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "examples"))
    table = importlib.import_module("transfer_table")
    args = ["--out", str(tmp_path), "--ratios", "0.1", "--seeds", "0", "1", "--epochs", "1"]
    res = table.main([*args, "--max-steps-per-epoch", "1", "--jobs", "2"])
    (row,) = res["summary"]
    assert row["train_ratio"] == 0.1 and len(res["runs"]) == 4
    assert {r["method"] for r in res["runs"]} == {"baseline", "transfer"}
    assert row["margin"] == pytest.approx(row["transfer_mean"] - row["baseline_mean"])
    assert (tmp_path / "table.json").is_file()

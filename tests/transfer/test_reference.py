"""Transfer-for-DVS's Transfer_VGG_SNN (shared/reference-keys/transfer_vgg_snn_ncaltech101_ref.txt) loads into
our TransferModel: the per-step coefficients concatenated, features/heads by value, and the stored LIF
threshold and surrogate alpha checked against our config (a difference fails naming the key)."""

import pytest
import torch
from sj_common.reference import ReferenceCheckpointError, detect_source, load_reference_checkpoint
from sj_transfer.loss import DomainTransferLoss
from sj_transfer.models import TransferVGGSNN
from sj_transfer.reference import SOURCE  # registers the converter
from sj_transfer.train import TransferModel

from tests.reference_files import check_mapping, needs_keys, reference_state, write_reference

pytestmark = needs_keys
NAME = "transfer_vgg_snn_ncaltech101"
_OURS = [0, 2, 5, 7, 10, 12, 15, 17]  # notes section 3: our conv+BN container indices
_REF = [0, 1, 3, 4, 6, 7, 9, 10]


def build_model(static_head: bool = True) -> TransferModel:
    """The paper's N-Caltech101 network (48x48, T=10, LIF threshold 0.5, QGateGrad alpha 2), with its loss."""
    return TransferModel(TransferVGGSNN(101, static_head=static_head), DomainTransferLoss(10))


def _expected(ref):
    exp, consts = {}, []
    for i, j in zip(_REF, _OURS):
        exp[f"feature.{i}.conv.weight"] = (f"net.features.{j}.0.weight", None)
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            exp[f"feature.{i}.bn.{p}"] = (f"net.features.{j}.1.{p}", None)
        consts += [f"feature.{i}.node.threshold", f"feature.{i}.node.act_fun.alpha"]
    for r, o in (("rgb_fc", "static_head"), ("dvs_fc", "event_head")):
        exp.update({f"{r}.1.{p}": (f"net.{o}.1.{p}", None) for p in ("weight", "bias")})
    coeffs = [f"coefficient.{t}" for t in range(10)]
    return exp, consts, coeffs


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model()  # built for real: the copy path (not assign)


def test_transfer_values_coefficients_and_constants(tmp_path, model):
    ref = reference_state(NAME)
    for t in range(10):
        ref[f"coefficient.{t}"] = torch.tensor([0.25 * t])
    path = write_reference(tmp_path / "model_best.pth.tar", NAME, ref)
    conv = load_reference_checkpoint(model, path, source="transfer_for_dvs")
    exp, consts, coeffs = _expected(ref)
    check_mapping(model, ref, exp, consts=consts, others={"loss.coefficients": coeffs})
    assert len(conv.used) == len(ref) == 78 and len(conv.state) == 53
    assert model.loss.coefficients.tolist() == [0.25 * t for t in range(10)]  # torch.cat over t
    with torch.no_grad():
        out = model.net.eval()(torch.rand(2, 1, 2, 48, 48))
    assert out.shape == (2, 1, 101)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("feature.3.node.threshold", 0.25, r"feature\.3\.node\.threshold = 0\.25 in the file, ours v_threshold = 0\.5 \(net\.features\.6\)"),
        ("feature.10.node.act_fun.alpha", 4.0, r"feature\.10\.node\.act_fun\.alpha = 4 in the file, ours surrogate alpha = 2"),
    ],
)  # fmt: skip
def test_stored_constants_must_match_the_config(tmp_path, model, key, value, match):
    ref = reference_state(NAME)
    ref[key] = torch.tensor(value)
    path = write_reference(tmp_path / "model_best.pth.tar", NAME, ref)
    before = model.net.event_head[1].weight.clone()
    with pytest.raises(ReferenceCheckpointError, match=match):
        load_reference_checkpoint(model, path, source="transfer_for_dvs")
    assert torch.equal(model.net.event_head[1].weight, before)  # nothing loaded


def test_event_only_network_names_the_unplaced_keys(tmp_path):
    ref = reference_state(NAME, meta=True)
    path = write_reference(tmp_path / "model_best.pth.tar", NAME, ref)
    with torch.device("meta"):
        baseline = build_model(static_head=False)
    with pytest.raises(
        ReferenceCheckpointError,
        match=r"ours does not have \(2\): \['net\.static_head\.1\.weight \(from rgb_fc\.1\.weight\)'",
    ):
        load_reference_checkpoint(baseline, path, source="transfer_for_dvs")
    load_reference_checkpoint(baseline, path, source="transfer_for_dvs", ignore=["rgb_fc.*"])
    assert baseline.net.event_head[1].weight.shape == (101, 4608)


def _tiny_transfer_reference(tmp_path):
    """A Transfer_VGG_SNN checkpoint in the authors' format (timm container, their key names) cut to two conv
    layers [8, P, 16, P] and 8 steps for MNIST-5k (17x17 -> 4x4, 10 classes), and a config for it."""
    import yaml

    from tests.reference_files import read_keys

    scale = {64: 8, 128: 16, 2: 2, 3: 3, 4608: 256, 101: 10, 1: 1}
    g = torch.Generator().manual_seed(0)
    ref = {}
    for key, shape, value in read_keys(NAME)[1]:
        if key.startswith("feature.") and key.split(".")[1] not in ("0", "1"):
            continue
        if key.startswith("coefficient.") and int(key.split(".")[1]) >= 8:
            continue
        shape = tuple(scale[d] for d in shape)
        if key.endswith("num_batches_tracked"):
            ref[key] = torch.tensor(5)
        elif value is not None:
            ref[key] = torch.full(shape, float(value))
        elif key.endswith("running_var"):
            ref[key] = torch.rand(shape, generator=g) + 0.5
        else:
            ref[key] = torch.randn(shape, generator=g)
    path = write_reference(tmp_path / "model_best.pth.tar", NAME, ref)
    cfg = {
        "data": {"event": "mnist5k", "static": "mnist5k", "num_classes": 10, "T": 8, "size": 17},
        "model": {
            "cfg": [8, "P", 16, "P"],
            "v_threshold": 0.5,
            "surrogate": "qgategrad",
            "surrogate_alpha": 2.0,
        },
        "train": {"out": str(tmp_path / "run"), "epochs": 1, "batch_size": 250, "seed": 0, "amp": False},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "cfg.yaml", ref


@pytest.mark.slow
def test_cli_eval_from_reference(tmp_path):
    from tests.console import eval_from_reference

    path, cfg, _ = _tiny_transfer_reference(tmp_path)
    eval_from_reference("sj-transfer", cfg, path, tmp_path / "eval")


def test_recipe_hook_checks_the_config_threshold(tmp_path):
    from sj_common.config import UsageError
    from sj_transfer.recipe import RECIPE

    path, _, ref = _tiny_transfer_reference(tmp_path)

    def tiny(v_threshold):
        net = TransferVGGSNN(10, image_size=17, cfg=[8, "P", 16, "P"], v_threshold=v_threshold)
        return TransferModel(net, DomainTransferLoss(8))

    model = RECIPE.load_reference(tiny(0.5), path)
    assert torch.equal(model.net.event_head[1].weight, ref["dvs_fc.1.weight"])
    with pytest.raises(
        UsageError, match=r"feature\.0\.node\.threshold = 0\.5 in the file, ours v_threshold = 1"
    ):
        RECIPE.load_reference(tiny(1.0), path)


def test_source_detected_from_its_key_signature():
    """``source=None``: a Transfer_VGG_SNN (``coefficient.{t}``, ``feature.{i}.conv``) is told apart from the other installed sources' files."""
    assert SOURCE == "transfer_for_dvs"
    assert detect_source({"coefficient.0", "feature.0.conv.weight"}) == SOURCE
    assert detect_source({"feature.0.conv.weight"}) == SOURCE
    with pytest.raises(ReferenceCheckpointError, match="source="):
        detect_source({"fc.weight"})

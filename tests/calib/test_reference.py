"""QCFS / COS reference ANNs (shared/reference-keys/{cifar100,imagenet}_{vgg16,resnet20,resnet34}_ref.txt)
load into sj_calib's models: every key used, every tensor of ours set from its reference tensor (or from the
conv-bias fold, checked as a function), and anything that does not fit fails naming the keys.

Models are built on the meta device where possible and materialised from the file (assign), so the
ImageNet-size ones cost no initialisation; ImageNet VGG-16 (138 M parameters) is checked with a meta file
(keys and shapes; its rules are the CIFAR VGG-16's, checked by value).
"""

from pathlib import Path

import pytest
import torch
import yaml
from sj_calib.models import resnet20, resnet34, vgg16
from sj_calib.reference import SOURCE  # registers the converter
from sj_common.reference import ReferenceCheckpointError, detect_source, load_reference_checkpoint

from tests.reference_files import (
    check_mapping,
    fold_identity,
    needs_keys,
    reference_state,
    write_reference,
)

pytestmark = needs_keys

_VGG_OURS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # notes section 1: our conv+BN indices
_VGG_REF = [
    (1, 0),
    (1, 4),
    (2, 0),
    (2, 4),
    (3, 0),
    (3, 4),
    (3, 8),
    (4, 0),
    (4, 4),
    (4, 8),
    (5, 0),
    (5, 4),
    (5, 8),
]
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _vgg_expected(ref, imagenet: bool):
    exp, folds = {}, []
    for j, (L, i) in zip(_VGG_OURS, _VGG_REF):
        exp[f"layer{L}.{i}.weight"] = (f"{j}.0.weight", None)
        for p in _BN:
            exp[f"layer{L}.{i + 1}.{p}"] = (f"{j}.1.{p}", None)
        exp[f"layer{L}.{i + 2}.up"] = (f"{j + 1}.threshold", None)
        folds.append((f"layer{L}.{i}.bias", f"layer{L}.{i + 1}.", f"{j}.1."))
    c = 32 + imagenet  # ImageNet: our AdaptiveAvgPool2d(7) (stateless) comes before the Flatten
    for r, o in [(1, c), (4, c + 2), (7, c + 4)]:
        exp[f"classifier.{r}.weight"], exp[f"classifier.{r}.bias"] = (
            (f"{o}.weight", None),
            (f"{o}.bias", None),
        )
    exp["classifier.2.up"], exp["classifier.5.up"] = (
        (f"{c + 1}.threshold", None),
        (f"{c + 3}.threshold", None),
    )
    return exp, folds


def _resnet_expected(ref, blocks):
    exp = {"conv1.0.weight": ("stem.0.0.weight", None), "conv1.2.up": ("stem.1.threshold", None)}
    exp.update({f"conv1.1.{p}": (f"stem.0.1.{p}", None) for p in _BN})
    exp.update({f"fc.{p}": (f"fc.{p}", None) for p in ("weight", "bias")})
    n = 0
    for s, nb in enumerate(blocks, start=2):
        for b in range(nb):
            pre, ours = f"conv{s}_x.{b}.", f"layers.{n}."
            for k in ref:
                if not k.startswith(pre):
                    continue
                rest = k[len(pre) :]
                rest = rest.replace("residual_function.", "residual.").replace("relu.up", "act.threshold")
                exp[k] = (ours + rest.replace(".up", ".threshold"), None)
            n += 1
    return exp


def test_cifar100_vgg16_values_and_fold(tmp_path):
    ref = reference_state("cifar100_vgg16")
    path = write_reference(tmp_path / "vgg16.pth", "cifar100_vgg16", ref)
    with torch.device("meta"):
        model = vgg16(num_classes=100, L=4)
    conv = load_reference_checkpoint(model, path, source="qcfs")
    assert len(conv.folded) == 13 and not conv.dropped
    exp, folds = _vgg_expected(ref, imagenet=False)
    check_mapping(model, ref, exp, folds=folds)
    x = torch.randn(2, 3, 8, 8)
    fold_identity(ref["layer1.0.weight"], ref["layer1.0.bias"], "layer1.1.", ref, model[0], x)
    with torch.no_grad():
        assert model.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_imagenet_vgg16_keys_and_shapes(tmp_path):
    ref = reference_state("imagenet_vgg16", meta=True)
    path = write_reference(tmp_path / "vgg16.pth", "imagenet_vgg16", ref)
    with torch.device("meta"):
        model = vgg16(num_classes=1000, L=8, imagenet=True)
    conv = load_reference_checkpoint(model, path, source="qcfs")
    assert len(conv.state) == 99 and len(conv.folded) == 13
    exp, folds = _vgg_expected(ref, imagenet=True)
    check_mapping(model, ref, exp, folds=folds)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_cifar100_resnet20_values(tmp_path, prefix):
    ref = reference_state("cifar100_resnet20")
    path = write_reference(tmp_path / "r20.pth", "cifar100_resnet20", {prefix + k: v for k, v in ref.items()})
    model = resnet20(num_classes=100, L=4)  # built for real: the copy path (not assign)
    load_reference_checkpoint(model, path)  # source detected from the keys
    check_mapping(model, ref, _resnet_expected(ref, [3, 3, 3]))
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.rand(2, 3, 32, 32))).all()


def test_imagenet_resnet34_values_with_the_config_stem(tmp_path):
    ref = reference_state("imagenet_resnet34")
    path = write_reference(
        tmp_path / "r34.pth", "imagenet_resnet34", {"module." + k: v for k, v in ref.items()}
    )
    cfg_file = Path(__import__("sj_calib").__file__).parent / "configs" / "imagenet_resnet34.yaml"
    m = yaml.safe_load(cfg_file.read_text())["model"]
    assert m["stem"] == "cifar"  # the reference's ResNet-34 (notes section 1): the config builds that network
    with torch.device("meta"):
        model = resnet34(num_classes=m["num_classes"], L=m["L"], stem=m["stem"])
    load_reference_checkpoint(model, path, source="qcfs")
    check_mapping(model, ref, _resnet_expected(ref, [3, 4, 6, 3]))
    with torch.device("meta"):
        other = resnet34(num_classes=1000, L=8, stem="imagenet")
    with pytest.raises(
        ReferenceCheckpointError, match=r"stem\.0\.0\.weight: file \(64, 3, 3, 3\), ours \(64, 3, 7, 7\)"
    ) as e:
        load_reference_checkpoint(other, path, source="qcfs")
    assert "stem='cifar'" in str(e.value)


def test_missing_or_extra_key_fails_naming_it_and_loads_nothing(tmp_path):
    ref = reference_state("cifar100_resnet20")
    model = resnet20(num_classes=100, L=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    missing = dict(ref)
    del missing["conv3_x.0.shortcut.0.weight"]
    extra = dict(ref, **{"conv2_x.0.se.fc.weight": torch.ones(4, 16)})
    with pytest.raises(
        ReferenceCheckpointError,
        match=r"nothing in the file sets \(1\): \['layers\.3\.shortcut\.0\.weight'\]",
    ):
        load_reference_checkpoint(
            model, write_reference(tmp_path / "m.pth", "cifar100_resnet20", missing), "qcfs"
        )
    with pytest.raises(
        ReferenceCheckpointError, match=r"no rule maps \(1\): \['conv2_x\.0\.se\.fc\.weight'\]"
    ):
        load_reference_checkpoint(
            model, write_reference(tmp_path / "e.pth", "cifar100_resnet20", extra), "qcfs"
        )
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    ignored = load_reference_checkpoint(model, tmp_path / "e.pth", "qcfs", ignore=["conv2_x.0.se.*"])
    assert "conv2_x.0.se.fc.weight" in ignored.used
    with pytest.raises(ReferenceCheckpointError, match=r"fc\.weight: file \(100, 64\), ours \(10, 64\)"):
        load_reference_checkpoint(
            resnet20(num_classes=10, L=4), tmp_path / "e.pth", "qcfs", ignore=["*.se.*"]
        )


def _mnist_resnet20_reference(tmp_path):
    """A ResNet-20 checkpoint in the QCFS format (bare state_dict, the reference's key names) for 1-channel
    28x28 MNIST-5k with 10 classes, and a config that builds our ResNet-20 for it."""
    ref = reference_state("cifar100_resnet20")
    ref["conv1.0.weight"] = torch.randn(16, 1, 3, 3)
    ref["fc.weight"], ref["fc.bias"] = torch.randn(10, 64) * 0.1, torch.zeros(10)
    for k in ref:
        if k.endswith(".up"):
            ref[k] = torch.tensor([2.0])
    path = write_reference(tmp_path / "resnet20.pth", "cifar100_resnet20", ref)
    cfg = {
        "name": "mnist_resnet20",
        "data": {"name": "mnist5k", "split_seed": 0},
        "model": {"name": "resnet20", "num_classes": 10, "in_channels": 1, "L": 4},
        "calib": {"T": [2], "rho": 4, "batch_size": 500, "max_batches": 1},
        "train": {"out": str(tmp_path / "run"), "epochs": 1, "batch_size": 64, "lr": 0.05, "seed": 0},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "cfg.yaml"


@pytest.mark.slow
def test_cli_eval_from_reference(tmp_path):
    from tests.console import eval_from_reference

    path, cfg = _mnist_resnet20_reference(tmp_path)
    eval_from_reference("sj-calib", cfg, path, tmp_path / "eval")


def test_recipe_hook_is_a_usage_error_naming_the_key(tmp_path):
    from sj_calib.recipe import RECIPE
    from sj_common.config import UsageError

    path, _ = _mnist_resnet20_reference(tmp_path)
    with pytest.raises(
        UsageError, match=r"(?s)--from-reference: .*fc\.weight: file \(10, 64\), ours \(7, 64\)"
    ):
        RECIPE.load_reference(resnet20(num_classes=7, in_channels=1, L=4), path)
    model = RECIPE.load_reference(resnet20(num_classes=10, in_channels=1, L=4), path)
    assert model.layers[0].act.threshold.item() == 2.0


def test_source_detected_from_its_key_signature():
    """``source=None``: a QCFS VGG-16 (``layer1.0``) or ResNet (``conv1.2.up``) is told apart from the other installed sources' files."""
    assert SOURCE == "qcfs"
    assert detect_source({"layer1.0.weight", "classifier.1.weight"}) == SOURCE
    assert detect_source({"conv1.2.up", "fc.weight"}) == SOURCE
    with pytest.raises(ReferenceCheckpointError, match="source="):
        detect_source({"fc.weight"})

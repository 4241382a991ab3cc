"""BKDSNN students (shared/reference-keys/sew_resnet{18,34,50}_ref.txt, spikingformer_*_ref.txt) load into
sj_bkd's students; the CML+Spikingformer architecture matches the reference (no tokenizer residual, no LIF
before the head); BKDSNN files holding ``args`` (argparse.Namespace) load weights-only.

Students are built on the meta device and materialised from the file (assign) except where noted, so the
ImageNet sizes cost no initialisation; the 8-768 Spikingformer (66 M parameters) is checked with a meta file
(keys and shapes; its rules are the 8-384's, checked by value).
"""

import argparse

import pytest
import torch
from sj_bkd.models import create_model, load_weights
from sj_bkd.reference import SOURCE  # registers the converter
from sj_common.reference import ReferenceCheckpointError, detect_source, load_reference_checkpoint
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode

from tests.reference_files import (
    check_mapping,
    fold_identity,
    needs_keys,
    reference_state,
    write_reference,
)

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _sew_expected(ref):
    exp = {}
    for k in ref:
        ours = (
            k.replace(".downsample.0.module.0.", ".downsample.0.")
            .replace(".downsample.0.module.1.", ".downsample.1.")
            .replace(".module.0.", ".")
        )
        for i in "123":
            ours = ours.replace(f".conv{i}.module.1.", f".bn{i}.")
        exp[k] = (ours, None)
    return exp


def _spikingformer_expected(ref, depth):
    def w2d(t):
        return t.unsqueeze(-1) if t.dim() == 3 else t

    exp, folds, dropped = {}, [], []
    pe = "patch_embed."
    tok = [("proj", "stages.0.0", "stages.0.1")] + [
        (f"proj{i}", f"stages.{i}.1", f"stages.{i}.2") for i in (1, 2, 3)
    ]
    for r, conv, bn in tok + [("proj4", "rpe.1", "rpe.2")]:
        exp[f"{pe}{r}_conv.weight"] = (f"tokenizer.{conv}.weight", None)
        exp.update({f"{pe}{r}_bn.{p}": (f"tokenizer.{bn}.{p}", None) for p in _BN})
    for n in range(depth):
        b, o = f"block.{n}.", f"blocks.{n}."
        dropped += [f"{b}norm{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
        for q in "qkv":
            exp[f"{b}attn.{q}_conv.weight"] = (f"{o}attn.{q}.0.weight", w2d)
            exp.update({f"{b}attn.{q}_bn.{p}": (f"{o}attn.{q}.1.{p}", None) for p in _BN})
        for r, conv, bn in [("attn.proj", "attn.proj.0", "attn.proj.1"), ("mlp.mlp1", "mlp.net.1", "mlp.net.2"),
                            ("mlp.mlp2", "mlp.net.4", "mlp.net.5")]:  # fmt: skip
            exp[f"{b}{r}_conv.weight"] = (f"{o}{conv}.weight", w2d)
            exp.update({f"{b}{r}_bn.{p}": (f"{o}{bn}.{p}", None) for p in _BN})
            folds.append((f"{b}{r}_conv.bias", f"{b}{r}_bn.", f"{o}{bn}."))
    exp.update({f"head.{p}": (f"head.{p}", None) for p in ("weight", "bias")})
    return exp, folds, dropped


@needs_keys
@pytest.mark.parametrize("depth", [18, 34, 50])
def test_sew_resnet_values(tmp_path, depth):
    name = f"sew_resnet{depth}"
    ref = reference_state(name)
    path = write_reference(tmp_path / "checkpoint_max_test_acc1.pth", name, ref, T=4, connect_f="ADD")
    with torch.device("meta"):
        model = create_model(name, num_classes=1000)
    conv = load_reference_checkpoint(model, path, source="bkdsnn")
    assert len(conv.state) == len(ref) and not conv.folded and not conv.dropped
    check_mapping(model, ref, _sew_expected(ref))
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(
        {18: 11.69, 34: 21.79, 50: 25.56}[depth], abs=0.01
    )  # the README's parameter counts (notes section 2)


@needs_keys
def test_sew_connect_function_checked_against_args(tmp_path):
    ref = reference_state("sew_resnet18")
    path = write_reference(tmp_path / "iand.pth", "sew_resnet18", ref, T=4, connect_f="IAND")
    with torch.device("meta"):
        model = create_model("sew_resnet18", num_classes=1000)
    with pytest.raises(
        ReferenceCheckpointError, match=r"args\.connect_f = 'IAND' in the file, ours cnf = \['ADD'\]"
    ):
        load_reference_checkpoint(model, path, source="bkdsnn")


_SF = {  # reference-keys name -> (num_classes, dim, depth, pool_stages, values checked)
    "spikingformer_cifar10_4_384": (10, 384, 4, (2, 3), True),
    "spikingformer_cifar100_4_384": (100, 384, 4, (2, 3), True),
    "spikingformer_imagenet_8_384": (1000, 384, 8, (0, 1, 2, 3), True),
    "spikingformer_imagenet_8_512": (1000, 512, 8, (0, 1, 2, 3), True),
    "spikingformer_imagenet_8_768": (1000, 768, 8, (0, 1, 2, 3), False),
}


@needs_keys
@pytest.mark.parametrize("name", sorted(_SF))
def test_spikingformer_values(tmp_path, name):
    k, dim, depth, pools, values = _SF[name]
    ref = reference_state(name, meta=not values)
    path = write_reference(tmp_path / "model_best.pth.tar", name, ref)
    kw = dict(num_classes=k, dim=dim, depth=depth, heads=8, pool_stages=pools)
    if name == "spikingformer_cifar100_4_384":
        model = create_model("spikingformer_cml", **kw)  # built for real: the copy path (not assign)
    else:
        with torch.device("meta"):
            model = create_model("spikingformer_cml", **kw)
    conv = load_reference_checkpoint(model, path, source="bkdsnn")
    assert len(conv.dropped) == 4 * depth and len(conv.folded) == 3 * depth
    exp, folds, dropped = _spikingformer_expected(ref, depth)
    check_mapping(model, ref, exp, dropped=dropped, folds=folds)
    if name == "spikingformer_cifar100_4_384":
        x = torch.randn(2, dim, 3, 5)  # 1x1 convs: conv(x) + bias -> BN == our conv -> BN(shifted mean)
        b = "block.1."
        functional.set_step_mode(model, "s")  # the blocks' 1x1 conv+BN as single-step modules for this check
        fold_identity(ref[b + "attn.proj_conv.weight"], ref[b + "attn.proj_conv.bias"], b + "attn.proj_bn.", ref,
                      model.blocks[1].attn.proj, x)  # fmt: skip
        fold_identity(ref[b + "mlp.mlp1_conv.weight"], ref[b + "mlp.mlp1_conv.bias"], b + "mlp.mlp1_bn.", ref,
                      torch.nn.Sequential(*model.blocks[1].mlp.net[1:3]), x)  # fmt: skip
        functional.set_step_mode(model, "m")
        with torch.no_grad():
            out = model.eval()(torch.rand(2, 1, 3, 32, 32))
        assert out.shape == (2, 1, 100) and torch.isfinite(out).all()


@needs_keys
def test_spikingformer_state_dict_ema_and_missing_key(tmp_path):
    name = "spikingformer_cifar10_4_384"
    ref, ema = reference_state(name), reference_state(name, seed=1)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"state_dict": ref, "state_dict_ema": ema, "args": argparse.Namespace(model="x")}, path)
    with torch.device("meta"):
        model = create_model(
            "spikingformer_cml", num_classes=10, dim=384, depth=4, heads=8, pool_stages=(2, 3)
        )
    load_reference_checkpoint(model, path, source="bkdsnn", container_key="state_dict_ema")
    assert torch.equal(model.head.weight, ema["head.weight"])
    del ref["block.2.attn.k_bn.running_var"]
    torch.save({"state_dict": ref}, path)
    kw = dict(num_classes=10, dim=384, heads=8, pool_stages=(2, 3))
    with torch.device("meta"):
        model, shallow = (
            create_model("spikingformer_cml", depth=4, **kw),
            create_model("spikingformer_cml", depth=1, **kw),
        )
    with pytest.raises(
        ReferenceCheckpointError,
        match=r"nothing in the file sets \(1\): \['blocks\.2\.attn\.k\.1\.running_var'\]",
    ):
        load_reference_checkpoint(model, path, source="bkdsnn")
    with pytest.raises(
        ReferenceCheckpointError,
        match=r"ours does not have \(\d+\): \['blocks\.1\.attn\.q\.0\.weight \(from block\.1\.attn\.q_conv\.weight\)'",
    ):
        load_reference_checkpoint(shallow, path, source="bkdsnn")


def test_spikingformer_tokenizer_and_head_as_the_reference():
    torch.manual_seed(0)
    net = create_model(
        "spikingformer_cml", num_classes=5, dim=32, depth=1, heads=4, pool_stages=(2, 3)
    ).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # BN outputs around 1: the LIFs fire, the stream is not 0
            torch.nn.init.normal_(m.bias, 1.0, 0.5)
    outside = [
        n
        for n, m in net.named_modules()
        if isinstance(m, BaseNode) and not n.startswith(("tokenizer", "blocks"))
    ]
    assert outside == []  # no neuron before pooling and the head: it acts on the real-valued stream
    x = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        tok = net.tokenizer(x)
        functional.reset_net(net)
        stages = net.tokenizer.stages(x)
        rpe = net.tokenizer.rpe(stages)
        functional.reset_net(net)
        torch.testing.assert_close(tok, rpe)  # the tokenizer returns rpe(x): no residual x + rpe(x)
        assert (tok - (stages + rpe)).abs().max() > 0.1
        out = net(x)
        functional.reset_net(net)
        feats = net.forward_features(x)
        functional.reset_net(net)
    torch.testing.assert_close(out, net.head(feats.flatten(3).mean(3)))


def test_load_weights_accepts_args_namespace(tmp_path):
    net = create_model("sew_tiny", num_classes=10)
    path = tmp_path / "student.pth"
    torch.save(
        {"model": net.state_dict(), "args": argparse.Namespace(T=4, connect_f="ADD"), "epoch": 2}, path
    )
    other = create_model("sew_tiny", num_classes=10)
    load_weights(other, path)
    torch.testing.assert_close(other.fc.weight, net.fc.weight)


def _tiny_spikingformer_reference(tmp_path):
    """A CML+Spikingformer 1-32 checkpoint in BKDSNN's format (timm container, the reference's key names:
    the CIFAR-10 4-384 list cut to one block and scaled to dim 32, 1-channel input) and a config for it."""
    import yaml

    from tests.reference_files import read_keys

    scale = {384: 32, 1536: 128, 192: 16, 96: 8, 48: 4, 3: 3, 1: 1, 10: 10}
    g = torch.Generator().manual_seed(0)
    ref = {}
    for key, shape, _ in read_keys("spikingformer_cifar10_4_384")[1]:
        if key.startswith("block.") and not key.startswith("block.0."):
            continue
        shape = tuple(scale[d] for d in shape)
        if key == "patch_embed.proj_conv.weight":
            shape = (4, 1, 3, 3)
        if key.endswith("num_batches_tracked"):
            ref[key] = torch.tensor(5)
        elif key.endswith("running_var"):
            ref[key] = torch.rand(shape, generator=g) + 0.5
        else:
            ref[key] = torch.randn(shape, generator=g)
    path = write_reference(tmp_path / "model_best.pth.tar", "spikingformer_cifar10_4_384", ref)
    cfg = {
        "data": {"name": "mnist5k", "T": 1, "train_subset": 64},
        "student": {
            "name": "spikingformer_cml",
            "layer": "blocks",
            "kwargs": {"in_channels": 1, "dim": 32, "depth": 1, "heads": 4, "pool_stages": [2, 3]},
        },
        "teacher": {"name": "cnn_tiny", "layer": "features", "kind": "cnn", "kwargs": {"width": 8}},
        "train": {"out": str(tmp_path / "run"), "epochs": 1, "batch_size": 250, "seed": 0},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "cfg.yaml", ref


@pytest.mark.slow
def test_cli_eval_from_reference(tmp_path):
    from tests.console import eval_from_reference

    path, cfg, _ = _tiny_spikingformer_reference(tmp_path)
    eval_from_reference("sj-bkd", cfg, path, tmp_path / "eval")


def test_recipe_hook_loads_the_student(tmp_path):
    from sj_bkd.recipe import RECIPE
    from sj_common.config import UsageError

    path, _, ref = _tiny_spikingformer_reference(tmp_path)
    student = create_model("spikingformer_cml", num_classes=10, in_channels=1, dim=32, depth=1, heads=4)
    wrapper = torch.nn.Module()
    wrapper.student = student  # the recipe's DistillationModel holds the student as .student
    assert RECIPE.load_reference(wrapper, path) is wrapper
    assert torch.equal(student.head.weight, ref["head.weight"])
    with pytest.raises(
        UsageError, match=r"(?s)--from-reference: .*head\.weight: file \(10, 32\), ours \(7, 32\)"
    ):
        RECIPE.load_reference(
            create_model("spikingformer_cml", num_classes=7, in_channels=1, dim=32, depth=1, heads=4), path
        )


def test_source_detected_from_its_key_signature():
    """``source=None``: a Spikingformer (``patch_embed``) or an old-SpikingJelly SEW-ResNet (``.module.0``) is told apart from the other installed sources' files."""
    assert SOURCE == "bkdsnn"
    assert detect_source({"patch_embed.proj_conv.weight"}) == SOURCE
    assert detect_source({"layer1.0.conv1.module.0.weight"}) == SOURCE
    with pytest.raises(ReferenceCheckpointError, match="source="):
        detect_source({"fc.weight"})

"""The authors' QCFS / COS checkpoints -> :mod:`sj_calib.models` (reference source ``qcfs``).

Registered with :func:`sj_common.reference.register_source` when this module is imported; the
``sj_common.reference_sources`` entry point of sj-calib names this module, so
``sj_common.reference.load_reference_checkpoint(model, path, source="qcfs")`` finds it without an import.

The files are ``torch.save(model.state_dict())`` (ImageNet multi-GPU files carry ``module.``, stripped by
sj_common). VGG-16 maps by layer order onto our flat ``nn.Sequential`` (``up`` -> ``threshold``, conv biases
folded into the following BN's running mean); ResNet-20/34 is a 1:1 rename onto ``stem``/``layers``/``fc``.
The key names are those of the authors' released files (the tests check every mapping against their key
lists when the project's reference key lists are beside the repository).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from sj_common.reference import Conversion, fold_bias, map_keys, our_shapes, register_source
from torch import nn

__all__ = ["SOURCE", "convert_qcfs"]

#: The name this module registers (``load_reference_checkpoint(..., source=SOURCE)``).
SOURCE = "qcfs"


def _is_qcfs(keys: set[str]) -> bool:
    return "layer1.0.weight" in keys or "conv1.2.up" in keys


@register_source(SOURCE, _is_qcfs, "QCFS / COS ANNs (VGG-16, ResNet-20/34) -> sj_calib.models")
def convert_qcfs(ref: Mapping[str, torch.Tensor], model: nn.Module, extras: Mapping[str, Any]) -> Conversion:
    """QCFS/COS VGG-16 (order mapping onto our flat Sequential, conv bias folded) or ResNet (1:1 rename)."""
    if any(k.startswith("layer1.0.") for k in ref):
        return _qcfs_vgg(ref, model)
    return _qcfs_resnet(ref, model)


def _qcfs_vgg(ref: Mapping[str, torch.Tensor], model: nn.Module) -> Conversion:
    conv = Conversion()
    # Reference units in module order: layer{1..5}.{i} then classifier.{i}; kind from the keys.
    units: dict[tuple[int, int], dict[str, str]] = {}
    for k in ref:
        m = re.fullmatch(r"(?:layer(\d+)|(classifier))\.(\d+)\.(\w+)", k)
        if m:
            sec = 99 if m.group(2) else int(m.group(1))
            units.setdefault((sec, int(m.group(3))), {})[m.group(4)] = k
    ref_seq = []  # (kind, {param: ref key})
    for _, params in sorted(units.items()):
        if "up" in params:
            ref_seq.append(("act", params))
        elif "running_mean" in params:
            if ref_seq and ref_seq[-1][0] == "conv":
                ref_seq[-1] = ("convbn", {"conv": ref_seq[-1][1], "bn": params})
            else:
                ref_seq.append(("bn", params))
        elif "weight" in params and ref[params["weight"]].dim() == 4:
            ref_seq.append(("conv", params))
        elif "weight" in params and ref[params["weight"]].dim() == 2:
            ref_seq.append(("fc", params))
    # Our units: top-level children of the Sequential, kind from their state keys.
    ours: dict[int, set[str]] = {}
    for k in model.state_dict():
        head, _, rest = k.partition(".")
        if head.isdigit():
            ours.setdefault(int(head), set()).add(rest)
    our_seq = []
    for idx, rest in sorted(ours.items()):
        if rest == {"threshold"}:
            our_seq.append(("act", idx))
        elif "0.weight" in rest and "1.running_mean" in rest:
            our_seq.append(("convbn", idx))
        elif rest >= {"weight", "bias"}:
            our_seq.append(("fc", idx))
        else:
            our_seq.append(("?", idx))
    for i, ((rk, rp), (ok, oi)) in enumerate(zip(ref_seq, our_seq)):
        if rk != ok:
            conv.problems.append(
                f"VGG layer order differs at unit {i}: the reference has a {rk} there, ours (index {oi}) a {ok}"
            )
            break
        if rk == "act":
            conv.put(rp["up"], f"{oi}.threshold", ref[rp["up"]])
        elif rk == "fc":
            for p, rkey in rp.items():
                conv.put(rkey, f"{oi}.{p}", ref[rkey])
        else:  # convbn
            for p, rkey in rp["bn"].items():
                conv.put(rkey, f"{oi}.1.{p}", ref[rkey])
            conv.put(rp["conv"]["weight"], f"{oi}.0.weight", ref[rp["conv"]["weight"]])
            if "bias" in rp["conv"]:
                bkey = rp["conv"]["bias"]
                if "0.bias" in ours[oi]:
                    conv.put(bkey, f"{oi}.0.bias", ref[bkey])
                else:  # ours has no conv bias (BN follows)
                    fold_bias(conv, bkey, ref[bkey], f"{oi}.1.")
    return conv


def _qcfs_resnet(ref: Mapping[str, torch.Tensor], model: nn.Module) -> Conversion:
    conv = Conversion()
    # running block index n over the stages conv2_x, conv3_x, ...
    blocks: dict[int, int] = {}
    for k in ref:
        m = re.match(r"conv(\d+)_x\.(\d+)\.", k)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            blocks[s] = max(blocks.get(s, 0), b + 1)
    offset, n = {}, 0
    for s in sorted(blocks):
        offset[s], n = n, n + blocks[s]

    def block(m, v, part):
        n = offset[int(m.group(1))] + int(m.group(2))
        return f"layers.{n}.{part}" + re.sub(r"(^|\.)up$", r"\1threshold", m.group(3)), v

    map_keys(
        ref,
        conv,
        [
            (r"conv1\.2\.up", "stem.1.threshold"),
            (r"conv1\.([01])\.(.+)", r"stem.0.\1.\2"),
            (r"conv(\d+)_x\.(\d+)\.residual_function\.(\d+\.\w+)", lambda m, v: block(m, v, "residual.")),
            (r"conv(\d+)_x\.(\d+)\.shortcut\.(\d+\.\w+)", lambda m, v: block(m, v, "shortcut.")),
            (r"conv(\d+)_x\.(\d+)\.relu\.(up)", lambda m, v: block(m, v, "act.")),
            (r"fc\.(weight|bias)", r"fc.\1"),
        ],
    )
    shapes = our_shapes(model)
    w = conv.state.get("stem.0.0.weight")
    if w is not None and "stem.0.0.weight" in shapes and shapes["stem.0.0.weight"] != w.shape:
        conv.hints.append(
            "the reference ResNet uses the CIFAR-style stem (3x3 conv, stride 1, no pool), also on "
            "ImageNet: build ours with stem='cifar' (config model.stem: cifar)"
        )
    return conv

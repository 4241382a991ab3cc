"""The authors' BKDSNN students -> ``sj_bkd`` students (reference source ``bkdsnn``).

Registered with :func:`sj_common.reference.register_source` when this module is imported; the
``sj_common.reference_sources`` entry point of sj-bkd names this module, so
``sj_common.reference.load_reference_checkpoint(model, path, source="bkdsnn")`` finds it without an import.

* SEW-ResNet-18/34/50 (``{'model': ..., 'args': Namespace, ...}``, old SpikingJelly ``SeqToANNContainer``
  keys ``.module.0/1``) -> SpikingJelly 2.x ``sew_resnet``; ``args.connect_f`` is checked against ours.
* CML + Spikingformer (timm ``CheckpointSaver``: ``{'state_dict': ..., 'args': Namespace, ...}``) ->
  :class:`sj_bkd.spikingformer.SpikingformerCML` (Conv1d -> 1x1 Conv2d, conv biases folded, the unused
  LayerNorms ``norm1``/``norm2`` dropped).

The key names are those of the authors' released files (the tests check every mapping against their key
lists when the project's reference key lists are beside the repository).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from sj_common.reference import Conversion, fold_bias, map_keys, register_source
from torch import nn

__all__ = ["SOURCE", "convert_bkdsnn"]

#: The name this module registers (``load_reference_checkpoint(..., source=SOURCE)``).
SOURCE = "bkdsnn"


def _is_bkdsnn(keys: set[str]) -> bool:
    return "patch_embed.proj_conv.weight" in keys or "layer1.0.conv1.module.0.weight" in keys


@register_source(SOURCE, _is_bkdsnn, "BKDSNN SEW-ResNet-18/34/50 and CML+Spikingformer -> sj_bkd students")
def convert_bkdsnn(
    ref: Mapping[str, torch.Tensor], model: nn.Module, extras: Mapping[str, Any]
) -> Conversion:
    """SEW-ResNet (old SpikingJelly ``SeqToANNContainer`` keys) or CML + Spikingformer."""
    if any(k.startswith("patch_embed.") for k in ref):
        return _bkdsnn_spikingformer(ref)
    conv = Conversion()
    map_keys(
        ref,
        conv,
        [
            (r"(conv1\.weight|bn1\.\w+|fc\.\w+)", r"\1"),
            (r"(layer\d+\.\d+)\.conv(\d)\.module\.0\.(\w+)", r"\1.conv\2.\3"),
            (r"(layer\d+\.\d+)\.conv(\d)\.module\.1\.(\w+)", r"\1.bn\2.\3"),
            (r"(layer\d+\.\d+)\.downsample\.0\.module\.0\.(\w+)", r"\1.downsample.0.\2"),
            (r"(layer\d+\.\d+)\.downsample\.0\.module\.1\.(\w+)", r"\1.downsample.1.\2"),
        ],
    )
    # The stored training arguments say how the blocks connect; ours must do the same.
    args = extras.get("args")
    cnf = getattr(args, "connect_f", None)
    ours = {m.cnf for m in model.modules() if isinstance(getattr(m, "cnf", None), str)}
    if cnf is not None and ours and ours != {cnf}:
        conv.problems.append(f"args.connect_f = {cnf!r} in the file, ours cnf = {sorted(ours)}")
    return conv


def _bkdsnn_spikingformer(ref: Mapping[str, torch.Tensor]) -> Conversion:
    conv = Conversion()

    def w2d(our_key):  # Conv1d weight (O, I, 1) -> 1x1 Conv2d weight (O, I, 1, 1)
        return lambda m, v: (our_key.format(*m.groups()), v.unsqueeze(-1) if v.dim() == 3 else v)

    map_keys(
        ref,
        conv,
        [
            (r"patch_embed\.proj_conv\.weight", "tokenizer.stages.0.0.weight"),
            (r"patch_embed\.proj_bn\.(\w+)", r"tokenizer.stages.0.1.\1"),
            (r"patch_embed\.proj([123])_conv\.weight", r"tokenizer.stages.\1.1.weight"),
            (r"patch_embed\.proj([123])_bn\.(\w+)", r"tokenizer.stages.\1.2.\2"),
            (r"patch_embed\.proj4_conv\.weight", "tokenizer.rpe.1.weight"),
            (r"patch_embed\.proj4_bn\.(\w+)", r"tokenizer.rpe.2.\1"),
            (r"block\.(\d+)\.attn\.([qkv])_conv\.weight", w2d("blocks.{0}.attn.{1}.0.weight")),
            (r"block\.(\d+)\.attn\.([qkv])_bn\.(\w+)", r"blocks.\1.attn.\2.1.\3"),
            (r"block\.(\d+)\.attn\.proj_conv\.weight", w2d("blocks.{0}.attn.proj.0.weight")),
            (r"block\.(\d+)\.attn\.proj_bn\.(\w+)", r"blocks.\1.attn.proj.1.\2"),
            (r"block\.(\d+)\.mlp\.mlp1_conv\.weight", w2d("blocks.{0}.mlp.net.1.weight")),
            (r"block\.(\d+)\.mlp\.mlp1_bn\.(\w+)", r"blocks.\1.mlp.net.2.\2"),
            (r"block\.(\d+)\.mlp\.mlp2_conv\.weight", w2d("blocks.{0}.mlp.net.4.weight")),
            (r"block\.(\d+)\.mlp\.mlp2_bn\.(\w+)", r"blocks.\1.mlp.net.5.\2"),
            (r"head\.(weight|bias)", r"head.\1"),
        ],
    )
    for k, v in ref.items():
        # LayerNorms the reference builds but never calls in forward: dropped (notes section 2).
        if re.fullmatch(r"block\.\d+\.norm[12]\.(weight|bias)", k):
            conv.used.add(k)
            conv.dropped.append(k)
            continue
        m = re.fullmatch(r"block\.(\d+)\.(attn\.proj|mlp\.mlp1|mlp\.mlp2)_conv\.bias", k)
        if m:  # Conv biases followed by a BN: ours have none, fold them into the BN's running mean
            bn = {"attn.proj": "attn.proj.1.", "mlp.mlp1": "mlp.net.2.", "mlp.mlp2": "mlp.net.5."}[m.group(2)]
            fold_bias(conv, k, v, f"blocks.{m.group(1)}.{bn}")
    return conv

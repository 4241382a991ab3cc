"""The authors' Transfer-for-DVS checkpoints -> ``sj_transfer`` models (reference source ``transfer_for_dvs``).

Registered with :func:`sj_common.reference.register_source` when this module is imported; the
``sj_common.reference_sources`` entry point of sj-transfer names this module, so
``sj_common.reference.load_reference_checkpoint(model, path, source="transfer_for_dvs")`` finds it without
an import. Converters of further Transfer-for-DVS networks belong here too (one source, one detector).

``Transfer_VGG_SNN`` (timm ``CheckpointSaver``) -> :class:`sj_transfer.train.TransferModel` (``net.`` +
``loss.``) or a bare :class:`sj_transfer.models.TransferVGGSNN`: the per-step ``coefficient.{t}`` are
concatenated into ``loss.coefficients``; the stored LIF ``threshold`` and surrogate ``alpha`` are checked
against our neurons. The key names are those of the authors' released files (the tests check the mapping
against their key lists when the project's reference key lists are beside the repository).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from sj_common.reference import Conversion, map_keys, register_source
from torch import nn

__all__ = ["SOURCE", "convert_transfer"]

#: The name this module registers (``load_reference_checkpoint(..., source=SOURCE)``).
SOURCE = "transfer_for_dvs"


def _is_transfer(keys: set[str]) -> bool:
    return "coefficient.0" in keys or "feature.0.conv.weight" in keys


@register_source(SOURCE, _is_transfer, "Transfer-for-DVS Transfer_VGG_SNN -> sj_transfer TransferModel")
def convert_transfer(
    ref: Mapping[str, torch.Tensor], model: nn.Module, extras: Mapping[str, Any]
) -> Conversion:
    """``Transfer_VGG_SNN`` -> ``TransferModel`` (``net.``/``loss.``) or a bare ``TransferVGGSNN``."""
    conv = Conversion()
    net = getattr(model, "net", model)
    pre = "net." if net is not model else ""
    feats = getattr(net, "features", None)
    if feats is None:
        conv.problems.append(f"model: {type(model).__name__} has no VGG 'features' to load feature.* into")
        return conv
    # ours: conv containers and the neuron after each, in order
    convs = [j for j, m in enumerate(feats) if any(isinstance(c, nn.Conv2d) for c in m.modules())]
    # the neuron after each conv: (its index, the module)
    nodes = {
        j: next(((i, m) for i, m in enumerate(feats) if i > j and hasattr(m, "v_threshold")), None)
        for j in convs
    }
    ref_idx = sorted({int(m.group(1)) for k in ref if (m := re.fullmatch(r"feature\.(\d+)\..+", k))})
    pos = {i: convs[n] for n, i in enumerate(ref_idx) if n < len(convs)}
    coeffs = sorted(
        ((int(m.group(1)), k) for k in ref if (m := re.fullmatch(r"coefficient\.(\d+)", k))),
        key=lambda t: t[0],
    )
    if coeffs:
        if [t for t, _ in coeffs] != list(range(len(coeffs))):
            conv.problems.append(
                f"coefficient.*: expected steps 0..{len(coeffs) - 1}, got {[t for t, _ in coeffs]}"
            )
        elif pre:
            parts = [ref[k].reshape(-1) for _, k in coeffs]
            meta = any(p.is_meta for p in parts)
            n = sum(p.numel() for p in parts)
            conv.state["loss.coefficients"] = torch.empty(n, device="meta") if meta else torch.cat(parts)
            conv.used.update(k for _, k in coeffs)

    def feature(m, v):
        i, rest = int(m.group(1)), m.group(2)
        if i not in pos:
            return None
        j = pos[i]
        if rest.startswith("conv."):
            return f"{pre}features.{j}.0.{rest[5:]}", v
        return f"{pre}features.{j}.1.{rest[3:]}", v

    map_keys(
        ref,
        conv,
        [
            (r"feature\.(\d+)\.(conv\.weight|bn\.\w+)", feature),
            (r"rgb_fc\.1\.(weight|bias)", pre + r"static_head.1.\1"),
            (r"dvs_fc\.1\.(weight|bias)", pre + r"event_head.1.\1"),
        ],
    )
    # Constants the reference stores as (frozen) parameters: they must equal our neurons' settings.
    for k, v in ref.items():
        m = re.fullmatch(r"feature\.(\d+)\.node\.(threshold|act_fun\.alpha)", k)
        if not m or int(m.group(1)) not in pos:
            continue
        found = nodes[pos[int(m.group(1))]]
        if found is None:
            continue
        where, node = found
        if m.group(2) == "threshold":
            name, ours = "v_threshold", getattr(node, "v_threshold", None)
        else:
            name, ours = "surrogate alpha", getattr(getattr(node, "surrogate_function", None), "alpha", None)
        stored = float(v.reshape(-1)[0]) if v.numel() and v.device.type != "meta" else None
        if stored is None or ours is None:
            conv.used.add(k)
            continue
        if math.isclose(stored, float(ours), rel_tol=1e-6, abs_tol=1e-9):
            conv.used.add(k)
        else:
            conv.used.add(k)
            conv.problems.append(
                f"{k} = {stored:g} in the file, ours {name} = {float(ours):g} ({pre}features.{where})"
            )
    return conv

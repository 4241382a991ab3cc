"""Load the papers' authors' checkpoints into our models: one registry, one converter per source.

>>> load_reference_checkpoint(model, "model_best.pth.tar", source="bkdsnn")

Sources (each mapping checked against the key lists of the authors' released files; the tests read them
from ``../shared/reference-keys`` beside the repository when it is there):

* ``qcfs``: QCFS / COS ANNs (``torch.save(model.state_dict())``; ImageNet multi-GPU files carry
  ``module.``) -> ``sj_calib`` VGG-16 (flat ``nn.Sequential``) and ResNet-20/34 (``stem``/``layers``/``fc``).
  ``up`` becomes ``threshold``; the VGG conv biases are folded into the following BN's running mean.
* ``bkdsnn``: BKDSNN students. SEW-ResNet-18/34/50 (``{'model': ..., 'args': Namespace, ...}``, old
  SpikingJelly ``SeqToANNContainer`` keys ``.module.0/1``) -> SpikingJelly 2.x ``sew_resnet``; and
  CML + Spikingformer (timm ``CheckpointSaver``: ``{'state_dict': ..., 'args': Namespace, ...}``) ->
  :class:`sj_bkd.spikingformer.SpikingformerCML` (Conv1d -> 1x1 Conv2d, conv biases folded, the unused
  LayerNorms ``norm1``/``norm2`` dropped).
* ``transfer_for_dvs``: Transfer-for-DVS ``Transfer_VGG_SNN`` (timm ``CheckpointSaver``) ->
  ``sj_transfer.train.TransferModel`` (``net.`` + ``loss.``): the per-step ``coefficient.{t}`` are
  concatenated into ``loss.coefficients``; the stored LIF ``threshold`` and surrogate ``alpha`` are checked
  against our neurons.

Everything is decided from the two state dicts' key names and shapes (ours from ``model.state_dict()``),
so a model built on ``torch.device("meta")`` can be loaded too (the tensors are then assigned, not copied).
Anything the converter cannot place (a reference key no rule maps, a key of ours nothing fills, a shape or
a stored constant that differs) is reported in ONE :class:`ReferenceCheckpointError` naming every key;
nothing is loaded then. Files are read with ``torch.load(weights_only=True)`` and an explicit allow-list
(:data:`SAFE_GLOBALS`): a file that needs anything else is refused, never loaded unsafely.

Why not ``torch.load`` + ``load_state_dict`` directly: the reference models are different ``nn.Module``
trees (other names, a Conv1d where we use a 1x1 Conv2d, conv biases where we have none), so a key-level
converter is needed; SpikingJelly and timm ship none for these three code bases.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import os
import pickle
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "SAFE_GLOBALS",
    "SOURCES",
    "Conversion",
    "ReferenceCheckpointError",
    "ReferenceSource",
    "convert_reference_state",
    "detect_source",
    "load_reference_checkpoint",
    "register_source",
    "safe_load",
    "unwrap_container",
]

#: The only non-tensor classes a reference file may hold: BKDSNN and timm save ``args`` (argparse.Namespace).
SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)
#: Container keys that hold the weights, in the order they are tried (timm: ``state_dict``, BKDSNN SEW:
#: ``model``; ``state_dict_ema`` only when neither is there or when asked for with ``container_key``).
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model", "state_dict_ema")


class ReferenceCheckpointError(ValueError):
    """A reference checkpoint that cannot be loaded: unreadable, or keys/shapes/constants that do not fit."""


@dataclass
class Conversion:
    """What a converter returns.

    ``state``: tensors under our key names. ``used``: reference keys it consumed (mapped, folded,
    concatenated, checked or dropped as unused). ``dropped``: the subset dropped as unused by the reference's
    forward. ``folded``: ``(reference bias key, our BN running_mean key)`` pairs. ``problems``: constants
    that differ from ours, one line each. ``hints``: advice appended to an error.
    """

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)
    folded: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    #: our key -> the reference key it came from
    source_of: dict[str, str] = field(default_factory=dict)

    def put(self, ref_key: str, ours: str, tensor: torch.Tensor) -> None:
        self.state[ours] = tensor
        self.used.add(ref_key)
        self.source_of[ours] = ref_key


Converter = Callable[[Mapping[str, torch.Tensor], nn.Module, Mapping[str, Any]], Conversion]


@dataclass(frozen=True)
class ReferenceSource:
    """A registered source: ``convert(ref_state, model, container_extras) -> Conversion`` and
    ``detect(ref_keys) -> bool`` (used when ``source=None``)."""

    name: str
    convert: Converter
    detect: Callable[[set[str]], bool]
    description: str


#: name -> :class:`ReferenceSource`.
SOURCES: dict[str, ReferenceSource] = {}


def register_source(name: str, detect: Callable[[set[str]], bool], description: str):
    """Decorator registering ``convert`` under ``name`` (a plugin may add its own source this way)."""

    def wrap(convert: Converter) -> Converter:
        SOURCES[name] = ReferenceSource(name, convert, detect, description)
        return convert

    return wrap


# --------------------------------------------------------------------------------------------- reading


def safe_load(path: str | os.PathLike, *, arg: str = "path") -> Any:
    """``torch.load(path, weights_only=True)`` with :data:`SAFE_GLOBALS` allowed, on the CPU.

    Never falls back to an unsafe load: a file holding any other Python object (or a pickled payload)
    raises :class:`ReferenceCheckpointError` naming the file and what was refused; nothing in it runs.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{arg}: no checkpoint file at {str(p)!r} (nothing is downloaded)")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        why = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[-1] if first else "")
        raise ReferenceCheckpointError(
            f"{arg}: {str(p)!r} holds objects a weights-only load refuses ({why.strip()}); allowed besides "
            f"tensors: {[c.__module__ + '.' + c.__qualname__ for c in SAFE_GLOBALS]}. It is not loaded "
            "unsafely: re-save just its state_dict from a trusted environment."
        ) from e


def unwrap_container(obj: Any, container_key: str | None = None, *, arg: str = "path") -> tuple[dict, dict]:
    """``(state_dict with 'module.' stripped, the other container entries)``.

    ``obj`` is a bare state dict, or a dict holding one under ``container_key`` (default: the first of
    :data:`CONTAINER_KEYS` present).
    """
    if not isinstance(obj, Mapping):
        raise ReferenceCheckpointError(f"{arg}: the file holds a {type(obj).__name__}, expected a dict")
    extras: dict = {}
    if container_key is not None:
        if container_key not in obj or not isinstance(obj[container_key], Mapping):
            raise ReferenceCheckpointError(
                f"container_key: {container_key!r} is not a state dict in the file; its keys: {sorted(obj)}"
            )
        state, extras = obj[container_key], {k: v for k, v in obj.items() if k != container_key}
    elif all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        key = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise ReferenceCheckpointError(
                f"{arg}: no state dict in the file: expected tensors or one of {list(CONTAINER_KEYS)}, "
                f"got keys {sorted(obj)}"
            )
        state, extras = obj[key], {k: v for k, v in obj.items() if k != key}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ReferenceCheckpointError(f"{arg}: state dict entries that are not tensors: {bad[:10]}")
    return {k.removeprefix("module."): v for k, v in state.items()}, extras


# --------------------------------------------------------------------------------------------- helpers


def _ours_shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items()}


def _fold_bias(conv: Conversion, ref_key: str, bias: torch.Tensor, bn_prefix: str) -> None:
    """Fold a conv bias into the following BN: ``BN(Wx + b)`` with mean ``mu`` == ``BN(Wx)`` with mean
    ``mu - b`` (train mode too: the batch mean absorbs ``b``). ``bn_prefix`` is ours; its running mean
    must have been mapped already."""
    key = bn_prefix + "running_mean"
    if key not in conv.state:
        conv.problems.append(f"{ref_key}: the BN {bn_prefix[:-1]!r} to fold it into has no running_mean")
        return
    mean = conv.state[key]
    if mean.shape != bias.shape:
        conv.problems.append(
            f"{ref_key}: shape {tuple(bias.shape)} cannot fold into {key} {tuple(mean.shape)}"
        )
        return
    # meta tensors (keys-and-shapes checks): skip the arithmetic, whose meta kernels import torch._prims (s)
    conv.state[key] = torch.empty_like(mean) if mean.is_meta or bias.is_meta else mean - bias
    conv.used.add(ref_key)
    conv.folded.append((ref_key, key))


def _rules(ref: Mapping[str, torch.Tensor], conv: Conversion, rules: Iterable[tuple[str, Any]]) -> None:
    """Rename by regex rules ``(pattern, replacement)`` (``re.fullmatch``; the first match wins); a
    replacement may be a callable ``(match, tensor) -> (our key, tensor) | None`` (None: leave unmapped)."""
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in ref.items():
        for pat, rep in compiled:
            m = pat.fullmatch(k)
            if m is None:
                continue
            if callable(rep):
                out = rep(m, v)
                if out is not None:
                    conv.put(k, *out)
            else:
                conv.put(k, m.expand(rep), v)
            break


# ----------------------------------------------------------------------------------------- qcfs / cos


def _is_qcfs(keys: set[str]) -> bool:
    return "layer1.0.weight" in keys or "conv1.2.up" in keys


@register_source("qcfs", _is_qcfs, "QCFS / COS ANNs (VGG-16, ResNet-20/34) -> sj_calib.models")
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
                    _fold_bias(conv, bkey, ref[bkey], f"{oi}.1.")
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

    _rules(
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
    shapes = _ours_shapes(model)
    w = conv.state.get("stem.0.0.weight")
    if w is not None and "stem.0.0.weight" in shapes and shapes["stem.0.0.weight"] != w.shape:
        conv.hints.append(
            "the reference ResNet uses the CIFAR-style stem (3x3 conv, stride 1, no pool), also on "
            "ImageNet: build ours with stem='cifar' (config model.stem: cifar)"
        )
    return conv


# --------------------------------------------------------------------------------------------- bkdsnn


def _is_bkdsnn(keys: set[str]) -> bool:
    return "patch_embed.proj_conv.weight" in keys or "layer1.0.conv1.module.0.weight" in keys


@register_source("bkdsnn", _is_bkdsnn, "BKDSNN SEW-ResNet-18/34/50 and CML+Spikingformer -> sj_bkd students")
def convert_bkdsnn(
    ref: Mapping[str, torch.Tensor], model: nn.Module, extras: Mapping[str, Any]
) -> Conversion:
    """SEW-ResNet (old SpikingJelly ``SeqToANNContainer`` keys) or CML + Spikingformer."""
    if any(k.startswith("patch_embed.") for k in ref):
        return _bkdsnn_spikingformer(ref)
    conv = Conversion()
    _rules(
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

    _rules(
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
        # LayerNorms the reference builds but never calls in forward: dropped (they change no output).
        if re.fullmatch(r"block\.\d+\.norm[12]\.(weight|bias)", k):
            conv.used.add(k)
            conv.dropped.append(k)
            continue
        m = re.fullmatch(r"block\.(\d+)\.(attn\.proj|mlp\.mlp1|mlp\.mlp2)_conv\.bias", k)
        if m:  # Conv biases followed by a BN: ours have none, fold them into the BN's running mean
            bn = {"attn.proj": "attn.proj.1.", "mlp.mlp1": "mlp.net.2.", "mlp.mlp2": "mlp.net.5."}[m.group(2)]
            _fold_bias(conv, k, v, f"blocks.{m.group(1)}.{bn}")
    return conv


# ------------------------------------------------------------------------------------ transfer_for_dvs


def _is_transfer(keys: set[str]) -> bool:
    return "coefficient.0" in keys or "feature.0.conv.weight" in keys


@register_source(
    "transfer_for_dvs", _is_transfer, "Transfer-for-DVS Transfer_VGG_SNN -> sj_transfer TransferModel"
)
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

    _rules(
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


# --------------------------------------------------------------------------------------------- loading


def detect_source(keys: Iterable[str]) -> str:
    """The registered source whose key signature ``keys`` match (exactly one)."""
    keys = set(keys)
    hits = [n for n, s in SOURCES.items() if s.detect(keys)]
    if len(hits) != 1:
        raise ReferenceCheckpointError(
            f"source: cannot tell the checkpoint's source from its keys (matches: {hits}); "
            f"pass source= one of {sorted(SOURCES)}"
        )
    return hits[0]


def convert_reference_state(
    ref: Mapping[str, torch.Tensor],
    model: nn.Module,
    source: str,
    *,
    extras: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    what: str = "checkpoint",
) -> Conversion:
    """Convert ``ref`` (keys already unwrapped and ``module.``-stripped) to ``model``'s keys and check it.

    Raises ONE :class:`ReferenceCheckpointError` listing every reference key left unmapped, every key of
    ours left unset, every shape and stored constant that differs. ``ignore``: ``fnmatch`` patterns of
    reference keys you deliberately leave out (e.g. ``'rgb_fc.*'`` for a network without a static head).
    """
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {sorted(SOURCES)}, got {source!r}")
    conv = SOURCES[source].convert(ref, model, extras or {})
    patterns = list(ignore)
    ignored = {k for k in ref if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    conv.used.update(ignored)
    for k in [k for k, src in conv.source_of.items() if src in ignored]:
        del conv.state[k], conv.source_of[k]
    ours = _ours_shapes(model)
    unmapped = [k for k in ref if k not in conv.used]
    missing = [k for k in ours if k not in conv.state]
    unexpected = [f"{k} (from {conv.source_of.get(k, '?')})" for k in conv.state if k not in ours]
    shapes = [
        f"{k}: file {tuple(v.shape)}, ours {tuple(ours[k])}"
        for k, v in conv.state.items()
        if k in ours and tuple(v.shape) != tuple(ours[k])
    ]
    lines = []
    if unmapped:
        lines.append(f"reference keys no rule maps ({len(unmapped)}): {unmapped}")
    if missing:
        lines.append(f"keys of ours nothing in the file sets ({len(missing)}): {missing}")
    if unexpected:
        lines.append(f"mapped keys ours does not have ({len(unexpected)}): {unexpected}")
    if shapes:
        lines.append(f"shapes that differ ({len(shapes)}): {shapes}")
    if conv.problems:
        lines.append(f"stored constants / structure that differ: {conv.problems}")
    if lines:
        hint = "".join(f"\n  hint: {h}" for h in conv.hints)
        raise ReferenceCheckpointError(
            f"{what} ({source}) does not fit {type(model).__name__}; nothing was loaded:\n  "
            + "\n  ".join(lines)
            + hint
        )
    return conv


def load_reference_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    source: str | None = None,
    *,
    container_key: str | None = None,
    ignore: Iterable[str] = (),
    assign: bool | None = None,
) -> Conversion:
    """Load an authors' checkpoint file into ``model`` (in place); returns the :class:`Conversion`.

    Args:
        model: our model (``sj_calib`` VGG/ResNet, a ``sj_bkd`` student, a ``TransferModel``); DDP /
            ``torch.compile`` wrappers are unwrapped.
        path: the reference file (read weights-only; see :func:`safe_load`).
        source: one of :data:`SOURCES` (``'qcfs'``, ``'bkdsnn'``, ``'transfer_for_dvs'``); None: detected
            from the key names.
        container_key: which entry holds the weights (default ``state_dict``, else ``model``, else
            ``state_dict_ema``); e.g. ``'state_dict_ema'`` for timm's EMA weights.
        ignore: ``fnmatch`` patterns of reference keys to leave out on purpose.
        assign: ``load_state_dict(assign=...)``; default True when ``model`` has meta tensors (it is then
            materialised from the file), else False (values copied into ``model``'s tensors).

    Raises :class:`ReferenceCheckpointError` (a ``ValueError``) with every problem at once and loads
    nothing when the file does not fit; ``FileNotFoundError`` when ``path`` does not exist.
    """
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    target = getattr(target, "_orig_mod", target)
    ref, extras = unwrap_container(safe_load(path), container_key)
    src = source if source is not None else detect_source(ref)
    conv = convert_reference_state(ref, target, src, extras=extras, ignore=ignore, what=repr(str(path)))
    if assign is None:
        assign = any(t.is_meta for t in target.state_dict().values())
    target.load_state_dict(conv.state, strict=True, assign=assign)
    return conv

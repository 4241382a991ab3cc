"""One run of the method (or its event-only baseline) from a config: data, model, step, engine.

A config is a mapping with sections ``data``, ``model``, ``method`` and ``train`` (TrainConfig fields);
the packaged YAML files in ``sj_transfer/configs/`` hold every hyperparameter of the spec. Used by the
CLI (``sj-transfer train``), the demo and the notebook.

Data: ``data.event == "mnist5k"`` is the embedded default (MNIST-5k digits and their emulated event
twins, ``sj_common.data.MNIST5k`` / ``MNIST5kEvents``, val split for model selection); otherwise the
event and static sets come from ``--data-root`` through ``sj_common.data.event_dataset`` /
``static_dataset`` (``data_root/<event>`` and ``data_root/<static>`` folders, or one root for both),
with a seeded per-class validation split carved from the event training set (the reference picked the
best epoch on the test set, spec appendix 6.11; we never do).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .loss import DomainTransferLoss
from .models import PAPER_CFG, SMALL_CFG, TransferVGGSNN
from .sampler import SlidingReplacement, make_schedule
from .surrogate import QGateGrad, back_ei_gate_grad
from .train import RandomCropFrames, TransferModel, transfer_step

__all__ = ["run", "build_datasets", "build_model", "build_step", "check_config", "SECTIONS"]

SECTIONS = ("data", "model", "method", "train")
_DATA_KEYS = {
    "event", "static", "T", "size", "train_ratio", "static_ratio", "use_hsv", "val_fraction",
    "crop_padding", "split_seed", "num_classes", "subset_seed",
}  # fmt: skip
_MODEL_KEYS = {"cfg", "tau", "v_threshold", "surrogate", "surrogate_alpha"}
_METHOD_KEYS = {
    "alpha", "regularization", "coefficient_init", "tet", "tet_lambda", "mse_target", "sliding", "power",
    "domain_loss", "event_bn_stats",
}  # fmt: skip


def check_config(cfg: Mapping[str, Any]) -> None:
    """Raise a ``ValueError`` naming any unknown section or key (typos must not pass silently)."""
    extra = set(cfg) - set(SECTIONS) - {"name", "description", "seeds", "paper"}
    if extra:
        raise ValueError(f"config: unknown top-level keys {sorted(extra)}; expected {list(SECTIONS)}")
    for sec, keys in (("data", _DATA_KEYS), ("model", _MODEL_KEYS), ("method", _METHOD_KEYS)):
        bad = set(cfg.get(sec, {})) - keys
        if bad:
            raise ValueError(f"config.{sec}: unknown keys {sorted(bad)}; valid keys: {sorted(keys)}")


class _Indexed(Dataset):
    """A subset that keeps ``.targets`` and ``.classes`` (torch's ``Subset`` drops them)."""

    def __init__(self, base, indices):
        self.base, self.indices = base, np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(base.targets, dtype=np.int64)[self.indices]
        self.classes = list(base.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[int(self.indices[i])]


def _roots(data_root, event: str, static: str) -> tuple[Path, Path]:
    if data_root is None:
        raise ValueError(f"data_root: data set {event!r} needs a local root (--data-root), got None")
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data_root: expected an existing folder, got {str(root)!r}")
    pick = {}
    for name in (event, static):
        sub = [root / name, root / name.lower(), root / name.upper()]
        pick[name] = next((p for p in sub if p.is_dir()), root)
    return pick[event], pick[static]


def build_datasets(cfg: Mapping[str, Any], data_root=None, baseline: bool = False, seed: int = 0):
    """``(train, val, test, num_classes)``. Train items: ``(static, event, y)`` or ``(event, y)`` (baseline).

    The event training set is cut to ``data.train_ratio`` per class (stratified, seeded by
    ``data.subset_seed``, or by the training ``seed`` when that key is absent or null); the baseline
    trains on exactly the same event samples.
    """
    from sj_common import data as D

    d = cfg["data"]
    T, ratio = int(d["T"]), float(d.get("train_ratio", 1.0))
    split_seed = int(d.get("split_seed", 0))
    if d["event"] == "mnist5k":
        event_train = D.MNIST5kEvents("train", T=T, seed=split_seed, cache_dir=_cache_dir())
        val = D.MNIST5kEvents("val", T=T, seed=split_seed, cache_dir=_cache_dir())
        test = D.MNIST5kEvents("test", T=T, seed=split_seed, cache_dir=_cache_dir())
        # the emulator shows the 28x28 digit in the middle of a 34x34 sensor (as N-MNIST): pad, not resize,
        # so that static and event digits have the same scale and position
        pad = (event_train.sensor_size[0] - 28) // 2
        static_train = D.MNIST5k("train", seed=split_seed, transform=partial(F.pad, pad=(pad,) * 4))
        static_size = None
    else:
        event_root, static_root = _roots(data_root, d["event"], d["static"])
        size = int(d["size"])
        full = D.event_dataset(d["event"], event_root, "train", T=T, size=size)
        test = D.event_dataset(d["event"], event_root, "test", T=T, size=size)
        vf = float(d.get("val_fraction", 0.1))
        tr_idx, va_idx = D.stratified_split(full.targets, [1.0 - vf, vf], seed=split_seed)
        event_train, val = _Indexed(full, tr_idx), _Indexed(full, va_idx)
        static_train = D.static_dataset(d["static"], static_root, "train")
        static_size = size  # the spec resizes static images to the event frame size (48)
    num_classes = len(event_train.classes)
    if d.get("num_classes") not in (None, num_classes):
        raise ValueError(
            f"data.num_classes: config says {d['num_classes']}, the event data set has {num_classes}"
        )
    subset_seed = d.get("subset_seed")
    subset_seed = seed if subset_seed is None else int(subset_seed)
    if baseline:
        train = _Indexed(event_train, D.stratified_subset(event_train.targets, ratio, seed=subset_seed))
    else:
        static = static_train
        sr = float(d.get("static_ratio", 1.0))
        if sr < 1.0:
            static = _Indexed(static_train, D.stratified_subset(static_train.targets, sr, seed=seed))
        train = D.PairedStaticEvent(
            static,
            event_train,
            T=T,
            train_ratio=ratio,
            seed=seed,
            subset_seed=subset_seed,
            size=static_size,
            use_hsv=bool(d.get("use_hsv", True)),
        )
    return train, val, test, num_classes


def _cache_dir() -> str:
    import os
    import tempfile

    return os.environ.get("SJ_CACHE_DIR", str(Path(tempfile.gettempdir()) / "sj_cache"))


def build_model(cfg: Mapping[str, Any], num_classes: int, baseline: bool = False) -> TransferModel:
    """The :class:`TransferModel` (network + loss with its coefficients) for the config."""
    d, m, me = cfg["data"], cfg.get("model", {}), cfg.get("method", {})
    arch = m.get("cfg", "paper")
    arch = {"paper": PAPER_CFG, "small": SMALL_CFG}.get(arch, arch) if isinstance(arch, str) else arch
    if isinstance(arch, str):
        raise ValueError(f"model.cfg: expected 'paper', 'small' or a list of widths and 'P', got {arch!r}")
    sg_name, sg_alpha = m.get("surrogate", "qgategrad"), float(m.get("surrogate_alpha", 2.0))
    if sg_name == "qgategrad":
        sg = QGateGrad(sg_alpha)
    elif sg_name == "rect":
        sg = back_ei_gate_grad(sg_alpha)
    else:
        raise ValueError(f"model.surrogate: expected 'qgategrad' or 'rect', got {sg_name!r}")
    net = TransferVGGSNN(
        num_classes,
        in_channels=2,
        image_size=int(d["size"]),
        cfg=list(arch),
        tau=float(m.get("tau", 2.0)),
        v_threshold=float(m.get("v_threshold", 0.5)),
        surrogate_function=sg,
        static_head=not baseline,
    )
    reg = me.get("regularization", "learnable")
    loss = DomainTransferLoss(
        int(d["T"]),
        alpha=float(me.get("alpha", 0.5)),
        regularization="none" if baseline else reg,
        tet=bool(me.get("tet", True)),
        tet_lambda=float(me.get("tet_lambda", 1e-3)),
        mse_target=float(me.get("mse_target", 0.5)),
        init=float(me.get("coefficient_init", 1.0)),
        domain_loss=bool(me.get("domain_loss", True)),
    )
    return TransferModel(net, loss, baseline=baseline, event_bn_stats=bool(me.get("event_bn_stats", False)))


def build_step(cfg: Mapping[str, Any], baseline: bool = False):
    """The engine step: frames resized to ``data.size`` (area for downsampling), event random crop, sliding."""
    d, me = cfg["data"], cfg.get("method", {})
    size = int(d["size"])
    pad = int(d.get("crop_padding", size // 12))
    sliding = None
    if not baseline:
        sliding = SlidingReplacement(make_schedule(me.get("sliding", "sliding"), float(me.get("power", 3))))

    def resize(x: torch.Tensor) -> torch.Tensor:  # [B, T, C, H, W]
        if x.shape[-2:] == (size, size):
            return x
        B, T = x.shape[:2]
        y = F.interpolate(x.flatten(0, 1), size=(size, size), mode="area")
        return y.view(B, T, *y.shape[1:])

    return transfer_step(sliding, RandomCropFrames(pad) if pad else None, preprocess=resize)


def run(
    cfg: Mapping[str, Any],
    out,
    *,
    data_root=None,
    baseline: bool = False,
    train_overrides: Mapping[str, Any] | None = None,
) -> dict:
    """Train (transfer or baseline) with ``sj_common.engine.fit``; returns its results dict.

    ``train_overrides``: TrainConfig fields that win over ``cfg["train"]`` (e.g. ``resume``, ``seed``).
    """
    from sj_common.cli import train_config_from
    from sj_common.engine import fit, seed_everything

    check_config(cfg)
    train_cfg = train_config_from(dict(cfg.get("train", {}), out=str(out)), dict(train_overrides or {}))
    train, val, test, k = build_datasets(cfg, data_root, baseline, seed=train_cfg.seed)
    seed_everything(train_cfg.seed)  # a seeded initialisation (fit seeds only the training that follows)
    model = build_model(cfg, k, baseline)
    extra = {
        "method": "baseline" if baseline else "transfer",
        "train_ratio": float(cfg["data"].get("train_ratio", 1.0)),
        "num_train_events": len(train),
        "sj_transfer_config": {s: dict(cfg.get(s, {})) for s in ("data", "model", "method")},
    }
    return fit(model, train, val, test, config=train_cfg, step=build_step(cfg, baseline), extra_results=extra)

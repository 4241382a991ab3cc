"""The sj-calib recipe: QCFS ANN training, then conversion, calibration and the sweep, from one typed config.

Config sections (the YAML files in ``sj_calib/configs``): ``data`` (:class:`CalibData`), ``model``
(:class:`CalibModel`: a model of :data:`sj_calib.models.MODELS` and its factory's keyword arguments),
``calib`` (:data:`CalibOptions`, derived from the signatures of :func:`sj_calib.calibrate`,
:func:`sj_calib.convert` and :func:`sj_calib.sweep.snn_sweep`, so its defaults are theirs) and ``train``
(:class:`sj_common.engine.TrainConfig`). The config and the command line's ``--help`` need no torch: the
method modules and torch are imported by the stages. Model selection uses a validation split carved (stratified,
seeded) from the training set, never the test set (the reference selected its epoch on the test set, which
inflates the ANN numbers).

Stages: ``train`` (the QCFS ANN through ``sj_common.engine.fit``), ``eval`` (the ANN on the test split),
``convert`` (the uncalibrated SNN at every ``calib.T``), ``calibrate`` (offset-spike calibrated) and
``sweep`` (ANN vs both, firing rates, SynOps / energy, latency, ``sweep.png``).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sj_common.config import ConfigError, UsageError, default_of, section_from, to_dict
from sj_common.engine import TrainConfig
from sj_common.recipe import Data, Flag, Recipe, Stage

if TYPE_CHECKING:  # torch and the method modules are imported by the stages (a fast --help)
    import torch
    from torch import nn

__all__ = ["Cutout", "CalibData", "CalibModel", "CalibOptions", "CalibConfig", "CalibRecipe", "RECIPE"]

_NORMALIZE = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
_AUGMENT = ("none", "cifar10", "cifar100", "imagenet")


class Cutout:
    """Zero one ``length`` x ``length`` square at a random centre (clipped at the border) of a
    ``[C, H, W]`` tensor (DeVries & Taylor 2017; torchvision has no exact equivalent)."""

    def __init__(self, length: int):
        self.length = int(length)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        import torch

        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - self.length // 2, 0), min(cy + self.length // 2, h)
        x0, x1 = max(cx - self.length // 2, 0), min(cx + self.length // 2, w)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0
        return img


@dataclass
class CalibData:
    """``name``: ``mnist5k`` (embedded, its own train/val/test, fixed by ``split_seed``) or a
    ``sj_common.data.static_dataset`` name read from ``--data-root``; ``val_fraction`` of the training set
    becomes the validation split (stratified, seeded by ``train.seed``); ``augment``: none | cifar10 |
    cifar100 | imagenet; ``normalize``: ``[mean, std]`` (default: the data set's); ``cutout``: side of the
    Cutout square of the CIFAR augmentation (default 16 for cifar10, 8 for cifar100)."""

    name: str = "mnist5k"
    split_seed: int = 0
    val_fraction: float = 0.05
    augment: str = "none"
    normalize: list[list[float]] | None = None
    cutout: int | None = None

    def __post_init__(self) -> None:
        if self.augment not in _AUGMENT:
            raise ValueError(f"augment: expected one of {_AUGMENT}, got {self.augment!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction: expected a fraction in (0, 1), got {self.val_fraction!r}")


@dataclass
class CalibModel:
    """``name``: a model of :data:`sj_calib.models.MODELS`; every other key goes to its factory
    (``num_classes``, ``in_channels``, ``L``, ``width`` ...); ``init_threshold`` sets each QCFS lambda."""

    name: str = "small_vgg"
    init_threshold: float = default_of("sj_calib.qcfs:replace_relu_by_qcfs", "init_threshold")
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"rest": True})

    def check(self) -> None:
        """The name and the factory's keyword arguments against :data:`sj_calib.models.MODELS` (imports torch,
        so :meth:`CalibRecipe.check` runs it, not ``__post_init__``)."""
        from .models import MODELS

        if self.name not in MODELS:
            raise ConfigError(f"model.name: expected one of {sorted(MODELS)}, got {self.name!r}")
        params = inspect.signature(MODELS[self.name]).parameters
        unknown = sorted(set(self.kwargs) - set(params))
        if unknown:
            raise ConfigError(
                f"model.{unknown[0]}: unknown key for model {self.name!r}; valid keys: "
                f"name, init_threshold, {', '.join(params)}"
            )


CalibOptions = section_from(
    "CalibOptions",
    ("sj_calib.calibration:calibrate", ["rho", "shift", "saturate", "iterations"]),
    ("sj_calib.conversion:convert", ["fold_bn"]),
    ("sj_calib.sweep:snn_sweep", ["T", "batch_size", "max_batches"], {"T": "Ts"}),
    doc="Conversion, calibration and read-out options (defaults: those of calibrate, convert and snn_sweep).",
)


@dataclass
class CalibConfig:
    """The whole sj-calib config (one YAML file)."""

    train: TrainConfig
    name: str = ""
    data: CalibData = field(default_factory=CalibData)
    model: CalibModel = field(default_factory=CalibModel)
    calib: CalibOptions = field(default_factory=CalibOptions)  # type: ignore[valid-type]


def _transforms(data: CalibData, train: bool):
    from torchvision import transforms as T

    norm = data.normalize or _NORMALIZE.get(data.name)
    tail = [T.ToTensor()] + ([T.Normalize(*norm)] if norm else [])
    if not train or data.augment == "none":
        if data.name == "imagenet":
            return T.Compose([T.Resize(256), T.CenterCrop(224), *tail])
        return T.Compose(tail)
    if data.augment == "imagenet":
        return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *tail])
    # cifar10 / cifar100 as the reference trains; torchvision AutoAugment replaces its np.int-broken copy
    cut = data.cutout if data.cutout is not None else (16 if data.augment == "cifar10" else 8)
    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.AutoAugment(T.AutoAugmentPolicy.CIFAR10),
            *tail,
            Cutout(cut),
        ]
    )


def _resolve(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def _write(out: Path, payload: dict) -> Path:
    from sj_common.engine import package_versions
    from sj_common.engine.checkpoint import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json({**payload, "versions": package_versions()}, out / "results.json")
    return out / "results.json"


def _table(rows: dict[str, list], Ts: list[int]) -> str:
    head = "model".ljust(14) + "".join(f"T={t}".rjust(9) for t in Ts)
    lines = [head, "-" * len(head)]
    for name, accs in rows.items():
        lines.append(name.ljust(14) + "".join(f"{a:9.2f}" for a in accs))
    return "\n".join(lines)


def _snn_stage(
    recipe: CalibRecipe, cfg: CalibConfig, ann: nn.Module, data: Data, *, out: Path, source: str, command: str
) -> dict:
    """``convert`` / ``calibrate`` / ``sweep`` on a trained ANN; writes ``out/results.json`` and prints a table."""
    from .calibration import calibrate
    from .conversion import convert
    from .sweep import latency, snn_sweep, sweep

    t0 = time.time()
    c = cfg.calib
    Ts = sorted({int(t) for t in c.T})
    device = _resolve(cfg.train.device)
    ann = ann.to(device)
    kw = dict(batch_size=c.batch_size, device=device, max_batches=c.max_batches)
    opts = dict(shift=c.shift, saturate=c.saturate, iterations=c.iterations)
    if command == "sweep":
        res = sweep(ann, data.test, Ts, c.rho, fold_bn=c.fold_bn, out=out, **opts, **kw)
        rows = {
            "ANN": [res["ann_acc"]] * len(Ts),
            "uncalibrated": res["uncalibrated"]["acc"],
            "calibrated": res["calibrated"]["acc"],
        }
    else:
        snn = convert(ann, fold_bn=c.fold_bn)
        rho = c.rho if command == "calibrate" else 0
        if rho:
            snn = calibrate(snn, rho=rho, **opts)
        r = snn_sweep(snn, data.test, Ts, **kw)
        res = {"T": Ts, "rho": rho, command: r, "latency": latency(Ts, rho, r["D"], r["iterations"] or 1)}
        if rho:
            res.update(opts)
        rows = {"calibrated" if rho else "uncalibrated": r["acc"]}
    res.update(command=command, config=to_dict(cfg), checkpoint=source, wall_time_s=time.time() - t0)
    path = _write(out, res)
    print(_table(rows, Ts))
    if command != "convert":
        lat = res["latency"]
        print(
            f"latency: rho={lat['rho']}, per-layer work rho+T={lat['per_layer_work']}, "
            f"streaming D*rho+T={lat['streaming']} (D={lat['D']})"
        )
    print(f"results: {path}")
    return res


_STAGE_FLAGS = ("convert", "calibrate", "sweep")


class CalibRecipe(Recipe):
    """QCFS ANN -> IF SNN -> offset-spike calibration (Hao et al., ICLR 2023)."""

    prog = "sj-calib"
    package = "sj_calib"
    description = (
        "QCFS ANN training, ANN-to-SNN conversion and offset-spike calibration (Hao et al., ICLR 2023).\n\n"
        "  sj-calib train --config mnist5k && sj-calib sweep --config mnist5k --checkpoint runs/calib_mnist5k/best.pt"
    )
    config_type = CalibConfig
    flags = (
        Flag(
            ("--T",),
            "calib.T",
            "time steps to read out (T excludes the rho pre-simulation steps)",
            _STAGE_FLAGS,
            nargs="+",
        ),
        Flag(("--rho",), "calib.rho", "pre-simulation steps per layer of the calibration", _STAGE_FLAGS),
        Flag(("--shift",), "calib.shift", "offset shift rule", _STAGE_FLAGS, choices=("reference", "theta")),
        Flag(
            ("--saturate",), "calib.saturate", "saturation rule", _STAGE_FLAGS, choices=("reference", "skip")
        ),
        Flag(("--iterations",), "calib.iterations", "calibration passes per layer", _STAGE_FLAGS),
        Flag(
            ("--fold-bn",),
            "calib.fold_bn",
            "fold BatchNorm into the convolutions before converting",
            _STAGE_FLAGS,
        ),
        Flag(("--batch-size",), "calib.batch_size", "evaluation batch size", _STAGE_FLAGS),
        Flag(("--max-batches",), "calib.max_batches", "evaluate only this many test batches", _STAGE_FLAGS),
    )
    stages = (
        Stage(
            "convert",
            "the uncalibrated QCFS SNN (IF neurons, v_0 = theta/2) at every --T",
            partial(_snn_stage, command="convert"),
        ),
        Stage(
            "calibrate",
            "the offset-spike calibrated SNN at every --T (with the offset histogram)",
            partial(_snn_stage, command="calibrate"),
        ),
        Stage(
            "sweep",
            "ANN vs uncalibrated vs calibrated: accuracy, firing rates, SynOps/energy, latency, sweep.png",
            partial(_snn_stage, command="sweep"),
        ),
    )

    def check(self, cfg: CalibConfig) -> None:
        cfg.model.check()

    def build_data(self, cfg: CalibConfig, *, data_root: str | None = None) -> Data:
        """``mnist5k`` is embedded (its own train/val/test); other names come from ``data_root`` through
        ``sj_common.data.static_dataset`` with a stratified validation split of ``val_fraction`` carved from
        the training set (evaluated without augmentation)."""
        d = cfg.data
        if d.name == "mnist5k":
            from sj_common.data import MNIST5k

            s = d.split_seed
            train, val, test = (
                MNIST5k(k, seed=s, shuffle=False) for k in ("train", "val", "test")
            )  # published order
        else:
            if data_root is None:
                raise UsageError(
                    f"--data-root: data set {d.name!r} needs a local folder (nothing is downloaded)"
                )
            from sj_common.data import Subset, static_dataset, stratified_split

            train_aug = static_dataset(d.name, data_root, "train", _transforms(d, True))
            train_plain = static_dataset(d.name, data_root, "train", _transforms(d, False))
            test = static_dataset(d.name, data_root, "test", _transforms(d, False))
            tr_idx, val_idx = stratified_split(
                train_aug.targets, [1 - d.val_fraction, d.val_fraction], seed=cfg.train.seed
            )
            train, val = Subset(train_aug, tr_idx), Subset(train_plain, val_idx)
        return Data(train, val, test, num_classes=len(train.classes))

    def build_model(self, cfg: CalibConfig, data: Data | None = None) -> nn.Module:
        """The QCFS ANN of ``cfg.model`` (each QCFS lambda set to ``init_threshold``)."""
        from .models import create_model
        from .qcfs import QCFS

        model = create_model(cfg.model.name, **cfg.model.kwargs)
        for q in model.modules():
            if isinstance(q, QCFS):
                q.threshold.data.fill_(cfg.model.init_threshold)
        return model

    def load_reference(self, model: nn.Module, path: str | Path, source: str | None = None) -> nn.Module:
        """An authors' QCFS / COS ANN (``torch.save(model.state_dict())``, ``module.`` stripped) -> ``model``.

        :func:`sj_common.reference.load_reference_checkpoint` with ``source='qcfs'``: ``up`` -> each QCFS
        ``threshold``, VGG conv biases folded into the BN running means; ``L`` is not in the file, it is
        ``model.L`` of the config. Anything that does not fit is one usage error naming the keys.
        """
        from sj_common.reference import ReferenceCheckpointError, load_reference_checkpoint

        from .reference import SOURCE  # registers the converter

        try:
            load_reference_checkpoint(model, path, source=source or SOURCE)
        except (ReferenceCheckpointError, FileNotFoundError) as e:
            raise UsageError(f"--from-reference: {e}") from e
        return model


RECIPE = CalibRecipe()

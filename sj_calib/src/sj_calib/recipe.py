"""Data, model and training from one config dict (the YAML files in ``sj_calib/configs``).

Config sections: ``data`` (name, val_fraction, augment, normalize), ``model`` (name + factory kwargs, L,
init_threshold), ``calib`` (T list, rho, shift, saturate, iterations, fold_bn, batch_size, max_batches)
and ``train`` (:class:`sj_common.engine.TrainConfig` fields). Model selection uses a validation split
carved (stratified, seeded) from the training set, never the test set (the reference selected on the
test set, spec 5.1.8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .models import build_model
from .qcfs import QCFS

__all__ = ["Cutout", "build_datasets", "build_ann", "load_ann", "train_ann", "Split"]

_NORMALIZE = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class Cutout:
    """Zero one ``length`` x ``length`` square at a random centre (clipped at the border) of a
    ``[C, H, W]`` tensor (DeVries & Taylor 2017; torchvision has no exact equivalent)."""

    def __init__(self, length: int):
        self.length = int(length)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - self.length // 2, 0), min(cy + self.length // 2, h)
        x0, x1 = max(cx - self.length // 2, 0), min(cx + self.length // 2, w)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0
        return img


class Split(Dataset):
    """Rows ``indices`` of ``base`` with ``.targets`` and ``.classes`` kept."""

    def __init__(self, base, indices):
        self.base, self.indices = base, np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(base.targets, dtype=np.int64)[self.indices]
        self.classes = list(base.classes)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[int(self.indices[i])]


def _transforms(data: dict, train: bool):
    from torchvision import transforms as T

    name = data["name"]
    aug = data.get("augment", "none")
    norm = data.get("normalize", _NORMALIZE.get(name))
    tail = [T.ToTensor()] + ([T.Normalize(*norm)] if norm else [])
    if not train or aug == "none":
        if name == "imagenet":
            return T.Compose([T.Resize(256), T.CenterCrop(224), *tail])
        return T.Compose(tail)
    if aug == "imagenet":
        return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *tail])
    if aug in ("cifar10", "cifar100"):  # spec 1.3; torchvision AutoAugment replaces the np.int-broken copy
        cut = int(data.get("cutout", 16 if aug == "cifar10" else 8))
        return T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.AutoAugment(T.AutoAugmentPolicy.CIFAR10),
                *tail,
                Cutout(cut),
            ]
        )
    raise ValueError(f"data.augment: expected 'none', 'cifar10', 'cifar100' or 'imagenet', got {aug!r}")


def build_datasets(cfg: dict, data_root: str | Path | None = None, seed: int = 0) -> tuple[Any, Any, Any]:
    """``(train, val, test)`` for ``cfg["data"]``. ``mnist5k`` is embedded (its own train/val/test);
    other names come from ``data_root`` through ``sj_common.data.static_dataset`` with a stratified
    validation split of ``val_fraction`` carved from the training set (evaluated without augmentation)."""
    data = cfg.get("data", {})
    name = data.get("name", "mnist5k")
    if name == "mnist5k":
        from sj_common.data import MNIST5k

        s = int(data.get("split_seed", 0))
        return MNIST5k("train", seed=s), MNIST5k("val", seed=s), MNIST5k("test", seed=s)
    if data_root is None:
        raise ValueError(
            f"data_root: data set {name!r} needs --data-root (a local folder; nothing is downloaded)"
        )
    from sj_common.data import static_dataset, stratified_split

    frac = float(data.get("val_fraction", 0.05))
    if not 0 < frac < 1:
        raise ValueError(f"data.val_fraction: expected a fraction in (0, 1), got {frac!r}")
    train_aug = static_dataset(name, data_root, "train", _transforms(data, True))
    train_plain = static_dataset(name, data_root, "train", _transforms(data, False))
    test = static_dataset(name, data_root, "test", _transforms(data, False))
    tr_idx, val_idx = stratified_split(train_aug.targets, [1 - frac, frac], seed=seed)
    return Split(train_aug, tr_idx), Split(train_plain, val_idx), test


def build_ann(cfg: dict) -> nn.Module:
    """The QCFS ANN of ``cfg["model"]`` (``name`` plus factory kwargs; ``init_threshold`` sets lambda)."""
    m = dict(cfg.get("model", {}))
    name = m.pop("name", "small_vgg")
    init = float(m.pop("init_threshold", 8.0))
    model = build_model(name, **m)
    for q in model.modules():
        if isinstance(q, QCFS):
            q.threshold.data.fill_(init)
    return model


def load_ann(cfg: dict, checkpoint: str | Path) -> nn.Module:
    """Build the config's ANN and load an engine checkpoint (``best.pt``) or a raw state dict into it."""
    from sj_common.engine import load_checkpoint

    model = build_ann(cfg)
    load_checkpoint(checkpoint, model)
    return model.eval()


def train_ann(
    cfg: dict, train_config, data_root=None, extra_results: dict | None = None
) -> tuple[nn.Module, dict]:
    """Train the QCFS ANN through ``sj_common.engine.fit`` (DDP under torchrun, model selection on the
    validation split). Returns ``(model with the best weights, fit results)``."""
    from sj_common.engine import fit, load_checkpoint

    torch.manual_seed(train_config.seed)
    model = build_ann(cfg)
    train, val, test = build_datasets(cfg, data_root, seed=train_config.seed)
    res = fit(model, train, val, test, config=train_config, extra_results=extra_results)
    best = Path(train_config.out) / "best.pt"
    if best.is_file():
        load_checkpoint(best, model)
    return model.eval(), res

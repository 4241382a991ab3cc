"""A run described by one config dict: data, teacher, student, distillation, engine settings.

Used by the CLI (``sj-bkd train``), the demo and the notebook. The config layout (YAML)::

    data:    {name, T, teacher_T, val_fraction, train_subset, teacher_train_subset, subset_seed,
              image_size, teacher_input_size, ...}
             train_subset limits the STUDENT's training images (a count, or a ratio <= 1; stratified,
             seeded by subset_seed, or by the run's seed when it is absent); the teacher (``--teacher train``) trains on teacher_train_subset, default the
             whole train split. Val and test are shared.
    student: {name, layer, layers, kwargs}
    teacher: {name, layer, layers, kind, weights, kwargs, interpolation, train: {TrainConfig keys}}
             layer: the tapped layer of the single-layer feature modes (default: the model's, e.g. layer4);
             layers: distill.mode lasnn only, equally long lists of stages matched pairwise at the same
             resolution (e.g. [layer1, layer2, layer3, layer4] for both); without them lasnn uses
             the single `layer` pair (and equals kdsnn, with a warning). Other modes ignore `layers`.
    distill: {mode, alpha, lam, use_clip, tau, beta, kd_tau}
             mode: none | kd | wsld | bkd | mixed | kdsnn | lasnn (sj_bkd.distill.MODES)
    train:   {TrainConfig keys: epochs, batch_size, lr, optimizer, weight_decay, scheduler, ...}
    reference: {anything of the paper's recipe that this package records but does not apply}
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset, Subset

from .distill import DistillationModel, distill_step
from .models import STUDENTS, TEACHERS, create_model

__all__ = ["load_config", "list_configs", "build_data", "train_teacher", "train_student", "run"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def list_configs() -> list[str]:
    return sorted(
        p.name[:-5] for p in importlib.resources.files("sj_bkd.configs").iterdir() if p.name.endswith(".yaml")
    )


def load_config(name_or_path: str | Path) -> dict:
    """A YAML file, or a bare name of a packaged config (``'mnist5k'``, ``'imagenet_sew18_r18'`` ...)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"--config: no file {str(p)!r}")
        text = p.read_text()
    else:
        res = importlib.resources.files("sj_bkd.configs") / f"{name_or_path}.yaml"
        if not res.is_file():
            raise FileNotFoundError(
                f"--config: {name_or_path!r} is neither a file nor a packaged config {list_configs()}"
            )
        text = res.read_text()
    cfg = yaml.safe_load(text) or {}
    for key in ("data", "student", "train"):
        if key not in cfg:
            raise ValueError(f"--config: {name_or_path}: missing section {key!r}")
    return cfg


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------


class _Zip(Dataset):
    """(x_student, x_teacher, y) from two framings of the same event samples (student T, teacher T')."""

    def __init__(self, a: Dataset, b: Dataset) -> None:
        if len(a) != len(b) or not np.array_equal(a.targets, b.targets):
            raise ValueError("teacher_T: the two framings of the data set differ in length or labels")
        self.a, self.b, self.targets, self.classes = a, b, a.targets, getattr(a, "classes", None)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i):
        (xa, y), (xb, _) = self.a[i], self.b[i]
        return xa, xb, y


def _subset(ds: Dataset, idx) -> Dataset:
    sub = Subset(ds, np.asarray(idx))
    sub.targets = np.asarray(ds.targets)[np.asarray(idx)]
    sub.classes = getattr(ds, "classes", None)
    return sub


def _static_transforms(data: dict, train: bool):
    from torchvision import transforms as T

    name = data["name"]
    norm = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if name == "imagenet":
        if train:
            return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *norm])
        return T.Compose([T.Resize(256), T.CenterCrop(224), *norm])
    size = data.get("image_size", 32)
    if train:
        aug = [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
        if data.get("randaugment"):
            aug.append(
                T.RandAugment(
                    num_ops=data["randaugment"].get("n", 1), magnitude=data["randaugment"].get("m", 9)
                )
            )
        tail = [T.RandomErasing(p=data["reprob"])] if data.get("reprob") else []
        return T.Compose([*aug, *norm, *tail])
    return T.Compose(norm)


def build_data(
    cfg: dict, data_root: str | None = None, seed: int = 0, *, role: str = "student"
) -> tuple[Dataset, Dataset | None, Dataset, int]:
    """(train, val, test, num_classes) for ``cfg['data']``. Val is carved from train (``val_fraction``),
    never from test; MNIST-5k has its own val split.

    ``role='student'`` limits train to ``data.train_subset``; ``role='teacher'`` to
    ``data.teacher_train_subset`` (default: all of it), so that a teacher trained on the full split can
    teach a student that sees only a few images.
    """
    if role not in ("student", "teacher"):
        raise ValueError(f"role: expected 'student' or 'teacher', got {role!r}")
    data = cfg["data"]
    name = data["name"]
    if name == "mnist5k":
        from sj_common.data import MNIST5k

        train, val, test = MNIST5k("train"), MNIST5k("val"), MNIST5k("test")
        num_classes = 10
    else:
        if not data_root:
            raise ValueError(
                f"--data-root: the {name!r} config needs a local data folder (nothing is downloaded)"
            )
        if name in ("cifar10dvs",):
            from sj_common.data import event_dataset

            kw = {"size": data.get("size")} if data.get("size") else {}

            def frames(split):
                ds = event_dataset(name, data_root, split, T=data["T"], **kw)
                if data.get("teacher_T"):
                    ds = _Zip(ds, event_dataset(name, data_root, split, T=data["teacher_T"], **kw))
                return ds

            train, test = frames("train"), frames("test")
        else:
            from sj_common.data import static_dataset

            test_split = "val" if name == "imagenet" else "test"
            train = static_dataset(name, data_root, "train", transform=_static_transforms(data, True))
            test = static_dataset(name, data_root, test_split, transform=_static_transforms(data, False))
        num_classes = int(np.max(train.targets)) + 1
        val = None
        if data.get("val_fraction"):
            from sj_common.data import stratified_subset

            vidx = stratified_subset(train.targets, data["val_fraction"], seed=seed)
            tidx = np.setdiff1d(np.arange(len(train)), vidx)
            # val from the train images, with the train transforms (a plain carve-out; document it)
            train, val = _subset(train, tidx), _subset(train, vidx)
    # smaller splits (stratified, seeded): fewer training images, or quick smoke runs of val/test
    from sj_common.data import stratified_subset

    def shrink(ds, n, s=seed):
        if not n or ds is None:
            return ds
        ratio = n / len(ds) if n > 1 else n
        return _subset(ds, stratified_subset(ds.targets, min(ratio, 1.0), seed=s))

    # the training subset may have its own seed (data.subset_seed), so that runs with different training
    # seeds share one subset: the seed then varies the training only, not the data
    subset_seed = seed if data.get("subset_seed") is None else int(data["subset_seed"])
    train = shrink(
        train, data.get("train_subset" if role == "student" else "teacher_train_subset"), subset_seed
    )
    val = shrink(val, data.get("val_subset"))
    test = shrink(test, data.get("test_subset"))
    return train, val, test, num_classes


# ---------------------------------------------------------------------------------------------------
# Teacher and student runs
# ---------------------------------------------------------------------------------------------------


def _train_config(section: dict, out: Path, overrides: dict) -> Any:
    from sj_common.engine import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ValueError(f"train: unknown TrainConfig keys {unknown}; expected some of {sorted(names)}")
    kw = {**section, **{k: v for k, v in overrides.items() if v is not None and k in names}}
    kw["out"] = str(out)
    return TrainConfig(**kw)


def _teacher_is_spiking(cfg: dict) -> bool:
    return cfg["teacher"]["name"] in STUDENTS


def train_teacher(cfg: dict, data, out: Path, overrides: dict | None = None) -> tuple[Path, dict]:
    """Train the teacher with the shared engine; returns (path of best.pt, results)."""
    from sj_common.engine import classification_step, fit, seed_everything

    train, val, test, num_classes = data
    tcfg = cfg["teacher"]
    weights = tcfg.get("weights")  # fine-tune from these when given
    config = _train_config(tcfg.get("train", cfg["train"]), out, overrides or {})
    seed_everything(config.seed)  # a seeded initialisation (fit seeds only the training that follows)
    model = create_model(
        tcfg["name"], num_classes=num_classes, weights=weights, frozen=False, **tcfg.get("kwargs", {})
    )
    spiking = _teacher_is_spiking(cfg)
    if spiking:
        from .distill import student_input

        teacher_T = cfg["data"].get("teacher_T") or cfg["data"]["T"]
        seq = cfg["data"]["name"] == "cifar10dvs"

        class _Seq(torch.nn.Module):  # static input -> repeated T times, for an SNN teacher
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(student_input(x, teacher_T, seq)).mean(0)

        model = _Seq(model)
        if data[0] is not None and isinstance(train, _Zip):
            raise NotImplementedError(
                "--teacher train on paired frames: train the SNN teacher on its own frames first"
            )
    size = cfg["data"].get("teacher_input_size")
    if size:
        interp = tcfg.get("interpolation", "bilinear")

        class _Resize(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(
                    torch.nn.functional.interpolate(x, size=size, mode=interp, align_corners=False)
                )

        model = _Resize(model)
    res = fit(model, train, val, test, config=config, step=classification_step(False))
    best = out / "best.pt"
    # store the bare teacher's weights (without the wrappers) for --teacher-weights
    ckpt = torch.load(best, map_location="cpu", weights_only=True)["model"]
    prefix = "net." * (bool(spiking) + bool(size))
    torch.save({k[len(prefix) :]: v for k, v in ckpt.items()}, out / "teacher.pt")
    return out / "teacher.pt", res


def build_distillation_model(cfg: dict, num_classes: int, example_x: torch.Tensor, teacher_weights=None):
    s, d = cfg["student"], cfg.get("distill", {"mode": "none"})
    student = create_model(s["name"], num_classes=num_classes, **s.get("kwargs", {}))
    mode = d.get("mode", "mixed")
    teacher = None
    if mode != "none":
        t = cfg["teacher"]
        teacher = create_model(
            t["name"],
            num_classes=num_classes,
            weights=teacher_weights or t.get("weights"),
            require_weights=True,
            frozen=True,
            **t.get("kwargs", {}),
        )
    t = cfg.get("teacher", {})
    kind = t.get("kind") or (TEACHERS[t["name"]][2] if t.get("name") in TEACHERS else "cnn")
    student_layers = teacher_layers = None
    if mode == "lasnn":
        student_layers, teacher_layers = s.get("layers"), t.get("layers")
        if student_layers is None and teacher_layers is None:
            warnings.warn(
                "student.layers/teacher.layers: not set, so mode 'lasnn' distils the single "
                "student.layer/teacher.layer pair (the same as kdsnn)",
                stacklevel=2,
            )
        elif student_layers is None or teacher_layers is None:
            missing = "student.layers" if student_layers is None else "teacher.layers"
            raise ValueError(
                f"{missing}: mode 'lasnn' needs both student.layers and teacher.layers, got None"
            )
    return DistillationModel(
        student,
        teacher,
        T=cfg["data"]["T"],
        mode=mode,
        student_layer=s.get("layer") or STUDENTS[s["name"]][1],
        teacher_layer=t.get("layer") or (TEACHERS[t["name"]][1] if t.get("name") in TEACHERS else None),
        student_layers=student_layers,
        teacher_layers=teacher_layers,
        example_input=example_x,
        teacher_kind=kind,
        alpha=d.get("alpha"),
        lam=d.get("lam", 0.15),
        use_clip=d.get("use_clip", False),
        tau=d.get("tau", 2.0),
        beta=d.get("beta", 1.0),
        kd_tau=d.get("kd_tau", 4.0),
        sequence_input=cfg["data"]["name"] == "cifar10dvs",
        teacher_input_size=cfg["data"].get("teacher_input_size"),
        teacher_interpolation=t.get("interpolation", "bilinear"),
        teacher_T=cfg["data"].get("teacher_T") if _teacher_is_spiking(cfg) else None,
    )


def train_student(cfg: dict, data, out: Path, teacher_weights=None, overrides: dict | None = None) -> dict:
    """Distil (or, with ``distill.mode: none``, plainly train) the student; returns the engine's results."""
    from sj_common.engine import fit, seed_everything

    train, val, test, num_classes = data
    example = train[0][0].unsqueeze(0).repeat(2, *([1] * train[0][0].dim()))
    config = _train_config(cfg["train"], out, overrides or {})
    seed_everything(config.seed)  # seeded student and head initialisation (fit seeds only the training)
    model = build_distillation_model(cfg, num_classes, example, teacher_weights)
    extra = {"bkd": {k: cfg.get(k) for k in ("data", "student", "teacher", "distill")}}
    return fit(model, train, val, test, config=config, step=distill_step, extra_results=extra)


def run(
    cfg: dict, out: Path, *, teacher: str = "load", teacher_weights=None, data_root=None, overrides=None
) -> dict:
    """The whole recipe: optionally train the teacher, then the student. Returns ``{'teacher', 'student'}``."""
    cfg = copy.deepcopy(cfg)
    overrides = overrides or {}
    seed = overrides.get("seed") if overrides.get("seed") is not None else cfg["train"].get("seed", 0)
    unsupported = cfg.get("reference", {}).get("not_applied")
    if unsupported:
        warnings.warn(f"recorded but not applied by sj-bkd: {unsupported}", stacklevel=2)
    data = build_data(cfg, data_root, seed)
    result: dict[str, Any] = {}
    mode = cfg.get("distill", {}).get("mode", "mixed")
    if teacher == "train":
        t_over = {
            k: v
            for k, v in overrides.items()
            if k in ("seed", "device", "resume", "progress", "max_steps_per_epoch")
        }
        t_data = data
        if cfg["data"].get("train_subset") != cfg["data"].get("teacher_train_subset"):
            t_data = build_data(cfg, data_root, seed, role="teacher")
        teacher_weights, result["teacher"] = train_teacher(cfg, t_data, out / "teacher", t_over)
    elif teacher != "load":
        raise ValueError(f"--teacher: expected 'load' or 'train', got {teacher!r}")
    elif mode != "none" and not (teacher_weights or cfg.get("teacher", {}).get("weights")):
        raise FileNotFoundError(
            f"--teacher-weights: mode={mode!r} needs the teacher's weights (a local file), or --teacher train"
        )
    result["student"] = train_student(cfg, data, out / "student", teacher_weights, overrides)
    return result

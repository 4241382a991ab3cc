"""The sj-bkd recipe: (train the ANN teacher, then) distil a SpikingJelly student, from one typed config.

Config sections (the YAML files in ``sj_bkd/configs``):

* ``data`` (:class:`BkdData`): the data set, ``T``, subsets (``train_subset`` limits the STUDENT's training
  images, a count or a ratio <= 1, stratified, seeded by ``subset_seed`` or else the run's seed; the
  teacher trains on ``teacher_train_subset``, default the whole train split; val and test are shared);
* ``student`` / ``teacher`` (:class:`BkdStudent` / :class:`BkdTeacher`): a model of
  :func:`sj_bkd.create_model` with its ``kwargs``, the tapped ``layer`` (``layers`` for mode lasnn); the
  teacher's ``stage`` (``load`` its ``weights``, or ``train`` it first) and its ``train`` section
  (TrainConfig keys; those it leaves out are the student's);
* ``distill`` (:data:`BkdDistill`, derived from :class:`~sj_bkd.distill.DistillationModel`'s signature, so
  its defaults are the model's): mode none | kd | wsld | bkd | mixed | kdsnn | lasnn, alpha, lam, ...;
* ``train`` (:class:`sj_common.engine.TrainConfig`) for the student;
* ``reference`` (recorded, not applied) and ``study`` (read by ``examples/bkd_table.py``).

The run folder holds ``teacher/`` (``best.pt`` and the bare ``teacher.pt``) and ``student/``. The config and
``sj-bkd --help`` need no torch: torch and the method modules are imported by the functions that use them.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sj_common.config import ConfigError, UsageError, read_constant, section_from
from sj_common.engine import TrainConfig
from sj_common.recipe import Data, Flag, Recipe, fit_model

if TYPE_CHECKING:  # torch and the method modules are imported where they are used (a fast --help)
    from torch import nn

    from .distill import DistillationModel

__all__ = [
    "BkdData",
    "BkdStudent",
    "BkdTeacher",
    "BkdDistill",
    "BkdConfig",
    "BkdRecipe",
    "RECIPE",
    "build_data",
    "train_teacher",
    "train_student",
    "build_distillation_model",
]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class RandAugmentOptions:
    """torchvision ``RandAugment(num_ops=n, magnitude=m)``."""

    n: int = 1
    m: int = 9


@dataclass
class BkdData:
    """``name``: ``mnist5k`` (embedded), an event data set of ``sj_common.data.event_dataset`` (frames,
    ``size``; ``teacher_T`` frames for an SNN teacher) or a static one of ``static_dataset`` (``image_size``,
    ``randaugment``, ``reprob``); ``val_fraction`` carves val from train (0: no val); ``*_subset``: a count,
    or a ratio <= 1; ``teacher_input_size``: the teacher sees the input resized to this."""

    T: int
    name: str = "mnist5k"
    teacher_T: int | None = None
    size: int | None = None
    image_size: int = 32
    val_fraction: float = 0.0
    train_subset: int | float | None = None
    teacher_train_subset: int | float | None = None
    val_subset: int | float | None = None
    test_subset: int | float | None = None
    subset_seed: int | None = None
    teacher_input_size: int | None = None
    randaugment: RandAugmentOptions | None = None
    reprob: float = 0.0


@dataclass
class BkdStudent:
    """A student of :data:`sj_bkd.models.STUDENTS`; ``layer``: the tapped layer (default: the model's)."""

    name: str = "sew_tiny"
    layer: str | None = None
    layers: list[str] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class BkdTeacher:
    """The teacher: ``stage`` ``load`` (its ``weights``, a local file) or ``train`` (first, with ``train``);
    ``kind``: ``cnn`` | ``vit`` (default: the model's); ``weights_hint``: what file ``weights`` expects."""

    name: str | None = None
    stage: str = "load"
    layer: str | None = None
    layers: list[str] | None = None
    kind: str | None = None
    weights: str | None = None
    weights_hint: str | None = None
    interpolation: str = "bilinear"
    kwargs: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None

    def __post_init__(self) -> None:
        if self.stage not in ("load", "train"):
            raise ValueError(f"stage: expected 'load' or 'train', got {self.stage!r}")


BkdDistill = section_from(
    "BkdDistill",
    ("sj_bkd.distill:DistillationModel", ["mode", "alpha", "lam", "use_clip", "tau", "beta", "kd_tau"]),
    doc="Distillation options: DistillationModel's (mode, alpha, lam, use_clip, tau, beta, kd_tau).",
)


@dataclass
class BkdConfig:
    """The whole sj-bkd config (one YAML file)."""

    train: TrainConfig
    data: BkdData
    student: BkdStudent
    name: str = ""
    teacher: BkdTeacher = field(default_factory=BkdTeacher)
    distill: BkdDistill = field(default_factory=BkdDistill)  # type: ignore[valid-type]
    reference: dict[str, Any] = field(default_factory=dict)
    study: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------


def _static_transforms(data: BkdData, train: bool):
    from torchvision import transforms as T

    norm = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if data.name == "imagenet":
        if train:
            return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *norm])
        return T.Compose([T.Resize(256), T.CenterCrop(224), *norm])
    if not train:
        return T.Compose(norm)
    aug = [T.RandomCrop(data.image_size, padding=4), T.RandomHorizontalFlip()]
    if data.randaugment:
        aug.append(T.RandAugment(num_ops=data.randaugment.n, magnitude=data.randaugment.m))
    tail = [T.RandomErasing(p=data.reprob)] if data.reprob else []
    return T.Compose([*aug, *norm, *tail])


def build_data(cfg: BkdConfig, data_root: str | None = None, *, role: str = "student") -> Data:
    """The splits for ``cfg.data``. Val is carved from train (``val_fraction``), never from test; MNIST-5k
    has its own val split. ``role='student'`` limits train to ``data.train_subset``, ``role='teacher'`` to
    ``data.teacher_train_subset`` (default: all of it), so that a teacher trained on the full split can
    teach a student that sees only a few images. Seeds: ``cfg.train.seed`` (or ``data.subset_seed``)."""
    import numpy as np
    from sj_common.data import Subset, stratified_subset

    from .wrappers import PairedFrames

    if role not in ("student", "teacher"):
        raise ValueError(f"role: expected 'student' or 'teacher', got {role!r}")
    d, seed = cfg.data, cfg.train.seed
    sequence = False
    if d.name == "mnist5k":
        from sj_common.data import MNIST5k

        train, val, test = (MNIST5k(s, shuffle=False) for s in ("train", "val", "test"))  # published order
    else:
        if not data_root:
            raise UsageError(
                f"--data-root: the {d.name!r} config needs a local data folder (nothing is downloaded)"
            )
        from sj_common.data import STATIC_DATASETS

        if d.name not in STATIC_DATASETS:  # an event data set: frame sequences [T, ...]
            from sj_common.data import event_dataset

            sequence = True
            kw = {"size": d.size} if d.size else {}

            def frames(split):
                ds = event_dataset(d.name, data_root, split, T=d.T, **kw)
                if d.teacher_T:
                    ds = PairedFrames(ds, event_dataset(d.name, data_root, split, T=d.teacher_T, **kw))
                return ds

            train, test = frames("train"), frames("test")
        else:
            from sj_common.data import static_dataset

            test_split = "val" if d.name == "imagenet" else "test"
            train = static_dataset(d.name, data_root, "train", transform=_static_transforms(d, True))
            test = static_dataset(d.name, data_root, test_split, transform=_static_transforms(d, False))
        val = None
        if d.val_fraction:
            vidx = stratified_subset(train.targets, d.val_fraction, seed=seed)
            tidx = np.setdiff1d(np.arange(len(train)), vidx)
            # val from the train images, with the train transforms (a plain carve-out)
            train, val = Subset(train, tidx), Subset(train, vidx)
    num_classes = int(np.max(train.targets)) + 1

    def shrink(ds, n, s=seed):
        if not n or ds is None:
            return ds
        ratio = n / len(ds) if n > 1 else n
        return Subset(ds, stratified_subset(ds.targets, min(ratio, 1.0), seed=s))

    # the training subset may have its own seed (data.subset_seed), so that runs with different training
    # seeds share one subset: the seed then varies the training only, not the data
    subset_seed = seed if d.subset_seed is None else d.subset_seed
    train = shrink(train, d.train_subset if role == "student" else d.teacher_train_subset, subset_seed)
    return Data(
        train,
        shrink(val, d.val_subset),
        shrink(test, d.test_subset),
        num_classes=num_classes,
        sequence_input=sequence,
    )


# ---------------------------------------------------------------------------------------------------
# Teacher
# ---------------------------------------------------------------------------------------------------


def _teacher_is_spiking(cfg: BkdConfig) -> bool:
    from .models import STUDENTS

    return cfg.teacher.name in STUDENTS


def train_teacher(cfg: BkdConfig, data: Data) -> tuple[Path, dict]:
    """Train the teacher (``cfg.teacher.train``) with the shared engine; returns ``(teacher.pt, results)``.

    ``teacher.pt`` holds the bare teacher's state dict (without the input wrappers), for ``teacher.weights``.
    """
    import torch
    from sj_common.engine import classification_step, load_checkpoint

    from .models import create_model
    from .wrappers import PairedFrames, RepeatedInput, ResizedInput

    t = cfg.teacher
    if t.train is None or t.name is None:
        raise ConfigError("teacher: --teacher train needs teacher.name and teacher.train")
    if isinstance(data.train, PairedFrames):
        raise UsageError(
            "--teacher train on paired frames (data.teacher_T): train the SNN teacher on its own frames first"
        )
    holder: dict[str, nn.Module] = {}

    def build() -> nn.Module:
        teacher = create_model(
            t.name, num_classes=data.num_classes, weights=t.weights, frozen=False, **t.kwargs
        )
        holder["teacher"] = teacher
        model = teacher
        if _teacher_is_spiking(cfg):
            model = RepeatedInput(model, cfg.data.teacher_T or cfg.data.T, data.sequence_input)
        if cfg.data.teacher_input_size:
            model = ResizedInput(model, cfg.data.teacher_input_size, t.interpolation)
        return model

    model, res = fit_model(build, data, t.train, step=classification_step(False))
    out = Path(t.train.out)
    load_checkpoint(out / "best.pt", model)  # the best epoch, into the wrappers and so into the teacher
    torch.save(holder["teacher"].state_dict(), out / "teacher.pt")
    return out / "teacher.pt", res


# ---------------------------------------------------------------------------------------------------
# Student
# ---------------------------------------------------------------------------------------------------


def build_distillation_model(
    cfg: BkdConfig,
    data: Data,
    teacher_weights: str | Path | None = None,
    *,
    require_teacher_weights: bool = True,
) -> DistillationModel:
    """Student (+ frozen teacher with ``teacher_weights`` or ``teacher.weights``) + distillation head.

    ``require_teacher_weights=False`` builds a randomly initialised teacher when no weights are given (only
    to load a whole trained checkpoint into)."""
    from .distill import DistillationModel
    from .models import STUDENTS, TEACHERS, create_model

    s, t, d = cfg.student, cfg.teacher, cfg.distill
    x0 = data.train[0][0]
    example = x0.unsqueeze(0).repeat(2, *([1] * x0.dim()))
    student = create_model(s.name, num_classes=data.num_classes, **s.kwargs)
    teacher = None
    if d.mode != "none":
        if t.name is None:
            raise ConfigError(f"teacher.name: distill.mode {d.mode!r} needs a teacher")
        teacher = create_model(
            t.name,
            num_classes=data.num_classes,
            weights=teacher_weights or t.weights,
            require_weights=require_teacher_weights,
            frozen=True,
            **t.kwargs,
        )
    kind = t.kind or (TEACHERS[t.name][2] if t.name in TEACHERS else "cnn")
    student_layers = teacher_layers = None
    if d.mode == "lasnn":
        student_layers, teacher_layers = s.layers, t.layers
        if student_layers is None and teacher_layers is None:
            warnings.warn(
                "student.layers/teacher.layers: not set, so mode 'lasnn' distils the single "
                "student.layer/teacher.layer pair (the same as kdsnn)",
                stacklevel=2,
            )
        elif student_layers is None or teacher_layers is None:
            missing = "student.layers" if student_layers is None else "teacher.layers"
            raise ConfigError(
                f"{missing}: mode 'lasnn' needs both student.layers and teacher.layers, got None"
            )
    return DistillationModel(
        student,
        teacher,
        T=cfg.data.T,
        mode=d.mode,
        student_layer=s.layer or STUDENTS[s.name][1],
        teacher_layer=t.layer or (TEACHERS[t.name][1] if t.name in TEACHERS else None),
        student_layers=student_layers,
        teacher_layers=teacher_layers,
        example_input=example,
        teacher_kind=kind,
        alpha=d.alpha,
        lam=d.lam,
        use_clip=d.use_clip,
        tau=d.tau,
        beta=d.beta,
        kd_tau=d.kd_tau,
        sequence_input=data.sequence_input,
        teacher_input_size=cfg.data.teacher_input_size,
        teacher_interpolation=t.interpolation,
        teacher_T=cfg.data.teacher_T if _teacher_is_spiking(cfg) else None,
    )


def train_student(
    cfg: BkdConfig, data: Data, teacher_weights: str | Path | None = None, *, prepare=None
) -> dict:
    """Distil (or, with ``distill.mode: none``, plainly train) the student; returns the engine's results.

    ``prepare(model)`` runs after the build (e.g. loading a reference checkpoint to fine-tune from)."""
    from .distill import distill_step

    _, res = fit_model(
        lambda: build_distillation_model(cfg, data, teacher_weights),
        data,
        cfg.train,
        step=distill_step,
        extra_results=RECIPE.extra_results(cfg, data),
        prepare=prepare,
    )
    return res


_MODES = read_constant("sj_bkd.distill:MODES")  # for --help (sj_bkd.distill.MODES, read without torch)


class BkdRecipe(Recipe):
    """Blurred knowledge distillation (BKDSNN, Xu et al., ECCV 2024) and its baselines."""

    prog = "sj-bkd"
    package = "sj_bkd"
    description = (
        "Train ANN teachers and distil SpikingJelly students (BKDSNN, Xu et al., ECCV 2024).\n\n"
        "  sj-bkd train --config mnist5k --teacher train --out runs/bkd\n"
        "  sj-bkd train --config imagenet_sew34_r34_mixed --data-root ~/imagenet --teacher-weights r34.pth"
    )
    config_type = BkdConfig
    flags = (
        Flag(
            ("--teacher",),
            "teacher.stage",
            "load the teacher's weights, or train the ANN teacher first",
            choices=("load", "train"),
        ),
        Flag(
            ("--teacher-weights",),
            "teacher.weights",
            "local teacher checkpoint (.pt/.pth; .npz for timm ViTs)",
            ("train", "eval"),
        ),
        Flag(("--teacher-epochs",), "teacher.train.epochs", "epochs of the teacher stage (--teacher train)"),
        Flag(
            ("--mode",),
            "distill.mode",
            "distillation mode",
            ("train", "eval"),
            choices=_MODES,
        ),
    )

    def default_out(self, config_name: str, raw: dict) -> str:
        return f"runs/bkd/{config_name}"

    def prepare_raw(self, raw: dict[str, Any], out: str) -> None:
        """``<out>/student`` and ``<out>/teacher``; the teacher's train section defaults to the student's."""
        train = dict(raw.get("train") or {})
        train.pop("out", None)
        raw["train"] = {**train, "out": str(Path(out) / "student")}
        teacher = raw.get("teacher")
        if isinstance(teacher, dict):
            teacher["train"] = {**train, **(teacher.get("train") or {}), "out": str(Path(out) / "teacher")}

    def check(self, cfg: BkdConfig) -> None:
        from .distill import MODES
        from .models import STUDENTS, TEACHERS

        if cfg.distill.mode not in MODES:
            raise ConfigError(f"distill.mode: expected one of {MODES}, got {cfg.distill.mode!r}")
        if cfg.student.name not in STUDENTS:
            raise ConfigError(f"student.name: expected one of {sorted(STUDENTS)}, got {cfg.student.name!r}")
        if (
            cfg.teacher.name is not None
            and cfg.teacher.name not in TEACHERS
            and cfg.teacher.name not in STUDENTS
        ):
            raise ConfigError(
                f"teacher.name: expected one of {sorted(TEACHERS) + sorted(STUDENTS)}, got {cfg.teacher.name!r}"
            )

    def build_data(self, cfg: BkdConfig, *, data_root: str | None = None) -> Data:
        return build_data(cfg, data_root)

    def build_model(self, cfg: BkdConfig, data: Data) -> nn.Module:
        """The DistillationModel to load a trained checkpoint into (``eval``): the checkpoint holds the
        teacher too, so the teacher's weights file is optional here."""
        return build_distillation_model(cfg, data, require_teacher_weights=False)

    def load_reference(self, model: nn.Module, path: str | Path, source: str | None = None) -> nn.Module:
        """A released BKDSNN student -> the student of ``model`` (``--from-reference``, to evaluate or fine-tune).

        :func:`sj_common.reference.load_reference_checkpoint` with ``source='bkdsnn'``: SEW-ResNet-18/34/50
        (``{'model', 'args', ...}``, ``args.connect_f`` checked against ``student.kwargs.cnf``) or CML +
        Spikingformer (timm ``{'state_dict', ...}``; ``heads`` is not in the file: it is the config's).
        Anything that does not fit is one usage error naming the keys.
        """
        from sj_common.reference import ReferenceCheckpointError, load_reference_checkpoint

        from .reference import SOURCE  # registers the converter

        try:
            load_reference_checkpoint(getattr(model, "student", model), path, source=source or SOURCE)
        except (ReferenceCheckpointError, FileNotFoundError) as e:
            raise UsageError(f"--from-reference: {e}") from e
        return model

    def build_step(self, cfg: BkdConfig, data: Data):
        from .distill import distill_step

        return distill_step

    def extra_results(self, cfg: BkdConfig, data: Data) -> dict[str, Any]:
        return {
            **super().extra_results(cfg, data),
            "sequence_input": data.sequence_input,
            "train_images": len(data.train),
        }

    def train(self, cfg: BkdConfig, *, data_root=None, reference=None, reference_source=None) -> dict:
        """The teacher stage (``teacher.stage: train``), then the student. Returns ``{"teacher"?, "student"}``."""
        if cfg.teacher.stage == "load" and cfg.distill.mode != "none" and not cfg.teacher.weights:
            raise UsageError(
                f"--teacher-weights: mode={cfg.distill.mode!r} needs the teacher's weights (a local file), "
                "or --teacher train"
            )
        if cfg.reference.get("not_applied"):
            warnings.warn(f"recorded but not applied by sj-bkd: {cfg.reference['not_applied']}", stacklevel=2)
        data = build_data(cfg, data_root)
        result: dict[str, Any] = {}
        if cfg.teacher.stage == "train":
            t_data = data
            if cfg.data.train_subset != cfg.data.teacher_train_subset:
                t_data = build_data(cfg, data_root, role="teacher")
            weights, result["teacher"] = train_teacher(cfg, t_data)
            cfg = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, weights=str(weights)))
        result["student"] = train_student(cfg, data, prepare=self._prepare(reference, reference_source))
        return result

    def summary(self, cfg: BkdConfig, results: dict) -> list[dict]:
        outs = {"teacher": cfg.teacher.train.out if cfg.teacher.train else None, "student": cfg.train.out}
        return [
            {
                "stage": k,
                "best_val_acc1": v.get("best_val_acc1"),
                "test_acc1": v.get("test_acc1"),
                "out": outs[k],
            }
            for k, v in results.items()
        ]


RECIPE = BkdRecipe()


def __getattr__(name: str):
    """The wrappers that moved to :mod:`sj_bkd.wrappers` (imported on first use: they need torch)."""
    if name in ("PairedFrames", "RepeatedInput", "ResizedInput"):
        from . import wrappers

        return getattr(wrappers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The sj-transfer recipe: static-to-event transfer (or its event-only baseline) from one typed config.

Config sections (the YAML files in ``sj_transfer/configs/``): ``data`` (:class:`TransferData`), ``model``
(:class:`TransferNet`), ``method`` (:data:`TransferMethod`, derived from the signatures of
:class:`~sj_transfer.loss.DomainTransferLoss`, :func:`~sj_transfer.sampler.make_schedule` and
:class:`~sj_transfer.train.TransferModel`, so its defaults are theirs) and ``train``
(:class:`sj_common.engine.TrainConfig`). Used by ``sj-transfer``, the demo and the notebook::

    from sj_transfer.recipe import RECIPE
    cfg = RECIPE.config("mnist5k", {"method.baseline": True, "train.epochs": 2})
    results = RECIPE.train(cfg)

Data: ``data.event == "mnist5k"`` is the embedded default (MNIST-5k digits and their emulated event twins,
``sj_common.data.MNIST5k`` / ``MNIST5kEvents``, val split for model selection); otherwise the event and
static sets come from ``--data-root`` through ``sj_common.data.event_dataset`` / ``static_dataset``
(``data_root/<event>`` and ``data_root/<static>`` folders, or one root for both), with a seeded per-class
validation split carved from the event training set (the reference picked the best epoch on the test set,
which is optimistic; we never do).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sj_common.config import ConfigError, UsageError, default_of, section_from
from sj_common.engine import TrainConfig
from sj_common.recipe import Data, Flag, Recipe

if TYPE_CHECKING:  # torch and the method modules are imported by build_* (a fast --help)
    import torch

    from .train import TransferModel

__all__ = ["TransferData", "TransferNet", "TransferMethod", "TransferConfig", "TransferRecipe", "RECIPE"]

_ARCH_NAMES = ("paper", "small")  # model.cfg names: sj_transfer.models.PAPER_CFG, SMALL_CFG
_NETS = ("vgg", "scnn", "resnet18")  # model.arch: TransferVGGSNN, TransferSCNN, TransferResNet18
_SURROGATE_NAMES = ("qgategrad", "rect")  # QGateGrad, back_ei_gate_grad


def _arch(name: str) -> tuple:
    from .models import PAPER_CFG, SMALL_CFG

    return dict(zip(_ARCH_NAMES, (PAPER_CFG, SMALL_CFG)))[name]


def _surrogate(name: str):
    from .surrogate import QGateGrad, back_ei_gate_grad

    return dict(zip(_SURROGATE_NAMES, (QGateGrad, back_ei_gate_grad)))[name]


_PAIRED, _NET = "sj_common.data.paired:PairedStaticEvent", "sj_transfer.models:TransferVGGSNN"


@dataclass
class TransferData:
    """``event`` / ``static``: the paired data sets (``mnist5k`` is embedded); ``T`` frames of ``size`` x
    ``size``; ``train_ratio``: fraction of event training samples per class (stratified, seeded by
    ``subset_seed``, or by ``train.seed`` when it is null); ``static_ratio``: the same for the static set;
    ``val_fraction``: event training samples held out for model selection (real data sets; mnist5k has its
    own val split); ``crop_padding``: the event random crop's padding (null: ``size // 12``, the reference's);
    ``num_classes``: checked against the data when given; ``cache_dir``: folder of the emulated-frame cache
    of ``mnist5k`` (null: ``<system temp>/sj_cache``).

    Options of the reference (defaults: our earlier behaviour; the paper configs set the reference's):
    ``preset``: the ``mnist5k`` event twin's emulator preset (``default``: the clean twin; ``noisy``: higher,
    mismatched thresholds, 5 ms refractory period, 5 Hz/pixel background noise; ``sj_common.data.
    EMULATOR_PRESETS``); ``balanced_sampling``: draw training items class-balanced **with replacement**
    (:class:`~sj_common.data.ClassBalancedSampler`, the reference's ``WeightedRandomSampler``; false:
    each kept sample once per epoch, shuffled); ``samples_per_epoch``: items per epoch with
    ``balanced_sampling`` (null: the training set's size, the reference's); ``dvs_augment``: the reference's
    ``--DVS-DA``, a horizontal flip and a rotation up to 15 degrees per sample after the random crop
    (:class:`~sj_transfer.train.FlipRotateFrames`; false: the crop alone); ``resize``: how event frames are
    brought to ``size`` (``bilinear``, the reference's; ``sum``: events binned into the smaller grid, every
    event counted, for N-Omniglot's 250 -> 28, see :class:`sj_common.data.ToFrames`); ``frame_norm``: null
    (event counts, the reference's for N-Caltech101 / CIFAR10-DVS / CEP-DVS) or ``max`` (each frame and
    polarity scaled to a maximum of 1: the N-Omniglot reference's ``frequency`` frames).

    Static partners are paired by class name where the data sets allow it: Omniglot's characters are
    selected and ordered by the event set's ``<alphabet>/characterNN`` names (N-Omniglot)."""

    T: int
    size: int
    event: str = "mnist5k"
    static: str = "mnist5k"
    train_ratio: float = default_of(_PAIRED, "train_ratio")
    static_ratio: float = 1.0
    use_hsv: bool = default_of(_PAIRED, "use_hsv")
    val_fraction: float = 0.1
    crop_padding: int | None = None
    split_seed: int = 0
    num_classes: int | None = None
    subset_seed: int | None = default_of(_PAIRED, "subset_seed")
    cache_dir: str | None = None
    preset: str = "default"
    balanced_sampling: bool = False
    samples_per_epoch: int | None = None
    dvs_augment: bool = False
    resize: str = "bilinear"
    frame_norm: str | None = None

    def __post_init__(self) -> None:
        from sj_common.data.emulator import EMULATOR_PRESETS

        if self.resize not in ("bilinear", "sum"):
            raise ValueError(f"resize: expected 'bilinear' or 'sum', got {self.resize!r}")
        if self.frame_norm not in (None, "max"):
            raise ValueError(f"frame_norm: expected null or 'max', got {self.frame_norm!r}")

        if self.preset not in EMULATOR_PRESETS:
            raise ValueError(f"preset: expected one of {sorted(EMULATOR_PRESETS)}, got {self.preset!r}")
        if self.samples_per_epoch is not None:
            if not self.balanced_sampling:
                raise ValueError(
                    f"samples_per_epoch: only used with balanced_sampling: true, got {self.samples_per_epoch!r} "
                    "with balanced_sampling: false"
                )
            if not isinstance(self.samples_per_epoch, int) or self.samples_per_epoch < 1:
                raise ValueError(
                    f"samples_per_epoch: expected null or an int >= 1, got {self.samples_per_epoch!r}"
                )
        if self.T < 1 or self.size < 1:
            raise ValueError(f"T, size: expected integers >= 1, got T={self.T}, size={self.size}")
        for name in ("train_ratio", "static_ratio"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a fraction in (0, 1], got {getattr(self, name)!r}")


@dataclass
class TransferNet:
    """``arch``: ``vgg`` (:class:`TransferVGGSNN`, N-Caltech101 / CIFAR10-DVS), ``scnn``
    (:class:`~sj_transfer.scnn.TransferSCNN`, the reference's N-Omniglot net: one shared head, no BN, the
    ``node1`` membrane tap) or ``resnet18`` (:class:`~sj_transfer.resnet.TransferResNet18`, CEP-DVS: two
    heads, analog tap); ``cfg`` (``vgg`` only): ``paper`` (the paper's VGG-SNN), ``small``, or a list of
    widths and ``P`` (pooling);
    ``surrogate``: ``qgategrad`` (the paper's) or ``rect`` (N-Omniglot's); ``surrogate_alpha``: null for
    the surrogate's own default; ``shared_head``: one classifier head for both domains (static images then
    train the tested head; the reference's N-Omniglot model; false: a static and an event head, its
    VGG-SNN); ``bn_per_step``: BatchNorm statistics per time step over the batch (the reference) instead of
    over ``T * B`` (false, SpikingJelly's ``SeqToANNContainer``). See :class:`TransferVGGSNN`."""

    arch: str = "vgg"
    cfg: str | list[int | str] = "paper"
    tau: float = default_of(_NET, "tau")
    v_threshold: float = default_of(_NET, "v_threshold")
    surrogate: str = "qgategrad"
    surrogate_alpha: float | None = None
    shared_head: bool = default_of(_NET, "shared_head")
    bn_per_step: bool = default_of(_NET, "bn_per_step")

    def __post_init__(self) -> None:
        if isinstance(self.cfg, str) and self.cfg not in _ARCH_NAMES:
            raise ValueError(f"cfg: expected 'paper', 'small' or a list of widths and 'P', got {self.cfg!r}")
        if self.arch not in _NETS:
            raise ValueError(f"arch: expected one of {list(_NETS)}, got {self.arch!r}")
        if self.arch == "scnn" and not self.shared_head:
            raise ValueError(
                "shared_head: arch 'scnn' has one head shared by both domains; set shared_head: true"
            )
        if self.arch == "resnet18" and self.shared_head:
            raise ValueError(
                "shared_head: arch 'resnet18' has a static and an event head; set shared_head: false"
            )
        if self.surrogate not in _SURROGATE_NAMES:
            raise ValueError(f"surrogate: expected one of {sorted(_SURROGATE_NAMES)}, got {self.surrogate!r}")


TransferMethod = section_from(
    "TransferMethod",
    (
        "sj_transfer.loss:DomainTransferLoss",
        ["alpha", "regularization", "coefficient_init", "tet", "tet_lambda", "mse_target", "domain_loss"],
        {"coefficient_init": "init"},
    ),
    ("sj_transfer.sampler:make_schedule", ["power"]),
    ("sj_transfer.train:TransferModel", ["baseline", "event_bn_stats"]),
    extra=[("sliding", str, "sliding"), ("static_pretrain_epochs", int, 0)],
    doc="The method's hyperparameters: DomainTransferLoss, the sliding schedule ('sliding' | 'no_sliding' | "
    "'none', power) and TransferModel (baseline: event data only; event_bn_stats). "
    "static_pretrain_epochs > 0 trains neither: the plain alternative to the method, the baseline's network "
    "and head pre-trained on the static set for that many of train.epochs, then fine-tuned on the event "
    "subset for the rest (see TransferRecipe.train).",
)


@dataclass
class TransferConfig:
    """The whole sj-transfer config (one YAML file)."""

    train: TrainConfig
    data: TransferData
    name: str = ""
    model: TransferNet = field(default_factory=TransferNet)
    method: TransferMethod = field(default_factory=TransferMethod)  # type: ignore[valid-type]


def _roots(data_root, event: str, static: str) -> tuple[Path, Path]:
    if data_root is None:
        raise UsageError(f"--data-root: data set {event!r} needs a local folder (nothing is downloaded)")
    root = Path(data_root)
    if not root.is_dir():
        raise UsageError(f"--data-root: expected an existing folder, got {str(root)!r}")
    pick = {}
    for name in (event, static):
        sub = [root / name, root / name.lower(), root / name.upper()]
        pick[name] = next((p for p in sub if p.is_dir()), root)
    return pick[event], pick[static]


class TransferRecipe(Recipe):
    """Static-to-event knowledge transfer (He et al., AAAI 2024), or its event-only baseline."""

    prog = "sj-transfer"
    package = "sj_transfer"
    description = (
        "Static-to-event knowledge transfer (He et al., AAAI 2024) or its event-only baseline.\n\n"
        "  sj-transfer train --config mnist5k --out runs/transfer\n"
        "  sj-transfer train --config mnist5k --baseline --out runs/baseline"
    )
    config_type = TransferConfig
    flags = (
        Flag(("--baseline",), "method.baseline", "train the same network on event data alone", const=True),
        Flag(("--train-ratio",), "data.train_ratio", "fraction of event training samples per class"),
        Flag(("--T",), "data.T", "time steps (frames per sample)", ("train", "eval")),
        Flag(
            ("--cache-dir",),
            "data.cache_dir",
            "folder of the emulated-frame cache (null: <system temp>/sj_cache)",
            ("train", "eval"),
        ),
    )

    def default_out(self, config_name: str, raw: dict) -> str:
        kind = "baseline" if (raw.get("method") or {}).get("baseline") else "transfer"
        return f"runs/{raw.get('name') or config_name}-{kind}"

    def check(self, cfg: TransferConfig) -> None:
        super().check(cfg)
        k = cfg.method.static_pretrain_epochs
        if k and (cfg.method.baseline or not 0 < k < cfg.train.epochs):
            raise ConfigError(
                f"method.static_pretrain_epochs: expected 0 (off), or 1 to train.epochs - 1 = "
                f"{cfg.train.epochs - 1} without --baseline, got {k}"
                + (" with method.baseline: true" if cfg.method.baseline else "")
            )

    def train(
        self,
        cfg: TransferConfig,
        *,
        data_root: str | None = None,
        reference: str | Path | None = None,
        reference_source: str | None = None,
    ) -> dict:
        """Train the method, the baseline, or (``method.static_pretrain_epochs: k``) pre-train then fine-tune.

        Pre-train then fine-tune is what a user without the method would try first: the baseline's network
        and its one head trained for ``k`` epochs on the static images (the static branch's inputs of the
        method, through the same sampler, crop and step budget per epoch; a run of its own in
        ``<out>/static_pretrain`` with its own optimizer, warm-up and cosine schedule), then the same weights
        trained as the baseline on the event subset for ``train.epochs - k`` epochs (fresh optimizer and
        schedule; best epoch chosen on the event val split). The two phases split the run's step budget.
        """
        import dataclasses

        k = cfg.method.static_pretrain_epochs
        if not k:
            return super().train(
                cfg, data_root=data_root, reference=reference, reference_source=reference_source
            )
        from sj_common.recipe import fit_model

        from .train import static_pretrain_step

        base = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, baseline=True))
        paired = self.build_data(cfg, data_root=data_root)
        paired = dataclasses.replace(paired, test=None)  # the static phase is never tested
        out = Path(cfg.train.out)
        pre_cfg = dataclasses.replace(cfg.train, epochs=k, out=str(out / "static_pretrain"))
        model, pre = fit_model(
            lambda: self.build_model(base, paired),
            paired,
            pre_cfg,
            step=static_pretrain_step(self.build_step(base, paired)),
            extra_results={**super().extra_results(cfg, paired), "phase": "static_pretrain"},
            prepare=self._prepare(reference, reference_source),
        )
        events = self.build_data(base, data_root=data_root)
        summary = {
            "epochs": k,
            "event_val_acc1_last": (pre.get("history") or [{}])[-1].get("val_acc1"),
            "wall_time_s": pre.get("wall_time_s"),
        }
        _, res = fit_model(
            lambda: model,
            events,
            dataclasses.replace(cfg.train, epochs=cfg.train.epochs - k),
            step=self.build_step(base, events),
            extra_results={
                **self.extra_results(base, events),
                "method": "finetune",
                "static_pretrain": summary,
            },
        )
        return res

    def build_data(self, cfg: TransferConfig, *, data_root: str | None = None) -> Data:
        """Train items: ``(static, event, y)``, or ``(event, y)`` for the baseline; val/test: ``(event, y)``.

        The event training set is cut to ``data.train_ratio`` per class; the baseline trains on exactly the
        same event samples as the transfer run.
        """
        import torch.nn.functional as F

        from sj_common import data as D

        d, seed, baseline = cfg.data, cfg.train.seed, cfg.method.baseline
        if d.event == "mnist5k":
            cache = d.cache_dir or str(Path(tempfile.gettempdir()) / "sj_cache")
            event_train, val, test = (
                D.MNIST5kEvents(s, T=d.T, seed=d.split_seed, cache_dir=cache, preset=d.preset, shuffle=False)
                for s in ("train", "val", "test")
            )
            # the emulator shows the 28x28 digit in the middle of a 34x34 sensor (as N-MNIST): pad, not resize,
            # so that static and event digits have the same scale and position
            pad = (event_train.sensor_size[0] - 28) // 2
            static_train = D.MNIST5k(
                "train", seed=d.split_seed, transform=partial(F.pad, pad=(pad,) * 4), shuffle=False
            )  # the file order, as the published runs
            static_size = None
        else:
            event_root, static_root = _roots(data_root, d.event, d.static)
            frames = {"T": d.T, "size": d.size, "resize": d.resize, "normalize": d.frame_norm}
            full = D.event_dataset(d.event, event_root, "train", **frames)
            test = D.event_dataset(d.event, event_root, "test", **frames)
            tr_idx, va_idx = D.stratified_split(
                full.targets, [1.0 - d.val_fraction, d.val_fraction], seed=d.split_seed
            )
            event_train, val = D.Subset(full, tr_idx), D.Subset(full, va_idx)
            # Omniglot characters picked and ordered by the event set's names: pairs by name, not by index
            by_name = {"classes": full.classes} if d.static.lower() == "omniglot" else {}
            static_train = D.static_dataset(d.static, static_root, "train", **by_name)
            static_size = d.size  # the reference resizes static images to the event frame size (48)
        num_classes = len(event_train.classes)
        if d.num_classes not in (None, num_classes):
            raise UsageError(
                f"data.num_classes: config says {d.num_classes}, the event data set has {num_classes}"
            )
        subset_seed = seed if d.subset_seed is None else d.subset_seed
        if baseline:
            train = D.Subset(
                event_train, D.stratified_subset(event_train.targets, d.train_ratio, seed=subset_seed)
            )
        else:
            static = static_train
            if d.static_ratio < 1.0:
                static = D.Subset(
                    static_train, D.stratified_subset(static_train.targets, d.static_ratio, seed=seed)
                )
            train = D.PairedStaticEvent(
                static,
                event_train,
                T=d.T,
                train_ratio=d.train_ratio,
                seed=seed,
                subset_seed=subset_seed,
                size=static_size,
                use_hsv=d.use_hsv,
            )
        sampler = None
        if d.balanced_sampling:
            sampler = D.ClassBalancedSampler(train.targets, d.samples_per_epoch, seed=seed)
        return Data(train, val, test, num_classes=num_classes, sequence_input=True, train_sampler=sampler)

    @staticmethod
    def _vgg(cfg: TransferConfig, data: Data, arch, sg):
        from .models import TransferVGGSNN

        m = cfg.model
        return TransferVGGSNN(
            data.num_classes,
            in_channels=2,
            image_size=cfg.data.size,
            cfg=list(arch),
            tau=m.tau,
            v_threshold=m.v_threshold,
            surrogate_function=sg,
            static_head=not cfg.method.baseline,
            shared_head=m.shared_head,
            bn_per_step=m.bn_per_step,
        )

    def build_model(self, cfg: TransferConfig, data: Data) -> TransferModel:
        """The :class:`TransferModel` (network + loss with its coefficients)."""
        from .loss import DomainTransferLoss
        from .train import TransferModel

        m, me, baseline = cfg.model, cfg.method, cfg.method.baseline
        arch = _arch(m.cfg) if isinstance(m.cfg, str) else m.cfg
        make_sg = _surrogate(m.surrogate)
        sg = make_sg() if m.surrogate_alpha is None else make_sg(m.surrogate_alpha)
        common = {"tau": m.tau, "v_threshold": m.v_threshold, "surrogate_function": sg}
        if m.arch == "scnn":
            from .scnn import TransferSCNN

            net = TransferSCNN(data.num_classes, in_channels=2, image_size=cfg.data.size, **common)
        elif m.arch == "resnet18":
            from .resnet import TransferResNet18

            net = TransferResNet18(
                data.num_classes,
                in_channels=2,
                image_size=cfg.data.size,
                static_head=not baseline,
                bn_per_step=m.bn_per_step,
                **common,
            )
        else:
            net = self._vgg(cfg, data, arch, sg)
        loss = DomainTransferLoss(
            cfg.data.T,
            alpha=me.alpha,
            regularization="none" if baseline else me.regularization,
            tet=me.tet,
            tet_lambda=me.tet_lambda,
            mse_target=me.mse_target,
            init=me.coefficient_init,
            domain_loss=me.domain_loss,
        )
        return TransferModel(net, loss, baseline=baseline, event_bn_stats=me.event_bn_stats)

    def load_reference(
        self, model: torch.nn.Module, path: str | Path, source: str | None = None
    ) -> torch.nn.Module:
        """The authors' Transfer_VGG_SNN (timm ``{'state_dict', ...}``) -> ``model`` (``--from-reference``).

        :func:`sj_common.reference.load_reference_checkpoint` with ``source='transfer_for_dvs'``: the
        ``coefficient.{t}`` concatenated into ``loss.coefficients``, ``rgb_fc``/``dvs_fc`` -> the static/event
        heads, the stored LIF threshold and surrogate alpha checked against ``model.v_threshold`` /
        ``model.surrogate_alpha``. Anything that does not fit is one usage error naming the keys.
        """
        from sj_common.reference import ReferenceCheckpointError, load_reference_checkpoint

        from .reference import SOURCE  # registers the converter

        try:
            load_reference_checkpoint(model, path, source=source or SOURCE)
        except (ReferenceCheckpointError, FileNotFoundError) as e:
            raise UsageError(f"--from-reference: {e}") from e
        return model

    def build_step(self, cfg: TransferConfig, data: Data):
        """Frames resized to ``data.size`` (area for downsampling), event random crop, sliding replacement."""
        import torch.nn.functional as F

        from .sampler import SlidingReplacement, make_schedule
        from .train import FlipRotateFrames, RandomCropFrames, transfer_step

        size = cfg.data.size
        pad = size // 12 if cfg.data.crop_padding is None else cfg.data.crop_padding
        sliding = None
        if not cfg.method.baseline:
            sliding = SlidingReplacement(make_schedule(cfg.method.sliding, cfg.method.power))

        def resize(x: torch.Tensor) -> torch.Tensor:  # [B, T, C, H, W]
            if x.shape[-2:] == (size, size):
                return x
            B, T = x.shape[:2]
            y = F.interpolate(x.flatten(0, 1), size=(size, size), mode="area")
            return y.view(B, T, *y.shape[1:])

        augs = ([RandomCropFrames(pad)] if pad else []) + (
            [FlipRotateFrames(15.0)] if cfg.data.dvs_augment else []
        )

        def augment(x: torch.Tensor) -> torch.Tensor:
            for a in augs:
                x = a(x)
            return x

        return transfer_step(sliding, augment if augs else None, preprocess=resize)

    def extra_results(self, cfg: TransferConfig, data: Data) -> dict[str, Any]:
        return {
            **super().extra_results(cfg, data),
            "method": "baseline" if cfg.method.baseline else "transfer",
            "train_ratio": cfg.data.train_ratio,
            "num_train_events": len(data.train),
        }

    def summary(self, cfg: TransferConfig, results: dict) -> list[dict]:
        return [
            {
                "method": results.get("method"),
                "train_ratio": results.get("train_ratio"),
                "best_val_acc1": results.get("best_val_acc1"),
                "test_acc1": results.get("test_acc1"),
                "wall_time_s": results.get("wall_time_s"),
            }
        ]


RECIPE = TransferRecipe()

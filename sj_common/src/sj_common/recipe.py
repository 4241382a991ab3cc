"""The recipe contract every plugin fills in, and the runner that trains and evaluates through it.

A :class:`Recipe` names its config dataclass and builds, from a parsed config:

* :meth:`Recipe.build_data` -> :class:`Data` (train / val / test and what the model must know of them:
  ``num_classes``, ``sequence_input``);
* :meth:`Recipe.build_model` -> the ``nn.Module`` the engine trains;
* :meth:`Recipe.build_step` -> the engine step function (``None``: plain classification).

The runner (:meth:`Recipe.train`, :meth:`Recipe.evaluate`, :func:`fit_model`) seeds the model
initialisation in one place, right before it calls ``build_model``, and hands the rest to
``sj_common.engine.fit``. Extra named stages (bkd's teacher, calib's convert / calibrate / sweep) are
:class:`Stage` objects that the shared command line (:func:`sj_common.cli.main`) turns into sub-commands.

From Python::

    from sj_calib.recipe import RECIPE
    cfg = RECIPE.config("mnist5k", {"train.epochs": 1, "train.out": "runs/x"})
    results = RECIPE.train(cfg)            # the engine's results dict (also in runs/x/results.json)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Assignment, UsageError, apply_assignments, parse, read_yaml, to_dict

if TYPE_CHECKING:  # torch is imported by the commands only (fast --help)
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["Data", "Flag", "Stage", "Recipe", "fit_model", "check_warmup", "with_train"]


@dataclass
class Data:
    """What a recipe's ``build_data`` returns: the splits and what the model must know of them.

    Attributes:
        train: the training set (items as the step function expects them).
        val: model-selection split (never the test set), or None.
        test: the held-out split the ``eval`` command reports, or None.
        num_classes: classes of the task.
        sequence_input: items are frame sequences ``[T, ...]`` rather than static images.
        train_sampler: the order training items are drawn in (``fit(train_sampler=...)``, e.g. a
            :class:`sj_common.data.ClassBalancedSampler`), or None: a seeded permutation per epoch.
        extra: anything else a recipe passes from data to model (e.g. the sensor size).
    """

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    num_classes: int
    sequence_input: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    train_sampler: Any = None


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one config key (its help shows the value the config will use).

    ``names``: the flag spellings (``("--T",)``); ``key``: the dotted config key (``"data.T"``);
    ``commands``: the sub-commands that take it; ``nargs="+"`` for lists; ``const`` for a flag that takes
    no value (``--baseline`` sets ``method.baseline`` to ``True``); ``choices`` to list the legal values.
    """

    names: tuple[str, ...]
    key: str
    help: str
    commands: tuple[str, ...] = ("train",)
    nargs: str | None = None
    const: Any = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Stage:
    """An extra sub-command: ``run(recipe, cfg, model, args) -> results`` on a loaded model (calib's sweep ...).

    ``needs_model``: the command loads a trained model (``--checkpoint`` or ``--from-reference``) first.
    """

    name: str
    help: str
    run: Callable[..., dict]
    needs_model: bool = True


def with_train(cfg: Any, **changes: Any) -> Any:
    """A copy of ``cfg`` with ``TrainConfig`` fields changed: ``with_train(cfg, out="runs/x", epochs=2)``."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


def check_warmup(tc: Any, label: str = "train") -> Any:
    """A TrainConfig whose warm-up is shorter than its run: a warm-up of ``>= epochs`` is cut to ``epochs // 2``
    with a warning (a run that is all warm-up never trains at the full learning rate)."""
    if tc.warmup_epochs and tc.warmup_epochs >= tc.epochs:
        short = tc.epochs // 2
        warnings.warn(
            f"{label}.warmup_epochs: {tc.warmup_epochs} warm-up epochs in a {tc.epochs}-epoch run; "
            f"shortened to {short}",
            stacklevel=2,
        )
        tc = dataclasses.replace(tc, warmup_epochs=short)
    return tc


def fit_model(
    build: Callable[[], nn.Module],
    data: Data,
    config: Any,
    *,
    step=None,
    extra_results: dict | None = None,
    prepare: Callable[[nn.Module], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Seed, build the model, train it with ``sj_common.engine.fit``; the one place a model's init is seeded.

    ``prepare(model)`` runs after the build (e.g. loading reference weights to fine-tune from). Returns
    ``(model, results)``; the model holds the last epoch's weights (``<out>/best.pt`` the best).
    """
    from .engine import fit, seed_everything

    config = check_warmup(config)
    seed_everything(config.seed)  # fit seeds the training that follows; this seeds the initialisation
    model = build()
    if prepare is not None:
        prepare(model)
    res = fit(
        model,
        data.train,
        data.val,
        data.test,
        config=config,
        step=step,
        extra_results=extra_results,
        train_sampler=data.train_sampler,
    )
    return model, res


class Recipe:
    """One plugin's run: config type, data, model, step, extra stages. Subclass and set the class attributes.

    Class attributes: ``prog`` (the console script, ``"sj-calib"``), ``package`` (holds ``configs/*.yaml``),
    ``description``, ``config_type`` (the dataclass; its ``train`` field is a ``TrainConfig``),
    ``default_config``, ``flags`` (:class:`Flag` list), ``stages`` (:class:`Stage` list).
    """

    prog: str = "sj"
    package: str = ""
    description: str = ""
    config_type: type = object
    default_config: str = "mnist5k"
    flags: Sequence[Flag] = ()
    stages: Sequence[Stage] = ()

    # ---- config ------------------------------------------------------------------------------------
    def default_out(self, config_name: str, raw: Mapping[str, Any]) -> str:
        """The run folder when neither ``--out`` nor the YAML's ``train.out`` gives one."""
        return f"runs/{self.package.removeprefix('sj_')}_{config_name}"

    def prepare_raw(self, raw: dict[str, Any], out: str) -> None:
        """Put the run folder into the raw config (after flags and ``--set``); bkd places two stages in it."""
        raw.setdefault("train", {})
        if raw["train"] is None:
            raw["train"] = {}
        raw["train"]["out"] = out

    def load_raw(self, name_or_path: str | Path) -> tuple[dict[str, Any], str]:
        """The YAML mapping of a config and where it came from."""
        return read_yaml(name_or_path, package=self.package)

    def resolve_out(self, name_or_path: str | Path, raw: Mapping[str, Any], out: str | None) -> str:
        if out:
            return str(out)
        train = raw.get("train") or {}
        if train.get("out"):
            return str(train["out"])
        return self.default_out(Path(str(name_or_path)).stem, raw)

    def parse_config(
        self,
        name_or_path: str | Path | None,
        assignments: Iterable[Assignment] = (),
        out: str | None = None,
        *,
        check: bool = True,
    ) -> tuple[Any, str]:
        """``(config, where)``: the YAML read, the assignments applied (checked against :attr:`config_type`),
        the run folder placed (``out``, else the YAML's ``train.out``, else :meth:`default_out`), parsed.
        Then :meth:`check` runs, unless ``check=False`` (the command line's ``--help``, which shows the
        values without importing the method's code; the command itself parses again with the checks)."""
        name_or_path = name_or_path or self.default_config
        raw, where = self.load_raw(name_or_path)
        raw, sources = apply_assignments(self.config_type, raw, assignments)
        self.prepare_raw(raw, self.resolve_out(name_or_path, raw, out))
        cfg = parse(self.config_type, raw, where=where, sources=sources)
        if check:
            self.check(cfg)
        return cfg, where

    def check(self, cfg: Any) -> None:
        """Checks that need the method's code (names of models, modes ...; raise ``ConfigError``); default
        none. Section ``__post_init__`` checks stay torch-free, so ``--help`` imports no torch."""

    def config(
        self,
        name_or_path: str | Path | None = None,
        overrides: Mapping[str, Any] | Iterable[Assignment] = (),
        *,
        out: str | None = None,
    ) -> Any:
        """Parse a config (packaged name or YAML file) with overrides ``{"train.epochs": 1}`` into its dataclass."""
        if isinstance(overrides, Mapping):
            overrides = [Assignment(k, v, f"override {k}={v!r}") for k, v in overrides.items()]
        return self.parse_config(name_or_path, overrides, out)[0]

    def from_dict(self, raw: Mapping[str, Any], where: str = "a saved config") -> Any:
        """A config from plain data, e.g. ``results.json``'s ``recipe.config`` (what :func:`to_dict` wrote)."""
        cfg = parse(self.config_type, raw, where=where)
        self.check(cfg)
        return cfg

    # ---- the contract ------------------------------------------------------------------------------
    def build_data(self, cfg: Any, *, data_root: str | None = None) -> Data:
        raise NotImplementedError

    def build_model(self, cfg: Any, data: Data) -> nn.Module:
        raise NotImplementedError

    def build_step(self, cfg: Any, data: Data):
        """The engine step (``None``: ``classification_step`` on ``(x, y)`` batches)."""
        return None

    def extra_results(self, cfg: Any, data: Data) -> dict[str, Any]:
        """Recorded in ``results.json`` beside the engine's results (default: the program and the whole config;
        the engine's own ``config`` key holds the TrainConfig)."""
        return {"recipe": {"prog": self.prog, "config": to_dict(cfg)}}

    def summary(self, cfg: Any, results: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows of a table the CLI prints after ``train``, beside the engine's own (default: none)."""
        return []

    def load_reference(self, model: nn.Module, path: str | Path, source: str | None = None) -> nn.Module:
        """Load a checkpoint published by the method's authors (``--from-reference PATH``) into ``model``.

        ``source`` names the checkpoint format when a method has several. Plugins override this; the default
        refuses with a usage error.
        """
        raise UsageError(
            f"--from-reference: {self.prog} cannot read the authors' checkpoints yet "
            f"(got {str(path)!r}{f', source {source!r}' if source else ''}); use --checkpoint with a best.pt "
            "of this package"
        )

    # ---- the runner --------------------------------------------------------------------------------
    def _prepare(self, reference: str | Path | None, source: str | None):
        if reference is None:
            return None
        return lambda model: self.load_reference(model, reference, source)

    def train(
        self,
        cfg: Any,
        *,
        data_root: str | None = None,
        reference: str | Path | None = None,
        reference_source: str | None = None,
    ) -> dict:
        """Build the data, seed, build the model (fine-tuned from ``reference`` when given), train it.

        Returns the engine's results dict (also written to ``<cfg.train.out>/results.json``).
        """
        data = self.build_data(cfg, data_root=data_root)
        _, res = fit_model(
            lambda: self.build_model(cfg, data),
            data,
            cfg.train,
            step=self.build_step(cfg, data),
            extra_results=self.extra_results(cfg, data),
            prepare=self._prepare(reference, reference_source),
        )
        return res

    def load_trained(
        self,
        cfg: Any,
        data: Data,
        *,
        checkpoint: str | Path | None = None,
        reference: str | Path | None = None,
        reference_source: str | None = None,
    ) -> nn.Module:
        """The config's model with trained weights: a ``best.pt`` of ``train`` or an authors' checkpoint."""
        from .engine import load_checkpoint, seed_everything

        if (checkpoint is None) == (reference is None):
            raise UsageError("--checkpoint / --from-reference: expected exactly one of them")
        seed_everything(cfg.train.seed)
        model = self.build_model(cfg, data)
        if reference is not None:
            self.load_reference(model, reference, reference_source)
        else:
            if not Path(checkpoint).is_file():
                raise UsageError(f"--checkpoint: no file {str(checkpoint)!r} (a best.pt written by train)")
            load_checkpoint(checkpoint, model)
        return model.eval()

    def evaluate(self, cfg: Any, model: nn.Module, data: Data, *, device: str | None = None) -> dict:
        """Accuracy of a trained ``model`` on the test split with the recipe's step (``{"acc1", "loss", ...}``)."""
        import torch

        from .engine import evaluate

        if data.test is None:
            raise UsageError(f"{self.prog} eval: the config's data has no test split")
        device = device or cfg.train.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device)
        return evaluate(
            model,
            data.test,
            step=self.build_step(cfg, data),
            device=device,
            batch_size=cfg.train.eval_batch_size or cfg.train.batch_size,
            config=cfg.train,
            progress=cfg.train.progress,
            desc="test",
        )

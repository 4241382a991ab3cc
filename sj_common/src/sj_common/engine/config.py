"""The engine's plain data types: the run configuration and what step functions receive and return.

Imports no torch (the tensor types are annotations only), so a command line can build its ``--help`` and
check a config from :class:`TrainConfig` without loading torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import torch
    from torch import nn

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "step", "none")


@dataclass
class TrainConfig:
    """Every knob of :func:`sj_common.engine.fit`; one YAML file per run holds these keys.

    ``batch_size`` is per process (under torchrun the global batch is ``batch_size * world_size``).
    The learning-rate schedule advances once per optimizer step: ``"cosine"`` decays to 0 over all
    steps, ``"step"`` multiplies by ``lr_gamma`` every ``lr_step_epochs`` epochs; both after
    ``warmup_epochs`` of linear warm-up.
    """

    out: str  # run folder: checkpoint.pt, best.pt, tb/, results.json
    epochs: int = 10
    batch_size: int = 64  # per process
    lr: float = 1e-3
    optimizer: str = "adamw"  # "sgd" | "adam" | "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "cosine"  # "cosine" (per step, to 0) | "step" | "none"
    warmup_epochs: int = 0
    amp: bool = True  # autocast + GradScaler, used only on CUDA
    seed: int = 0
    workers: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1"
    resume: bool = False  # continue exactly from out/checkpoint.pt when it exists
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    checkpoint_every_steps: int = 0  # 0 = at every epoch end only
    progress: bool = True  # tqdm on rank 0
    max_steps_per_epoch: int | None = None  # for smoke tests
    # Additions beyond the shared contract:
    lr_step_epochs: int = 30  # scheduler="step": decay period in epochs
    lr_gamma: float = 0.1  # scheduler="step": decay factor
    nesterov: bool = False  # optimizer="sgd"
    eval_batch_size: int | None = None  # None = batch_size
    find_unused_parameters: bool = False  # DDP: set when some parameters get no gradient in a step
    tensorboard: bool = True  # scalars under out/tb on rank 0
    deterministic: bool = False  # torch.use_deterministic_algorithms (CUDA); CPU runs are seeded anyway
    amp_dtype: str = "float16"  # "float16" (with GradScaler) | "bfloat16" (no scaler needed)
    # "none": weight decay on every parameter; "1d": none on parameters with ndim <= 1 (biases, norm weights,
    # per-step scalars such as sj_transfer's c_t): timm's param_groups_weight_decay convention
    no_weight_decay_on: str = "none"
    # None: lr as given; an int N: the optimizer's lr is lr * (batch_size * world_size) / N (timm's
    # "lr scaled by batch / 1024" with N = 1024)
    lr_reference_batch: int | None = None
    # BatchNorm statistics over the global batch under torchrun (SyncBatchNorm, SpikingJelly's step modes
    # kept; GPU runs only); a single process leaves BatchNorm as it is (a warning says so)
    sync_bn: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"TrainConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        if hasattr(self.out, "__fspath__"):  # PathLike -> str so the config stays JSON-serialisable
            self.out = str(self.out)
        if not isinstance(self.out, str) or not self.out:
            raise bad("out", "a non-empty folder path")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")
        for name in ("warmup_epochs", "workers", "checkpoint_every_steps", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise bad(name, "an integer >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"one of {SCHEDULERS}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < math.inf):
            raise bad("lr", "a finite float > 0")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise bad("max_steps_per_epoch", "None or an integer >= 1")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise bad("eval_batch_size", "None or an integer >= 1")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise bad("grad_clip", "None or a float > 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise bad("label_smoothing", "a float in [0, 1)")
        if self.lr_step_epochs < 1:
            raise bad("lr_step_epochs", "an integer >= 1")
        if self.no_weight_decay_on not in ("none", "1d"):
            raise bad("no_weight_decay_on", "'none' or '1d'")
        if self.lr_reference_batch is not None and (
            not isinstance(self.lr_reference_batch, int) or self.lr_reference_batch < 1
        ):
            raise bad("lr_reference_batch", "None or an integer >= 1")
        if not isinstance(self.sync_bn, bool):
            raise bad("sync_bn", "true or false")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise bad("amp_dtype", "'float16' or 'bfloat16'")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise bad("device", "'auto', 'cpu', 'cuda' or 'cuda:<index>'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclass
class StepContext:
    """What a step function or loss hook sees about where the run is."""

    epoch: int
    step: int  # global optimizer step (train) or batch index (eval)
    total_steps: int
    steps_per_epoch: int
    device: torch.device
    train: bool
    config: TrainConfig


@dataclass
class StepOutput:
    """What a step function returns: the loss to minimise and the logits/targets for accuracy."""

    loss: torch.Tensor | None  # scalar; None is fine in eval
    logits: torch.Tensor  # [B, num_classes]
    target: torch.Tensor  # [B] int64
    # extra scalars (TensorBoard + history): floats or, better, detached 0-dim tensors - a tensor is summed
    # on the device and read back once per epoch, while float(t) in a step function is a host sync per step
    logs: dict[str, float | torch.Tensor] = field(default_factory=dict)


StepFn = Callable[["nn.Module", Any, StepContext], StepOutput]
LossHook = Callable[
    ["nn.Module", Any, StepOutput, StepContext], Union["torch.Tensor", "dict[str, torch.Tensor]"]
]

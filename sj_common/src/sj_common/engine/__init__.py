"""One train/evaluate loop shared by sj_transfer, sj_bkd and sj_calib.

>>> from sj_common.engine import TrainConfig, fit, classification_step
>>> results = fit(model, train_set, val_set, test_set, config=TrainConfig(out="runs/x", epochs=2),
...               step=classification_step(sequence_input=True, loss="tet"))

Modules, each with one job: :mod:`.config` (TrainConfig, StepContext, StepOutput), :mod:`.steps`
(classification_step and the one TET loss), :mod:`.loop` (fit's epoch loop, evaluate),
:mod:`.checkpoint` (safe reads, atomic writes, RNG states, the Checkpointer and the resume policy),
:mod:`.meter` (device-side running sums), :mod:`.report` (progress, TensorBoard, results.json, versions,
text table), :mod:`.distributed` (torchrun, seeded sharding sampler), :mod:`.sync_bn` (SyncBatchNorm with
SpikingJelly's step modes, ``TrainConfig.sync_bn``), :mod:`.util` (unwrap, to_device).

Names are imported on first use (module ``__getattr__``, PEP 562): ``from sj_common.engine import
TrainConfig`` loads only the torch-free :mod:`.config`, so a command line's ``--help`` needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_LAZY = {
    "RESUME_MAY_CHANGE": "checkpoint",
    "CheckpointError": "checkpoint",
    "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "seed_everything": "checkpoint",
    "LossHook": "config",
    "StepContext": "config",
    "StepFn": "config",
    "StepOutput": "config",
    "TrainConfig": "config",
    "ShardedSampler": "distributed",
    "is_main_process": "distributed",
    "rank": "distributed",
    "world_size": "distributed",
    "LOG_EVERY_STEPS": "loop",
    "evaluate": "loop",
    "fit": "loop",
    "preserved_global_state": "loop",
    "format_table": "report",
    "package_versions": "report",
    "print_table": "report",
    "classification_step": "steps",
    "tet_loss": "steps",
    "SpikingSyncBatchNorm": "sync_bn",
    "convert_sync_batchnorm": "sync_bn",
    "to_device": "util",
    "unwrap": "util",
}

if TYPE_CHECKING:
    from .checkpoint import (
        RESUME_MAY_CHANGE,
        CheckpointError,
        atomic_save,
        load_checkpoint,
        read_checkpoint,
        seed_everything,
    )
    from .config import LossHook, StepContext, StepFn, StepOutput, TrainConfig
    from .distributed import ShardedSampler, is_main_process, rank, world_size
    from .loop import LOG_EVERY_STEPS, evaluate, fit, preserved_global_state
    from .report import format_table, package_versions, print_table
    from .steps import classification_step, tet_loss
    from .sync_bn import SpikingSyncBatchNorm, convert_sync_batchnorm
    from .util import to_device, unwrap


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "TrainConfig",
    "StepContext",
    "StepOutput",
    "StepFn",
    "LossHook",
    "fit",
    "evaluate",
    "classification_step",
    "unwrap",
    "to_device",
    "is_main_process",
    "world_size",
    "rank",
    "load_checkpoint",
    "read_checkpoint",
    "CheckpointError",
    "RESUME_MAY_CHANGE",
    "preserved_global_state",
    "LOG_EVERY_STEPS",
    "tet_loss",
    "atomic_save",
    "seed_everything",
    "ShardedSampler",
    "package_versions",
    "format_table",
    "print_table",
    "SpikingSyncBatchNorm",
    "convert_sync_batchnorm",
]

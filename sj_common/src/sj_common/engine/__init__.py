"""One train/evaluate loop shared by sj_transfer, sj_bkd and sj_calib.

>>> from sj_common.engine import TrainConfig, fit, classification_step
>>> results = fit(model, train_set, val_set, test_set, config=TrainConfig(out="runs/x", epochs=2),
...               step=classification_step(sequence_input=True, loss="tet"))

Modules: :mod:`.config` (TrainConfig, StepContext, StepOutput), :mod:`.loop` (fit, evaluate, step
functions), :mod:`.checkpoint` (atomic save, RNG states, load_checkpoint), :mod:`.distributed` (torchrun,
seeded sharding sampler), :mod:`.report` (versions, text table).
"""

from .checkpoint import atomic_save, load_checkpoint, seed_everything
from .config import LossHook, StepContext, StepFn, StepOutput, TrainConfig
from .distributed import ShardedSampler, is_main_process, rank, world_size
from .loop import classification_step, evaluate, fit, to_device, unwrap
from .report import format_table, package_versions, print_table

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
    "atomic_save",
    "seed_everything",
    "ShardedSampler",
    "package_versions",
    "format_table",
    "print_table",
]

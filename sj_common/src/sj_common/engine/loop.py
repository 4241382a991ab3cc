"""The one train/evaluate loop of the sj-plugins, in the style of torchvision's reference script.

A method plugs in through a *step function* (batch -> loss, logits, target) and *loss hooks* (extra
loss terms); everything else - device moves, ``reset_net`` after every batch, AMP, DDP, atomic
checkpoints with exact resume, tqdm, TensorBoard, ``results.json`` - is done here once, by parts with
one job each: :class:`~.checkpoint.Checkpointer` (checkpoint.pt/best.pt, resume policy, finite
weights), :class:`~.report.RunReport` (progress, TensorBoard, results.json, table),
:class:`~.meter.Meter` (device-side sums) and :class:`_Trainer` (the epoch loop).

The training step never reads a value back to the host: loss, hits and logs accumulate on the device;
the class range of the targets is checked on the first batch and by a device-side min/max at epoch
end; the loss is checked for NaN/inf every :data:`LOG_EVERY_STEPS` steps, before every checkpoint and
at epoch end (a non-finite loss stops the run naming its first step, before anything non-finite is
saved). Only AMP's float16 GradScaler syncs per step (it must know whether to skip the step).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..compat import set_fastest_backend
from ..metrics import check_targets
from . import distributed as D
from .checkpoint import BEST, CHECKPOINT, RESULTS, Checkpointer, load_checkpoint, seed_everything
from .config import LossHook, StepContext, StepFn, StepOutput, TrainConfig
from .meter import Meter
from .report import RunReport, package_versions
from .steps import classification_step
from .sync_bn import apply_sync_bn
from .util import autocast, check_dataset, make_loader, to_device, unwrap

#: Steps between the training loop's host reads (progress postfix, TensorBoard loss, NaN check).
LOG_EVERY_STEPS = 50


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset_or_loader: Dataset | DataLoader,
    *,
    step: StepFn | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 256,
    collate_fn=None,
    workers: int = 0,
    amp: bool = False,
    config: TrainConfig | None = None,
    progress: bool = False,
    desc: str = "eval",
    max_batches: int | None = None,
) -> dict[str, float]:
    """Accuracy and loss of ``model`` on a data set: ``{"acc1", "acc5", "loss", "n", ...step logs}``.

    ``model`` is put in eval mode and reset (``functional.reset_net``) after each batch. Under
    torchrun a data set (not a loader) is split over the ranks without repetition and the counts are
    summed, so every rank returns the same numbers; a DataLoader is evaluated as given, per process,
    without summing. ``device`` defaults to the model's device (the model is not moved). A static
    ANN ``[B, ...] -> [B, K]`` is evaluated with the default step (``classification_step(False)``).
    ``max_batches`` stops after that many batches (per process). Class indices outside the logits'
    range raise ``ValueError``.
    """
    step = step or classification_step(False)
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"max_batches: expected None or an integer >= 1, got {max_batches!r}")
    net = unwrap(model)  # no DDP collectives in eval: ranks may see different batch counts
    if device is None:
        tensors = [*net.parameters(), *net.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
    device = torch.device(device)
    if isinstance(dataset_or_loader, DataLoader):
        loader = dataset_or_loader
    else:
        check_dataset(dataset_or_loader, "dataset_or_loader")
        sampler = D.ShardedSampler(
            len(dataset_or_loader), shuffle=False, rank=D.rank(), num_replicas=D.world_size(), pad=False
        )
        loader = make_loader(dataset_or_loader, batch_size, sampler, workers, collate_fn, device)
    config = config or TrainConfig(out=".", progress=False)
    was_training = net.training
    net.eval()
    functional.reset_net(net)
    meter = Meter()
    from tqdm.auto import tqdm

    batches = loader if max_batches is None else itertools.islice(loader, max_batches)
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    bar = tqdm(batches, total=total, desc=desc, leave=False, disable=not (progress and D.is_main_process()))
    for i, batch in enumerate(bar):
        batch = to_device(batch, device)
        ctx = StepContext(
            epoch=0,
            step=i,
            total_steps=total,
            steps_per_epoch=total,
            device=device,
            train=False,
            config=config,
        )
        with autocast(device, amp, config.amp_dtype):
            out = step(net, batch, ctx)
        meter.update(out, int(out.target.shape[0]))
        functional.reset_net(net)
    net.train(was_training)
    return meter.result(device, reduce=not isinstance(dataset_or_loader, DataLoader))


# ----------------------------------------------------------------------------------------------------
# Training parts
# ----------------------------------------------------------------------------------------------------


def _optimizer(params, cfg: TrainConfig, world: int = 1) -> torch.optim.Optimizer:
    lr = cfg.lr
    if cfg.lr_reference_batch is not None:
        lr = cfg.lr * cfg.batch_size * world / cfg.lr_reference_batch
    if cfg.no_weight_decay_on == "1d" and cfg.weight_decay:
        decay = [p for p in params if p.ndim > 1]
        params = [
            {"params": decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def _scheduler(opt, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """One LambdaLR stepped after every optimizer step: warm-up, then cosine to 0 / step decay / flat."""
    total = cfg.epochs * steps_per_epoch
    warm = min(cfg.warmup_epochs * steps_per_epoch, total)

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        if cfg.scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * (s - warm) / max(total - warm, 1)))
        if cfg.scheduler == "step":
            return cfg.lr_gamma ** ((s // steps_per_epoch) // cfg.lr_step_epochs)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _add_hook_terms(model, batch, out: StepOutput, ctx: StepContext, hooks: Sequence[LossHook]):
    """Total loss = step loss + every hook's term(s); returns (loss, {name: detached 0-dim tensor})."""
    if out.loss is None:
        raise ValueError(
            "step function: expected StepOutput.loss to be a scalar tensor in training, got None"
        )
    loss, logs = out.loss, {}
    for i, hook in enumerate(hooks):
        terms = hook(model, batch, out, ctx)
        if isinstance(terms, torch.Tensor):
            terms = {f"hook{i}": terms}
        if not isinstance(terms, Mapping):
            raise TypeError(
                f"loss_hooks[{i}]: expected a scalar tensor or a dict of them, got {type(terms).__name__}"
            )
        for name, t in terms.items():
            if not isinstance(t, torch.Tensor) or t.numel() != 1:
                raise ValueError(f"loss_hooks[{i}] term {name!r}: expected a scalar tensor, got {t!r:.80}")
            loss = loss + t.reshape(())
            logs[f"loss_{name}"] = t.detach().reshape(())
    return loss, logs


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore, on exit, the process-wide settings :func:`fit` changes: the Python/NumPy/torch (and
    already initialised CUDA) RNG states, ``torch.use_deterministic_algorithms``, ``cudnn.benchmark``,
    ``cudnn.deterministic`` and the current CUDA device. (A torchrun process group that ``fit`` joins
    stays, by design: later ``fit`` calls in the process reuse it.)"""
    det, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    bench, cudnn_det = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_on = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda_rng = torch.cuda.get_rng_state_all() if cuda_on else None
    cuda_dev = torch.cuda.current_device() if cuda_on else None
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = bench, cudnn_det
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
            torch.cuda.set_device(cuda_dev)


class _Trainer:
    """The epoch loop of one :func:`fit` call; checkpoints and reporting are delegated."""

    def __init__(
        self, model, train_set, val_set, test_set, cfg, step, eval_step, loss_hooks, collate_fn, train_sampler
    ):
        self.t0 = time.time()
        self.cfg, self.step_fn, self.eval_step, self.hooks = cfg, step, eval_step, tuple(loss_hooks)
        self.train_set, self.val_set, self.test_set, self.collate_fn = (
            train_set,
            val_set,
            test_set,
            collate_fn,
        )
        self.out_dir = Path(cfg.out)

        self.device = D.resolve_device(cfg.device)
        distributed = D.init_distributed(self.device)
        self.rank, self.world, self.main = D.rank(), D.world_size(), D.is_main_process()
        seed_everything(cfg.seed + self.rank)  # dropout etc. differ per rank; DDP broadcasts rank 0's weights
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.use_amp = cfg.amp and self.device.type == "cuda"

        self.net = apply_sync_bn(unwrap(model).to(self.device), cfg.sync_bn, distributed, self.device)
        set_fastest_backend(self.net, self.device)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model: expected at least one parameter with requires_grad=True, got none")
        self.model: nn.Module = self.net
        if distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                self.net, device_ids=ids, find_unused_parameters=cfg.find_unused_parameters
            )

        if train_sampler is None:  # (not `or`: a sampler's truth value is its length)
            train_sampler = D.ShardedSampler(len(train_set), seed=cfg.seed)
        self.sampler = train_sampler
        per_rank = math.ceil(self.sampler.num_items / self.world)
        self.steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
        if cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_steps_per_epoch)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.optimizer = _optimizer(self.params, cfg, self.world)
        self.scheduler = _scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.use_amp and cfg.amp_dtype == "float16"
        )

        self.state: dict[str, Any] = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "best_val_acc1": None,
            "history": [],
            "meter": {},
            "resumes": [],
        }
        self.previous_s = 0.0  # wall time of the runs this one resumes
        self.ckpt = Checkpointer(self.out_dir, self.net, self.optimizer, self.scheduler, self.scaler, cfg)
        self.ckpt.preflight()
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.previous_s = self.ckpt.resume(self.state, self.device) or 0.0
        self.report = RunReport(
            self.out_dir,
            main=self.main,
            progress=cfg.progress,
            tensorboard=cfg.tensorboard,
            epochs=cfg.epochs,
            purge_step=self.state["global_step"],
        )
        self.targets_checked = False
        self._first_bad = torch.full((), -1, dtype=torch.long, device=self.device)  # first non-finite step
        self._interval_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self._interval_steps = 0

    def elapsed(self) -> float:
        return self.previous_s + time.time() - self.t0

    def run_eval(self, dataset) -> dict:
        cfg = self.cfg
        return evaluate(
            self.model,
            dataset,
            step=self.eval_step,
            device=self.device,
            batch_size=cfg.eval_batch_size or cfg.batch_size,
            collate_fn=self.collate_fn,
            workers=cfg.workers,
            amp=self.use_amp,
            config=cfg,
        )

    # --- the loss check: device-side every step, read back at intervals -----------------------------
    def _track_loss(self, loss: torch.Tensor, global_step: int) -> None:
        loss = loss.detach()
        bad = ~torch.isfinite(loss) & (self._first_bad < 0)
        self._first_bad = torch.where(bad, torch.full_like(self._first_bad, global_step), self._first_bad)
        self._interval_loss += loss.double()
        self._interval_steps += 1

    def check_loss(self, epoch: int) -> None:
        """One host read: stop (on every rank) when a step's loss was NaN/inf since the start."""
        first = int(self._first_bad)
        flags = D.all_reduce_sum([1.0 if first >= 0 else 0.0], self.device)
        if flags[0] > 0:
            where = f"epoch {epoch + 1}, step {first + 1}" if first >= 0 else "another rank"
            kept = self.ckpt.last_saved_step
            raise FloatingPointError(
                f"loss is not finite (NaN or inf), first at {where} (steps count from 1): training stopped; "
                + (
                    f"{self.ckpt.path} holds the last finite state (after step {kept})"
                    if kept is not None
                    else f"nothing was saved to {self.ckpt.path}"
                )
            )

    def _log(self, epoch: int) -> None:
        mean = float(self._interval_loss) / max(self._interval_steps, 1)  # the one host read of the interval
        self.check_loss(epoch)
        self.report.log(self.state["global_step"], mean, self.scheduler.get_last_lr()[0])
        self._interval_loss.zero_()
        self._interval_steps = 0

    def save(self, epoch: int) -> None:
        self.check_loss(epoch)
        where = f"epoch {epoch + 1}, step {self.state['global_step']}"
        self.ckpt.save(self.state, self.elapsed(), where)

    # --- one optimizer step -----------------------------------------------------------------------
    def train_step(self, batch, epoch: int, meter: Meter) -> None:
        cfg, st = self.cfg, self.state
        batch = to_device(batch, self.device)
        ctx = StepContext(
            epoch, st["global_step"], self.total_steps, self.steps_per_epoch, self.device, True, cfg
        )
        with autocast(self.device, self.use_amp, cfg.amp_dtype):
            out = self.step_fn(self.model, batch, ctx)
            loss, hook_logs = _add_hook_terms(self.model, batch, out, ctx, self.hooks)
        if not self.targets_checked:  # once per run; later batches: device-side min/max in the meter
            check_targets(out.target, out.logits.shape[-1], "target (class indices of the training batches)")
            self.targets_checked = True
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        functional.reset_net(self.net)
        self._track_loss(loss, st["global_step"])
        meter.update(out, int(out.target.shape[0]), {**hook_logs, "loss_total": loss.detach()})
        st["global_step"] += 1

    # --- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> None:
        cfg, st = self.cfg, self.state
        start = st["step_in_epoch"]
        sampler = self.sampler.sharded(
            epoch=epoch, rank=self.rank, num_replicas=self.world, start=start * cfg.batch_size
        )
        set_epoch = getattr(self.train_set, "set_epoch", None)
        if callable(set_epoch):  # per-epoch random draws of the data set (before the workers copy it)
            set_epoch(epoch)
        gen = torch.Generator().manual_seed(D.loader_seed(cfg.seed, epoch, self.rank))
        loader = make_loader(
            self.train_set, cfg.batch_size, sampler, cfg.workers, self.collate_fn, self.device, gen
        )
        meter = Meter(st["meter"])
        self.model.train()
        self.report.start_epoch(epoch, self.steps_per_epoch, start)
        # islice: never fetch a batch past max_steps_per_epoch (a fetch may consume RNG)
        for i, batch in enumerate(itertools.islice(loader, self.steps_per_epoch - start), start=start):
            self.train_step(batch, epoch, meter)
            st["step_in_epoch"] = i + 1
            self.report.step()
            if self._interval_steps >= LOG_EVERY_STEPS:
                self._log(epoch)
            if cfg.checkpoint_every_steps and st["global_step"] % cfg.checkpoint_every_steps == 0:
                st["meter"] = meter.sums()
                self.save(epoch)
        if self._interval_steps:
            self._log(epoch)

        row = {"epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0]}
        row.update({f"train_{k}": v for k, v in meter.result(self.device).items()})
        if self.val_set is not None:
            val = self.run_eval(self.val_set)
            row.update({f"val_{k}": v for k, v in val.items()})
            if st["best_val_acc1"] is None or val["acc1"] > st["best_val_acc1"]:
                st["best_val_acc1"] = val["acc1"]
                row["best"] = True
                self.ckpt.save_best(epoch + 1, val["acc1"])
        st["history"].append(row)
        self.report.end_epoch(row)
        st.update(epoch=epoch + 1, step_in_epoch=0, meter={})
        self.save(epoch)

    # --- the whole run ------------------------------------------------------------------------------
    def run(self, extra_results: Mapping[str, Any] | None) -> dict[str, Any]:
        try:
            functional.reset_net(self.net)
            for epoch in range(self.state["epoch"], self.cfg.epochs):
                self.train_epoch(epoch)
            D.barrier()  # best.pt is complete on disk before anybody reads it
            if self.val_set is not None and self.ckpt.best_path.is_file():
                load_checkpoint(self.ckpt.best_path, self.net, map_location=self.device)
            st = self.state
            results: dict[str, Any] = {
                "best_val_acc1": st["best_val_acc1"],
                "test_acc1": None,
                "test_acc5": None,
            }
            if self.test_set is not None:
                test = self.run_eval(self.test_set)
                results.update(test_acc1=test["acc1"], test_acc5=test["acc5"], test_loss=test["loss"])
            results.update(
                history=st["history"],
                wall_time_s=self.elapsed(),
                config=self.cfg.to_dict(),
                versions=package_versions(),
                seed=self.cfg.seed,
                world_size=self.world,
                device=str(self.device),
                amp=self.use_amp,
                steps=st["global_step"],
                resumes=st["resumes"],
                **(extra_results or {}),
            )
            self.report.finish(results, self.out_dir / RESULTS)
            return results
        finally:
            self.report.close()


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    test_set: Dataset | None = None,
    *,
    config: TrainConfig,
    step: StepFn | None = None,
    eval_step: StepFn | None = None,
    loss_hooks: Sequence[LossHook] = (),
    collate_fn=None,
    extra_results: dict | None = None,
    train_sampler: D.ShardedSampler | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``train_set``, pick the best epoch on ``val_set``, test it on ``test_set``.

    ``model`` must hold every trainable parameter (wrap model, heads and learnable loss parameters in
    one ``nn.Module``); step functions must call ``model(...)`` so DDP sees the forward. Writes
    ``checkpoint.pt`` (every epoch and every ``checkpoint_every_steps``), ``best.pt`` (best val top-1),
    ``tb/`` and ``results.json`` to ``config.out`` on rank 0, and returns ``{"best_val_acc1",
    "test_acc1", "test_acc5", "history", "wall_time_s", "config", "versions", "seed", "resumes",
    ...extra_results}`` (accuracies in %). With ``config.resume`` the run continues exactly where
    ``checkpoint.pt`` left off: same weights as an uninterrupted run (on CPU; a mid-epoch resume with
    ``workers > 0`` re-seeds the workers, so random transforms drawn from a worker's RNG are then not
    repeated; draws that are a function of ``(seed, epoch, index)``, as the sampler's and
    :class:`sj_common.data.PairedStaticEvent`'s, are). What a resume may change is the policy in
    :mod:`sj_common.engine.checkpoint`; a checkpoint that cannot be used is refused before any training.

    Sampling: each epoch's order is a function of ``(seed, epoch)``, sharded over the ranks
    (:class:`~sj_common.engine.ShardedSampler`: a seeded permutation; ``train_sampler`` replaces it by
    another draw, e.g. :class:`sj_common.data.ClassBalancedSampler`; its length sets the steps per
    epoch). ``train_set.set_epoch(epoch)`` is called before every epoch when the data set has it (stateless
    per-epoch draws such as :class:`sj_common.data.PairedStaticEvent`'s partners). The DataLoader's workers
    are seeded by ``(seed, epoch, rank)`` (:func:`~sj_common.engine.distributed.loader_seed`), so random
    transforms in workers differ between ranks.

    Faults: a NaN/inf loss stops the run (``FloatingPointError`` naming its first step) and
    non-finite weights are never saved, so ``checkpoint.pt`` keeps the last finite state.

    ``fit`` seeds the global RNGs with ``config.seed + rank`` for training and restores every
    process-wide setting it changes when it returns or raises (:func:`preserved_global_state`); seed
    the model's initialisation yourself before building it (:func:`seed_everything`).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    step = step or classification_step(False)
    eval_step = eval_step or step
    check_dataset(train_set, "train_set")
    if train_sampler is not None:
        if not isinstance(train_sampler, D.ShardedSampler):
            raise TypeError(
                "train_sampler: expected a ShardedSampler (or a subclass such as "
                f"sj_common.data.ClassBalancedSampler), got {type(train_sampler).__name__}"
            )
        train_sampler.check_fits(len(train_set), "train_set")
    for name, ds in (("val_set", val_set), ("test_set", test_set)):
        if ds is not None:
            check_dataset(ds, name)
    with preserved_global_state():
        trainer = _Trainer(
            model,
            train_set,
            val_set,
            test_set,
            config,
            step,
            eval_step,
            loss_hooks,
            collate_fn,
            train_sampler,
        )
        return trainer.run(extra_results)


__all__ = [
    "unwrap",
    "classification_step",
    "evaluate",
    "fit",
    "to_device",
    "preserved_global_state",
    "LOG_EVERY_STEPS",
    "CHECKPOINT",
    "BEST",
    "RESULTS",
]

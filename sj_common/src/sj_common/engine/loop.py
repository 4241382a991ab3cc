"""The one train/evaluate loop of the sj-plugins, in the style of torchvision's reference script.

A method plugs in through a *step function* (batch -> loss, logits, target) and *loss hooks* (extra
loss terms); everything else - device moves, ``reset_net`` after every batch, AMP, DDP, atomic
checkpoints with exact resume, tqdm, TensorBoard, ``results.json`` - is done here once.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..compat import set_fastest_backend
from ..metrics import topk_correct
from . import distributed as D
from .checkpoint import (
    atomic_save,
    atomic_write_json,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from .config import LossHook, StepContext, StepFn, StepOutput, TrainConfig
from .report import package_versions, print_table

CHECKPOINT, BEST, RESULTS = "checkpoint.pt", "best.pt", "results.json"


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP (or DataParallel) wrapper; ``model`` itself otherwise."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


# ----------------------------------------------------------------------------------------------------
# Step functions
# ----------------------------------------------------------------------------------------------------


def classification_step(sequence_input: bool, loss: str = "ce") -> StepFn:
    """A step function for ``(x, y)`` batches.

    ``sequence_input=True``: ``x`` is ``[B, T, ...]`` (as data loaders stack it) and is transposed to
    ``[T, B, ...]``; the model returns ``[T, B, C]``; ``logits`` are the mean over ``T``; ``loss="ce"``
    is the cross-entropy of that mean, ``loss="tet"`` the mean over ``t`` of the per-step
    cross-entropies (TET). ``sequence_input=False``: ``x [B, ...]`` -> model -> ``[B, C]`` (only
    ``"ce"``). Label smoothing comes from ``ctx.config.label_smoothing``.
    """
    if loss not in ("ce", "tet"):
        raise ValueError(f"loss: expected 'ce' or 'tet', got {loss!r}")
    if loss == "tet" and not sequence_input:
        raise ValueError("loss='tet' needs per-step outputs: expected sequence_input=True, got False")

    def step(model: nn.Module, batch: Any, ctx: StepContext) -> StepOutput:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"batch: expected an (x, y) pair, got {type(batch).__name__}")
        x, y = batch
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype.is_floating_point:
            got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y: expected a [B] tensor of integer class indices, got {got}")
        y = y.long()
        if sequence_input and x.dim() < 3:
            raise ValueError(f"x: expected [B, T, ...] (sequence_input=True), got shape {tuple(x.shape)}")
        smoothing = ctx.config.label_smoothing if ctx.train else 0.0
        if sequence_input:
            out = model(x.transpose(0, 1).contiguous())
            T, B = x.shape[1], x.shape[0]
            if out.dim() != 3 or out.shape[0] != T or out.shape[1] != B:
                raise ValueError(f"model output: expected [T, B, C] = [{T}, {B}, C], got {tuple(out.shape)}")
            logits = out.mean(0)
            if loss == "tet":
                per_step = F.cross_entropy(out.flatten(0, 1).float(), y.repeat(T), label_smoothing=smoothing)
                value = per_step  # mean over (t, b) == mean over t of the per-step batch means
            else:
                value = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        else:
            out = model(x)
            if out.dim() != 2 or out.shape[0] != x.shape[0]:
                raise ValueError(f"model output: expected [B, C] = [{x.shape[0]}, C], got {tuple(out.shape)}")
            logits = out
            value = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        return StepOutput(loss=value, logits=logits, target=y)

    return step


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) tuples, lists and dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class _Meter:
    """Sums over batches of loss, top-1/top-5 hits, sample count and the extra logs."""

    def __init__(self, state: dict[str, float] | None = None) -> None:
        self.sums: dict[str, float] = dict(state or {})

    def update(self, out: StepOutput, n: int, extra: Mapping[str, float] = ()) -> None:
        c1, c5 = topk_correct(out.logits.detach().float(), out.target, (1, 5))
        add = {"n": n, "correct1": c1, "correct5": c5}
        if out.loss is not None:
            add["loss"] = float(out.loss.detach()) * n
        for k, v in {**out.logs, **dict(extra)}.items():
            add[f"log/{k}"] = float(v) * n
        for k, v in add.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def result(self, device: torch.device, reduce: bool = True) -> dict[str, float]:
        keys = sorted(self.sums)
        values = [self.sums[k] for k in keys]
        sums = dict(zip(keys, D.all_reduce_sum(values, device) if reduce else values))
        n = max(sums.get("n", 0.0), 1.0)
        res = {"acc1": 100.0 * sums.get("correct1", 0.0) / n, "acc5": 100.0 * sums.get("correct5", 0.0) / n}
        res["loss"] = sums["loss"] / n if "loss" in sums else None
        res.update({k[4:]: v / n for k, v in sums.items() if k.startswith("log/")})
        res["n"] = int(sums.get("n", 0))
        return res


def _loader(data, batch_size, sampler, workers, collate_fn, device, generator=None) -> DataLoader:
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        generator=generator,  # worker seeds from here, not from the global RNG (keeps resume exact)
        persistent_workers=False,
    )


def _check_dataset(data, name: str) -> None:
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(
            f"{name}: expected a map-style torch Dataset (with __len__), got {type(data).__name__}"
        )
    if len(data) == 0:
        raise ValueError(f"{name}: expected a non-empty data set, got length 0")


def _autocast(device: torch.device, enabled: bool, dtype: str = "float16"):
    on = enabled and device.type == "cuda"  # AMP on CUDA only; CPU runs stay float32 (and exact)
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype), enabled=on)


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
) -> dict[str, float]:
    """Accuracy and loss of ``model`` on a data set: ``{"acc1", "acc5", "loss", "n", ...step logs}``.

    ``model`` is put in eval mode and reset (``functional.reset_net``) after each batch. Under
    torchrun a data set (not a loader) is split over the ranks without repetition and the counts are
    summed, so every rank returns the same numbers; a DataLoader is evaluated as given, per process,
    without summing. ``device`` defaults to the model's device.
    """
    step = step or classification_step(False)
    net = unwrap(model)  # no DDP collectives in eval: ranks may see different batch counts
    if device is None:
        tensors = [*net.parameters(), *net.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
    device = torch.device(device)
    if isinstance(dataset_or_loader, DataLoader):
        loader = dataset_or_loader
    else:
        _check_dataset(dataset_or_loader, "dataset_or_loader")
        sampler = D.ShardedSampler(
            len(dataset_or_loader), shuffle=False, rank=D.rank(), num_replicas=D.world_size(), pad=False
        )
        loader = _loader(dataset_or_loader, batch_size, sampler, workers, collate_fn, device)
    config = config or TrainConfig(out=".", progress=False)
    was_training = net.training
    net.eval()
    functional.reset_net(net)
    meter = _Meter()
    from tqdm.auto import tqdm

    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and D.is_main_process()))
    for i, batch in enumerate(bar):
        batch = to_device(batch, device)
        ctx = StepContext(
            epoch=0,
            step=i,
            total_steps=len(loader),
            steps_per_epoch=len(loader),
            device=device,
            train=False,
            config=config,
        )
        with _autocast(device, amp, config.amp_dtype):
            out = step(net, batch, ctx)
        meter.update(out, int(out.target.shape[0]))
        functional.reset_net(net)
    net.train(was_training)
    return meter.result(device, reduce=not isinstance(dataset_or_loader, DataLoader))


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def _optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


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
    """Total loss = step loss + every hook's term(s); returns (loss, {name: value} for the logs)."""
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
            logs[f"loss_{name}"] = float(t.detach())
    return loss, logs


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
) -> dict[str, Any]:
    """Train ``model`` on ``train_set``, pick the best epoch on ``val_set``, test it on ``test_set``.

    ``model`` must hold every trainable parameter (wrap model, heads and learnable loss parameters in
    one ``nn.Module``); step functions must call ``model(...)`` so DDP sees the forward. Writes
    ``checkpoint.pt`` (every epoch and every ``checkpoint_every_steps``), ``best.pt`` (best val top-1),
    ``tb/`` and ``results.json`` to ``config.out`` on rank 0, and returns ``{"best_val_acc1",
    "test_acc1", "test_acc5", "history", "wall_time_s", "config", "versions", "seed", ...extra_results}``
    (accuracies in %). With ``config.resume`` the run continues exactly where ``checkpoint.pt`` left off:
    same weights as an uninterrupted run (on CPU; a mid-epoch resume with ``workers > 0`` and random
    data transforms re-seeds the workers, so only the sample order is then exact).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    cfg = config
    step = step or classification_step(False)
    eval_step = eval_step or step
    _check_dataset(train_set, "train_set")
    for name, ds in (("val_set", val_set), ("test_set", test_set)):
        if ds is not None:
            _check_dataset(ds, name)
    t0 = time.time()
    out_dir = Path(cfg.out)

    # --- devices, processes, seeds -----------------------------------------------------------------
    device = D.resolve_device(cfg.device)
    distributed = D.init_distributed(device)
    rank, world, main = D.rank(), D.world_size(), D.is_main_process()
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed + rank)  # dropout etc. differ per rank; DDP broadcasts rank 0's weights
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    use_amp = cfg.amp and device.type == "cuda"

    net = unwrap(model).to(device)
    set_fastest_backend(net, device)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: expected at least one parameter with requires_grad=True, got none")
    ddp_model: nn.Module = net
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        ddp_model = nn.parallel.DistributedDataParallel(
            net, device_ids=ids, find_unused_parameters=cfg.find_unused_parameters
        )

    def run_eval(dataset) -> dict:
        return evaluate(
            ddp_model,
            dataset,
            step=eval_step,
            device=device,
            batch_size=cfg.eval_batch_size or cfg.batch_size,
            collate_fn=collate_fn,
            workers=cfg.workers,
            amp=use_amp,
            config=cfg,
        )

    per_rank = math.ceil(len(train_set) / world)
    steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total_steps = cfg.epochs * steps_per_epoch
    optimizer = _optimizer(params, cfg)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and cfg.amp_dtype == "float16")

    # --- state that a checkpoint carries ----------------------------------------------------------
    previous_s = 0.0  # wall time of the runs this one resumes

    def elapsed() -> float:
        return previous_s + time.time() - t0

    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "best_val_acc1": None,
        "history": [],
        "meter": {},
    }

    def save(path: Path) -> None:
        # Per-rank parts (RNG states, partial-epoch sums) are gathered: every rank must call save().
        parts = D.all_gather_object({"rng": rng_state(), "meter": state["meter"]})
        if main:
            ckpt = {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "config": cfg.to_dict(),
                "world_size": world,
                "per_rank": parts,
                **state,
                "elapsed_s": elapsed(),
            }
            atomic_save(ckpt, path)

    ckpt_path = out_dir / CHECKPOINT
    if cfg.resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path, net, map_location=device)
        changed = {
            k: (v, getattr(cfg, k))
            for k, v in ckpt.get("config", {}).items()
            if k not in ("resume", "progress", "out", "tensorboard") and getattr(cfg, k, v) != v
        }
        if changed and main:  # e.g. another batch_size shifts the samples a mid-epoch resume skips
            print(f"resume: config differs from the checkpoint's (was, now): {changed}", flush=True)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        state.update({k: ckpt[k] for k in state})
        previous_s = ckpt.get("elapsed_s", 0.0)
        parts = ckpt.get("per_rank") or []
        if len(parts) == world:
            set_rng_state(parts[rank]["rng"])
            state["meter"] = parts[rank]["meter"]
        elif main:
            print(
                f"resume: checkpoint was written by {ckpt.get('world_size')} processes, now {world}: "
                "RNG states not restored, the run continues but not bit-exactly",
                flush=True,
            )
        if main:
            print(f"resumed {ckpt_path} at epoch {state['epoch']}, step {state['global_step']}", flush=True)
    elif cfg.resume and main:
        print(f"resume: no {ckpt_path} yet, starting from scratch", flush=True)

    writer = None
    if main and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"), purge_step=state["global_step"] or None)
    from tqdm.auto import tqdm

    # --- the loop ---------------------------------------------------------------------------------
    functional.reset_net(net)
    for epoch in range(state["epoch"], cfg.epochs):
        start = state["step_in_epoch"]
        sampler = D.ShardedSampler(
            len(train_set),
            seed=cfg.seed,
            epoch=epoch,
            rank=rank,
            num_replicas=world,
            start=start * cfg.batch_size,
        )
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        loader = _loader(train_set, cfg.batch_size, sampler, cfg.workers, collate_fn, device, gen)
        meter = _Meter(state["meter"])
        ddp_model.train()
        bar = tqdm(
            total=steps_per_epoch,
            initial=start,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not (main and cfg.progress),
            dynamic_ncols=True,
        )
        # islice: never fetch a batch past max_steps_per_epoch (a fetch may consume RNG)
        for i, batch in enumerate(itertools.islice(loader, steps_per_epoch - start), start=start):
            batch = to_device(batch, device)
            ctx = StepContext(epoch, state["global_step"], total_steps, steps_per_epoch, device, True, cfg)
            with _autocast(device, use_amp, cfg.amp_dtype):
                out = step(ddp_model, batch, ctx)
                loss, hook_logs = _add_hook_terms(ddp_model, batch, out, ctx, loss_hooks)
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(
                    f"loss is {float(loss)} at epoch {epoch}, step {state['global_step']}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            functional.reset_net(net)

            loss_value = float(loss.detach())
            meter.update(out, int(out.target.shape[0]), {**hook_logs, "loss_total": loss_value})
            state["global_step"] += 1
            state["step_in_epoch"] = i + 1
            state["meter"] = meter.sums
            bar.update(1)
            if main:
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if writer is not None:
                writer.add_scalar("train/loss_step", loss_value, state["global_step"])
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], state["global_step"])
            if cfg.checkpoint_every_steps and state["global_step"] % cfg.checkpoint_every_steps == 0:
                save(ckpt_path)
        bar.close()

        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
        row.update({f"train_{k}": v for k, v in meter.result(device).items()})
        if val_set is not None:
            val = run_eval(val_set)
            row.update({f"val_{k}": v for k, v in val.items()})
            if state["best_val_acc1"] is None or val["acc1"] > state["best_val_acc1"]:
                state["best_val_acc1"] = val["acc1"]
                row["best"] = True
                if main:
                    atomic_save(
                        {"model": net.state_dict(), "epoch": epoch + 1, "val_acc1": val["acc1"]},
                        out_dir / BEST,
                    )
        state["history"].append(row)
        if writer is not None:
            for k, v in row.items():
                if (
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and k != "epoch"
                    and not k.endswith("_n")
                ):
                    writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
            writer.flush()
        if main and cfg.progress:
            keys = ("train_loss", "train_acc1", "val_loss", "val_acc1")
            print(
                f"epoch {epoch + 1}/{cfg.epochs} "
                + " ".join(f"{k}={row[k]:.4f}" for k in keys if isinstance(row.get(k), float)),
                flush=True,
            )
        state.update(epoch=epoch + 1, step_in_epoch=0, meter={})
        save(ckpt_path)

    # --- test with the best weights ---------------------------------------------------------------
    D.barrier()  # best.pt is complete on disk before anybody reads it
    if val_set is not None and (out_dir / BEST).is_file():
        load_checkpoint(out_dir / BEST, net, map_location=device)
    results: dict[str, Any] = {"best_val_acc1": state["best_val_acc1"], "test_acc1": None, "test_acc5": None}
    if test_set is not None:
        test = run_eval(test_set)
        results.update(test_acc1=test["acc1"], test_acc5=test["acc5"], test_loss=test["loss"])
    results.update(
        history=state["history"],
        wall_time_s=elapsed(),
        config=cfg.to_dict(),
        versions=package_versions(),
        seed=cfg.seed,
        world_size=world,
        device=str(device),
        amp=use_amp,
        steps=state["global_step"],
        **(extra_results or {}),
    )
    if writer is not None:
        writer.close()
    if main:
        atomic_write_json(results, out_dir / RESULTS)
        last = state["history"][-1] if state["history"] else {}
        print_table(
            {
                "epochs": len(state["history"]),
                "train_acc1": last.get("train_acc1"),
                "best_val_acc1": results["best_val_acc1"],
                "test_acc1": results["test_acc1"],
                "test_acc5": results["test_acc5"],
                "wall_time_s": results["wall_time_s"],
                "results": str(out_dir / RESULTS),
            }
        )
    return results


__all__ = [
    "unwrap",
    "classification_step",
    "evaluate",
    "fit",
    "to_device",
    "CHECKPOINT",
    "BEST",
    "RESULTS",
]

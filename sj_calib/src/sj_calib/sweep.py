"""Accuracy, firing rates, synaptic operations/energy and latency of ANN vs uncalibrated vs calibrated SNN.

One simulation of ``max(max(Ts), rho)`` steps per batch serves every T: the readout is causal, so the
prediction at T is the argmax of the cumulative output over the first T steps (as the reference reads out).

Accounting (the rho pre-simulation steps count in every layer), always reported next to each other:

* ``T``: main steps read out (the paper's "T", excludes rho);
* ``per_layer_work = iterations * rho + T``: neuron updates per layer;
* ``streaming = D * iterations * rho + T``: end-to-end latency of a causal deployment where every
  spiking layer waits for ``rho`` calibrated outputs of its predecessor (``D`` = spiking layers on the
  longest path, taken as the number of spiking-layer calls in one forward pass: a layer used twice
  counts twice; exact for chains and standard residual nets, whose shortcuts hold no neuron).

Synaptic operations are counted per time step with our own forward hooks on the conv/linear layers
(not ``op_counter`` / ``sj_common.metrics.synops_energy``: the pre-simulation *replays* inputs that were
computed once, which no module-level counter can see), with the counting rules and the energy model of
``sj_common.metrics`` (:func:`~sj_common.metrics.layer_acs_per_step`,
:func:`~sj_common.metrics.layer_macs_per_step`, :func:`~sj_common.metrics.energy_pj`, one owner for the
project): a spiking input costs one accumulate (AC) per synaptic event (non-zero input x the outputs it
reaches), the first layer (analog image) costs dense MACs. The calibrated SNN is charged
``sum_{t<T} ops_t + iterations * sum_{t<rho} ops_t`` for every synaptic layer that feeds a calibrating
neuron (the replayed pre-simulation input). Energy = 4.6 pJ/MAC + 0.9 pJ/AC (45 nm). The ANN's accuracy
is the engine's :func:`sj_common.engine.evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from sj_common.engine import evaluate
from sj_common.metrics import (
    E_AC_PJ,
    E_MAC_PJ,
    SYNAPTIC_LAYERS,
    energy_pj,
    layer_acs_per_step,
    layer_macs_per_step,
)
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .calibration import calibrate
from .conversion import SpikingNet, convert, spiking_layers

__all__ = ["ann_accuracy", "snn_sweep", "latency", "sweep", "plot_sweep", "E_MAC_PJ", "E_AC_PJ"]


def _loader(data, batch_size: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if not isinstance(data, Dataset):
        raise TypeError(f"data: expected a Dataset or DataLoader, got {type(data).__name__}")
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def ann_accuracy(ann: nn.Module, data, *, batch_size: int = 256, device="cpu", max_batches=None) -> float:
    """Top-1 accuracy (%) of a static ANN ``[B, ...] -> [B, K]`` on a Dataset or DataLoader of ``(x, y)``:
    the engine's :func:`sj_common.engine.evaluate` (the project's one evaluation loop)."""
    if not isinstance(data, (Dataset, DataLoader)):
        raise TypeError(f"data: expected a Dataset or DataLoader, got {type(data).__name__}")
    ann = ann.eval().to(device)
    return float(evaluate(ann, data, device=device, batch_size=batch_size, max_batches=max_batches)["acc1"])


@torch.no_grad()
def snn_sweep(
    snn: SpikingNet,
    data,
    Ts: Sequence[int] = (1, 2, 4, 8),
    *,
    batch_size: int = 128,
    device="cpu",
    max_batches: int | None = None,
) -> dict:
    """Accuracy (%), firing rate, synaptic ops and energy of ``snn`` at every T in ``Ts`` (static input).

    Returns ``{"T", "acc", "firing_rate", "synops", "macs", "energy_uJ", "neuron_updates",
    "layer_firing_rate", "offset_histogram", "rho", "iterations", "D", "n"}`` (``D``: spiking-layer calls
    in one forward pass, the depth of the streaming latency); per-sample quantities are
    averaged over the samples; ``offset_histogram`` maps each spiking layer to its ``before`` / ``after``
    counts of neurons off by 0, 1, 2, >= 3 spikes in the ``rho`` window (empty for ``rho = 0``).
    """
    if not isinstance(snn, SpikingNet):
        raise TypeError(
            f"snn: expected a SpikingNet (sj_calib.convert / calibrate), got {type(snn).__name__}"
        )
    Ts = sorted({int(t) for t in Ts})
    if not Ts or Ts[0] < 1:
        raise ValueError(f"Ts: expected time steps >= 1, got {Ts!r}")
    snn = snn.eval().to(device)
    layers = spiking_layers(snn.body)
    rho = snn.rho
    its = max((m.iterations for _, m in layers if m.rho > 0), default=1) if rho > 0 else 0
    steps = max(Ts[-1], rho)
    syn = [(n, m) for n, m in snn.body.named_modules() if isinstance(m, SYNAPTIC_LAYERS)]
    first = syn[0][0] if syn else None
    ops = {n: torch.zeros(steps, dtype=torch.float64) for n, _ in syn}

    def hook(name):
        def fn(mod, args, out):
            if name == first:
                ops[name] += layer_macs_per_step(mod, out, steps)
            else:
                ops[name] += layer_acs_per_step(mod, args[0], steps).double().cpu()

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in syn]
    calls = [0]  # spiking-layer calls per forward: the depth D, counted from the forward pass

    def count_call(mod, args, out):
        calls[0] += 1

    handles += [m.register_forward_hook(count_call) for _, m in layers]
    depth = None
    snn.set_record(True)
    correct = torch.zeros(len(Ts))
    n = 0
    try:
        for i, (x, y) in enumerate(_loader(data, batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            out = snn(x.to(device), T=steps).cumsum(0)
            depth = calls[0] if depth is None else depth
            for j, T in enumerate(Ts):
                correct[j] += float((out[T - 1].argmax(1).cpu() == y).sum())
            n += len(y)
            functional.reset_net(snn)
    finally:
        for h in handles:
            h.remove()
    n = max(n, 1)
    stats = {name: m.stats() for name, m in layers}
    snn.set_record(False)
    spikes = torch.zeros(steps, dtype=torch.float64)
    neurons = 0
    for st in stats.values():
        if st["spikes_per_step"] is not None:
            spikes += torch.tensor(st["spikes_per_step"], dtype=torch.float64)
            neurons += st["neuron_samples"]
    res = {
        "T": Ts,
        "acc": [],
        "firing_rate": [],
        "synops": [],
        "macs": [],
        "energy_uJ": [],
        "neuron_updates": [],
    }
    feeds_neuron = [nm for nm, _ in syn[:-1]]  # the classifier (last synaptic layer) feeds no neuron
    for j, T in enumerate(Ts):
        acs = macs = 0.0
        for name, per_step in ops.items():
            main = float(per_step[:T].sum())
            replay = its * float(per_step[:rho].sum()) if name in feeds_neuron else 0.0
            if name == first:
                macs += main + replay
            else:
                acs += main + replay
        res["acc"].append(100.0 * float(correct[j]) / n)
        res["firing_rate"].append(float(spikes[:T].sum()) / max(neurons * T, 1))
        res["synops"].append(acs / n)
        res["macs"].append(macs / n)
        res["energy_uJ"].append(energy_pj(macs, acs) / n * 1e-6)
        res["neuron_updates"].append(neurons / n * (its * rho + T))
    res["layer_firing_rate"] = {
        name: (sum(st["spikes_per_step"][: Ts[-1]]) / max(st["neuron_samples"] * Ts[-1], 1))
        for name, st in stats.items()
        if st["spikes_per_step"] is not None
    }
    res["offset_histogram"] = (
        {
            name: {
                "before": st["offset_hist_before"],
                "after": st["offset_hist_after"],
                "buckets": ["0", "1", "2", ">=3"],
            }
            for name, st in stats.items()
        }
        if rho > 0
        else {}
    )
    res.update(rho=rho, iterations=its, D=depth if depth is not None else len(layers), n=n)
    return res


def latency(Ts: Sequence[int], rho: int, D: int, iterations: int = 1) -> dict:
    """The three latency accountings for each T: ``T``, ``rho + T`` (per-layer work) and ``D*rho + T``."""
    r = rho * iterations
    return {
        "T": list(Ts),
        "rho": rho,
        "iterations": iterations,
        "D": D,
        "per_layer_work": [r + t for t in Ts],
        "streaming": [D * r + t for t in Ts],
    }


def sweep(
    ann: nn.Module,
    data,
    Ts: Sequence[int] = (1, 2, 4, 8),
    rho: int = 4,
    *,
    shift: str = "reference",
    saturate: str = "reference",
    iterations: int = 1,
    fold_bn: bool = False,
    batch_size: int = 128,
    device="cpu",
    max_batches: int | None = None,
    out: str | Path | None = None,
) -> dict:
    """ANN vs uncalibrated SNN vs calibrated SNN at every T; writes ``results.json`` and ``sweep.png``
    to ``out`` when given. Returns ``{"ann_acc", "T", "rho", "uncalibrated": {...}, "calibrated": {...},
    "latency": {...}, "offset_histogram": {...}}`` (accuracies in %)."""
    Ts = sorted({int(t) for t in Ts})
    plain = convert(ann, fold_bn=fold_bn)
    cos = calibrate(plain, rho=rho, shift=shift, saturate=saturate, iterations=iterations)
    kw = dict(batch_size=batch_size, device=device, max_batches=max_batches)
    res = {
        "ann_acc": ann_accuracy(ann, data, **kw),
        "T": Ts,
        "rho": rho,
        "shift": shift,
        "saturate": saturate,
        "iterations": iterations,
        "uncalibrated": snn_sweep(plain, data, Ts, **kw),
        "calibrated": snn_sweep(cos, data, Ts, **kw),
    }
    res["latency"] = latency(Ts, rho, res["calibrated"]["D"], iterations)
    res["offset_histogram"] = res["calibrated"].pop("offset_histogram")
    res["uncalibrated"].pop("offset_histogram")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(json.dumps(res, indent=2))
        plot_sweep(res, out / "sweep.png")
    return res


def plot_sweep(res: dict, path: str | Path) -> Path:
    """PNG of accuracy vs total latency: uncalibrated at T, calibrated at rho+T and at D*rho+T (drawn by
    :func:`sj_calib.plots.plot_sweep`; needs matplotlib, the ``[plots]`` extra; the backend is untouched)."""
    from .plots import plot_sweep as _plot_sweep

    _plot_sweep(res, path=path)
    return Path(path)

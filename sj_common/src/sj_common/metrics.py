"""Metrics of a spiking classifier: top-k accuracy, per-layer firing rates, synaptic operations and energy.

This module is the one owner of the energy model and the synaptic-operation counting of the sj-plugins
(sj_calib's sweep uses :func:`layer_acs_per_step`, :func:`layer_macs_per_step` and :func:`energy_pj`).

* :func:`topk_correct` / :func:`topk_accuracy` - top-k hits / accuracy in %, with their argument checks;
  :func:`topk_hits` (device tensor, no host sync) and :func:`check_targets` (one sync) are the two
  halves the training engine uses separately.
* :func:`firing_rates` - mean spike rate of every SpikingJelly neuron layer (and of every layer that
  declares a ``spike_scale``: a calibrated IF layer whose output is spikes x theta), by forward hooks (both SpikingJelly lines).
* :func:`synops_energy` - synaptic operations (ACs), MACs and the 45 nm compute energy estimate
  (MAC 4.6 pJ, AC 0.9 pJ, Horowitz 2014), every figure named with its unit and whether it is a total
  over the input or per sample, counted on the synaptic layers (convolutions and linear layers) by a
  small forward-hook counter on both SpikingJelly lines (integer inputs such as SEW ADD outputs as
  value-weighted ACs); on SpikingJelly 2.x it adds SpikingJelly's own, wider-scoped
  ``op_counter.estimate_simple_energy`` report under ``sj_*`` keys.
* :func:`layer_acs_per_step` / :func:`layer_macs_per_step` / :func:`energy_pj` - the per-layer counting
  rules and the energy formula themselves, for code that places its own hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, neuron
from torch import nn

from .compat import op_counter

__all__ = [
    "topk_correct",
    "topk_accuracy",
    "topk_hits",
    "check_targets",
    "firing_rates",
    "synops_energy",
    "energy_pj",
    "layer_acs_per_step",
    "layer_macs_per_step",
    "SYNAPTIC_LAYERS",
    "E_MAC_PJ",
    "E_AC_PJ",
]

#: 45 nm, 32-bit float energy per operation in pJ (Horowitz, ISSCC 2014), as SpikingJelly's op_counter uses.
E_MAC_PJ, E_AC_PJ = 4.6, 0.9


def energy_pj(macs: float, acs: float) -> float:
    """Compute energy in pJ of ``macs`` multiply-accumulates and ``acs`` accumulates:
    ``4.6 pJ x MACs + 0.9 pJ x ACs`` (45 nm, Horowitz 2014; memory traffic not included)."""
    return E_MAC_PJ * macs + E_AC_PJ * acs


def _check_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    """Shape and dtype checks: tensor metadata only, no host sync."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits: expected a [B, num_classes] tensor, got {got}")
    if not isinstance(target, torch.Tensor) or target.dim() != 1 or target.shape[0] != logits.shape[0]:
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target: expected a [B] = [{logits.shape[0]}] tensor of class indices, got {got}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target: expected an integer tensor of class indices, got dtype {target.dtype}")


def check_targets(target: torch.Tensor, num_classes: int, name: str = "target") -> None:
    """Raise ``ValueError`` unless every class index in ``target`` lies in ``[0, num_classes - 1]``.

    Reads the minimum and maximum back to the host (one sync on a GPU): the training engine calls it
    once per run (first batch) and checks a device-side running min/max at epoch end instead.
    """
    if target.numel() == 0:
        return
    lo, hi = torch.stack([target.min(), target.max()]).tolist()
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{name}: expected class indices in [0, {num_classes - 1}] (logits have {num_classes} "
            f"classes), got values in [{lo}, {hi}]"
        )


def _check_logits(logits: torch.Tensor, target: torch.Tensor) -> None:
    _check_shapes(logits, target)
    check_targets(target, logits.shape[1])


def _check_topk(topk: Sequence[int]) -> None:
    if any(int(k) < 1 for k in topk):
        raise ValueError(f"topk: expected integers >= 1, got {tuple(topk)}")


@torch.no_grad()
def topk_hits(logits: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1, 5)) -> torch.Tensor:
    """Like :func:`topk_correct`, as an int64 tensor ``[len(topk)]`` on ``logits``' device, without a
    host sync: shapes and dtypes are checked, the class range is not (see :func:`check_targets`)."""
    _check_shapes(logits, target)
    _check_topk(topk)
    kmax = min(max(topk), logits.shape[1])
    hit = logits.topk(kmax, dim=1).indices.eq(target[:, None])  # [B, kmax]
    return torch.stack([hit[:, : min(int(k), kmax)].any(dim=1).sum() for k in topk])


@torch.no_grad()
def topk_correct(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k`` in ``topk``.

    ``k`` larger than the number of classes ``C`` is computed as ``k = C`` (every sample is then
    correct), so top-5 on a 2-class problem reads 100 % rather than failing. Targets outside
    ``[0, C - 1]`` are refused (:func:`check_targets`).
    """
    _check_logits(logits, target)
    return [int(v) for v in topk_hits(logits, target, topk).tolist()]


def topk_accuracy(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[float]:
    """Top-k accuracies in % for ``logits [B, C]`` and ``target [B]`` (``k > C`` is taken as ``k = C``)."""
    n = target.shape[0] if isinstance(target, torch.Tensor) and target.dim() == 1 else None
    correct = topk_correct(logits, target, topk)
    if not n:
        raise ValueError("target: expected at least one sample, got an empty batch")
    return [100.0 * c / n for c in correct]


def _check_tensor_input(x: Any, name: str = "x") -> None:
    if isinstance(x, torch.Tensor):
        if x.dim() < 2:
            raise ValueError(f"{name}: expected a [T, B, ...] multi-step tensor, got shape {tuple(x.shape)}")
    elif not isinstance(x, (tuple, list, dict)):
        raise TypeError(
            f"{name}: expected a tensor [T, B, ...] (or a tuple/dict of model inputs), got {type(x).__name__}"
        )


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, (tuple, list)):
        return model(*x)
    if isinstance(x, dict):
        return model(**x)
    return model(x)


def _rate_units(model: nn.Module, instance) -> list[tuple[str, nn.Module, Any]]:
    """``(name, module, spike_scale)`` of every unit :func:`firing_rates` watches, in module order.

    A module with a ``spike_scale`` attribute (not ``None``) is one unit whose output is ``spikes x
    spike_scale`` (a calibrated IF layer: spikes x theta); the neurons inside it are its implementation
    and are not watched separately (its inner ``IFNode`` sees only the steps after the pre-simulation).
    """
    units: list[tuple[str, nn.Module, Any]] = []
    for name, m in model.named_modules():
        if any(u == "" or name.startswith(u + ".") for u, _, s in units if s is not None):
            continue
        scale = getattr(m, "spike_scale", None)
        if scale is not None or isinstance(m, instance):
            units.append((name, m, scale))
    return units


@torch.no_grad()
def firing_rates(
    model: nn.Module, x_seq: Any, instance: type | tuple[type, ...] = neuron.BaseNode
) -> dict[str, float]:
    """Mean firing rate of every neuron layer during one forward pass of ``x_seq``.

    Args:
        model: a SpikingJelly network (its training/eval mode is left as it is).
        x_seq: the model's input, multi-step ``[T, B, ...]`` (a tuple/dict is passed as ``*args``/``**kwargs``).
        instance: the module types to watch; SpikingJelly's ``neuron.BaseNode`` by default. Modules with a
            ``spike_scale`` attribute (a calibrated IF layer: output = spikes x theta) are watched too,
            as one layer each, their rate taken from their own output / ``spike_scale``; the neurons
            inside them are not reported.

    Returns:
        ``{layer_name: spikes / (neurons x steps x samples)}`` in module order, each in ``[0, 1]``
        for binary spikes. The net is reset before and after (``functional.reset_net``).

    Raises ``ValueError`` when the model has no such layers.

    Forward hooks of our own rather than SpikingJelly's ``monitor.OutputMonitor``: the monitor watches by
    type only, so it could neither divide a unit's output by its ``spike_scale`` nor skip the neurons
    inside a unit.
    """
    _check_tensor_input(x_seq, "x_seq")
    units = _rate_units(model, instance)
    if not units:
        raise ValueError(f"model: expected at least one {instance} neuron layer to monitor, found none")
    records: dict[str, list[tuple[float, int]]] = {name: [] for name, _, _ in units}

    def hook(name, scale):
        def fn(mod, args, out):
            spikes = out.detach().double() if scale is None else out.detach().double() / scale
            records[name].append((float(spikes.sum()), out.numel()))

        return fn

    handles = [m.register_forward_hook(hook(name, scale)) for name, m, scale in units]
    try:
        functional.reset_net(model)
        _call(model, x_seq)
        rates = {}
        for name, rec in records.items():
            total = sum(n for _, n in rec)
            rates[name] = sum(s for s, _ in rec) / total if total else float("nan")
        return rates
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(model)


# --- synaptic operations ---------------------------------------------------------------------------

#: The layers whose operations are counted: linear and convolution layers (SpikingJelly's ``layer.*``
#: versions are subclasses).
SYNAPTIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _fan_in(m: nn.Module) -> int:
    return m.in_features if isinstance(m, nn.Linear) else m.weight.shape[1] * m.weight[0, 0].numel()


def layer_macs_per_step(m: nn.Module, out: torch.Tensor, steps: int = 1) -> float:
    """Dense multiply-accumulates per time step of one call of a linear/conv layer ``m``:
    ``out.numel() / steps x fan_in`` (``out`` is the layer's output over ``steps`` time steps and all
    samples; ``steps=1`` gives the call's total)."""
    return out.numel() / steps * _fan_in(m)


def layer_acs_per_step(
    m: nn.Module, x: torch.Tensor, steps: int = 1, *, weighted: bool = False
) -> torch.Tensor:
    """Accumulates (synaptic events) per time step of one call of a linear/conv layer ``m`` fed by spikes.

    Every non-zero input costs one AC per output it reaches: ``fan_out`` for a linear layer; for a
    convolution the outputs its kernel window covers (so a spike at a padded border reaches fewer),
    computed exactly by convolving the non-zero mask with a kernel of ones.

    Args:
        m: an ``nn.Linear`` / ``nn.Conv{1,2,3}d`` (zero padding).
        x: its input, ``[N, ...]`` where the leading dimensions hold ``steps`` time steps first
            (``[T, B, ...]`` of a multi-step layer or ``[T * B, ...]``).
        steps: number of time steps in the leading dimension.
        weighted: count ``|x|`` events per input instead of one per non-zero input: for integer inputs
            that are event counts, such as a SEW residual ADD shortcut's 0/1/2 or event frames (an input of
            2 is two spikes arriving, so two ACs per reached output).

    Returns:
        A float32 tensor ``[steps]`` on ``x``'s device (ACs summed over the samples of each step).
    """
    nz = x.abs().to(torch.float32) if weighted else (x != 0).to(torch.float32)
    if isinstance(m, nn.Linear):
        return nz.reshape(steps, -1).sum(1) * m.out_features
    spatial = m.weight.dim() - 2
    nz = nz.reshape(-1, *nz.shape[nz.dim() - spatial - 1 :])  # [N, C_in, *spatial]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    if m.groups == 1:  # events x reached outputs: sum over input channels first, then x out_channels
        ones = torch.ones(1, 1, *m.weight.shape[2:], device=x.device)
        reach = conv(nz.sum(1, keepdim=True), ones, None, m.stride, m.padding, m.dilation) * m.out_channels
    else:
        ones = torch.ones_like(m.weight, dtype=torch.float32)
        reach = conv(nz, ones, None, m.stride, m.padding, m.dilation, m.groups)
    return reach.reshape(steps, -1).sum(1)


def _is_integer(x: torch.Tensor) -> bool:
    return bool((torch.isfinite(x) & (x == x.round())).all())


def _layer_ops(m: nn.Module, x: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """(ACs, MACs) of one call of a linear/conv layer: ACs = exact synaptic events of a binary input
    (non-zero input x the outputs it reaches, padding included); an integer input is event counts (a
    SEW residual ADD shortcut's 0/1/2, event frames), so ``|x|`` events per input (value-weighted ACs: the
    count of a batch is the sum of its samples' counts, whatever else is in the batch); MACs = dense
    multiply-adds for any other (analog) input."""
    if _is_binary(x):
        if isinstance(m, nn.Linear):  # exact integer count at any size
            return int(x.count_nonzero()) * m.out_features, 0
        return int(layer_acs_per_step(m, x).sum().round()), 0
    if _is_integer(x):
        if isinstance(m, nn.Linear):
            return int(x.abs().sum(dtype=torch.float64).round()) * m.out_features, 0
        return int(layer_acs_per_step(m, x, weighted=True).double().sum().round()), 0
    return 0, int(layer_macs_per_step(m, out))


@torch.no_grad()
def _hook_count(model: nn.Module, x: Any) -> dict[str, Any]:
    per_layer: dict[str, dict[str, int]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, SYNAPTIC_LAYERS):

            def hook(mod, args, out, name=name):
                if getattr(mod, "padding_mode", "zeros") != "zeros":
                    raise NotImplementedError(
                        f"{name}: only zero padding is counted, got {mod.padding_mode!r}"
                    )
                ac, mac = _layer_ops(mod, args[0], out)
                rec = per_layer.setdefault(name, {"acs": 0, "macs": 0})
                rec["acs"] += ac
                rec["macs"] += mac

            handles.append(m.register_forward_hook(hook))
    try:
        functional.reset_net(model)
        _call(model, x)
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(model)
    acs = sum(r["acs"] for r in per_layer.values())
    macs = sum(r["macs"] for r in per_layer.values())
    return {"synops": acs, "acs": acs, "macs": macs, "per_layer": per_layer}


def synops_energy(
    model: nn.Module, x: Any, *, backend: str = "auto", samples: int | None = None
) -> dict[str, Any]:
    """Synaptic operations, MACs, ACs and the 45 nm compute energy of one forward pass of ``x``.

    The counts are those of the synaptic layers (:data:`SYNAPTIC_LAYERS`: convolutions and linear layers),
    taken by forward hooks, whatever the backend, so both backends give the same ``acs``, ``macs`` and
    energy. A layer's input decides its cost:

    - binary (spikes): one AC per synaptic event (:func:`layer_acs_per_step`: non-zero input x the outputs
      it reaches, exact at padded borders);
    - other integers (a SEW residual ADD shortcut's 0/1/2, event-count frames): value-weighted ACs, ``|x|``
      events per input, so a sample's count does not depend on the batch it is in;
    - anything else (analog, e.g. the first layer on images): dense MACs (:func:`layer_macs_per_step`).

    ``backend="spikingjelly"`` (and ``"auto"`` where SpikingJelly 2.x's ``op_counter`` is installed) adds
    SpikingJelly's own ``op_counter.estimate_simple_energy`` report under ``sj_*`` keys. Its scope is
    wider, which is why its totals differ: its ACs also count every other addition (neuron membrane
    updates, BatchNorm, pooling sums, residual additions), its MACs include BatchNorm's affine multiply-adds
    and charge a non-binary integer input (a SEW ADD output) as dense MACs; its SynOps equal ``acs`` here
    on binary inputs. Why not its counts as the headline: a different scope from the usual SNN estimate
    (energy of the synaptic operations), and no rule for integer inputs.

    Args:
        model: the network (``[T, B, ...]`` multi-step input); reset before and after.
        x: its input (a tuple/dict is passed as ``*args``/``**kwargs``).
        backend: ``"auto"``, ``"spikingjelly"`` (error on 0.0.0.0.14, which has no op_counter) or ``"hooks"``
            (the synaptic counts only).
        samples: number of samples in ``x`` for the ``*_per_sample`` figures; default ``B`` of a
            ``[T, B, ...]`` tensor (``None`` for a tuple/dict input: the per-sample figures are then None).

    Returns:
        Counts are totals over the whole input (all samples, all time steps); every energy key names
        its unit (pJ) and whether it is a total or per sample:

        - ``"synops"`` (= ``"acs"``), ``"acs"``, ``"macs"`` and ``"synops_per_sample"``, ``"acs_per_sample"``,
          ``"macs_per_sample"``; ``"samples"``; ``"per_layer"`` (``{name: {"acs", "macs"}}``, totals);
        - ``"energy_pj_total"`` = ``4.6 pJ x macs + 0.9 pJ x acs`` (:func:`energy_pj`: compute only, no
          memory traffic), split into ``"energy_mac_pj_total"`` and ``"energy_ac_pj_total"``;
          ``"energy_pj_per_sample"`` = ``energy_pj_total / samples``;
        - ``"backend"`` (``"hooks"`` or ``"spikingjelly"``), ``"available"`` (True);
        - with ``"spikingjelly"``: ``"sj_synops_total"``, ``"sj_acs_total"``, ``"sj_macs_total"``,
          ``"sj_energy_pj_compute_total"`` (its MAC + AC energy), ``"energy_pj_total_incl_memory"`` (its
          compute + memory-traffic model) and ``"memory_access_bytes_total"``.
    """
    if backend not in ("auto", "spikingjelly", "hooks"):
        raise ValueError(f"backend: expected 'auto', 'spikingjelly' or 'hooks', got {backend!r}")
    _check_tensor_input(x)
    if samples is None and isinstance(x, torch.Tensor):
        samples = int(x.shape[1])
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples: expected None or an integer >= 1, got {samples!r}")
    oc = op_counter()
    if backend == "spikingjelly" and oc is None:
        raise RuntimeError(
            "backend='spikingjelly': SpikingJelly's op_counter is not available on this SpikingJelly line "
            "(0.0.0.0.14 has none); use backend='hooks' or 'auto'"
        )
    res = _hook_count(model, x)
    res["backend"] = "hooks"
    if backend != "hooks" and oc is not None:
        functional.reset_net(model)
        try:
            rep = oc.estimate_simple_energy(model, x)
        finally:
            functional.reset_net(model)
        c = rep.counts
        res.update(
            {
                "backend": "spikingjelly",
                "sj_synops_total": int(c.get("synop", 0)),
                "sj_acs_total": int(c.get("ac", 0)),
                "sj_macs_total": int(c.get("mac", 0)),
                "sj_energy_pj_compute_total": float(rep.energy_compute_pj),
                "energy_pj_total_incl_memory": float(rep.energy_total_pj),
                "memory_access_bytes_total": int(c.get("memory_access_bytes", 0)),
            }
        )
    res["available"] = True
    res["samples"] = samples
    res["energy_mac_pj_total"] = E_MAC_PJ * res["macs"]
    res["energy_ac_pj_total"] = E_AC_PJ * res["acs"]
    res["energy_pj_total"] = energy_pj(res["macs"], res["acs"])
    for key in ("synops", "acs", "macs"):
        res[f"{key}_per_sample"] = res[key] / samples if samples else None
    res["energy_pj_per_sample"] = res["energy_pj_total"] / samples if samples else None
    return res

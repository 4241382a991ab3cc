"""Metrics of a spiking classifier: top-k accuracy, per-layer firing rates, synaptic operations and energy.

* :func:`topk_accuracy` - top-1/top-5 in %.
* :func:`firing_rates` - mean spike rate of every SpikingJelly neuron layer, via SpikingJelly's
  ``monitor.OutputMonitor`` (both SpikingJelly lines).
* :func:`synops_energy` - synaptic operations (ACs), MACs and the 45 nm energy estimate
  (MAC 4.6 pJ, AC 0.9 pJ, Horowitz 2014). On SpikingJelly 2.x it reports SpikingJelly's own
  ``op_counter.estimate_simple_energy``; SpikingJelly 0.0.0.0.14 has no op counter, so there (or with
  ``backend="hooks"`` on either line, for numbers comparable across lines) a small forward-hook counter
  over the synaptic layers (convolutions and linear layers) is used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, monitor, neuron
from torch import nn

from .compat import op_counter

__all__ = ["topk_correct", "topk_accuracy", "firing_rates", "synops_energy", "E_MAC_PJ", "E_AC_PJ"]

#: 45 nm, 32-bit float energy per operation in pJ (Horowitz, ISSCC 2014), as SpikingJelly's op_counter uses.
E_MAC_PJ, E_AC_PJ = 4.6, 0.9


def _check_logits(logits: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits: expected a [B, num_classes] tensor, got {got}")
    if not isinstance(target, torch.Tensor) or target.dim() != 1 or target.shape[0] != logits.shape[0]:
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target: expected a [B] = [{logits.shape[0]}] tensor of class indices, got {got}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target: expected an integer tensor of class indices, got dtype {target.dtype}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= logits.shape[1]):
        raise ValueError(
            f"target: expected class indices in [0, {logits.shape[1] - 1}] (logits have {logits.shape[1]} "
            f"classes), got values in [{int(target.min())}, {int(target.max())}]"
        )


@torch.no_grad()
def topk_correct(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k`` in ``topk``.

    ``k`` larger than the number of classes ``C`` is computed as ``k = C`` (every sample is then
    correct), so top-5 on a 2-class problem reads 100 % rather than failing.
    """
    _check_logits(logits, target)
    if any(int(k) < 1 for k in topk):
        raise ValueError(f"topk: expected integers >= 1, got {tuple(topk)}")
    kmax = min(max(topk), logits.shape[1])
    pred = logits.topk(kmax, dim=1).indices  # [B, kmax]
    hit = pred.eq(target[:, None])
    return [int(hit[:, : min(int(k), kmax)].any(dim=1).sum()) for k in topk]


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


@torch.no_grad()
def firing_rates(
    model: nn.Module, x_seq: Any, instance: type | tuple[type, ...] = neuron.BaseNode
) -> dict[str, float]:
    """Mean firing rate of every neuron layer during one forward pass of ``x_seq``.

    Args:
        model: a SpikingJelly network (its training/eval mode is left as it is).
        x_seq: the model's input, multi-step ``[T, B, ...]`` (a tuple/dict is passed as ``*args``/``**kwargs``).
        instance: the module types to watch; SpikingJelly's ``neuron.BaseNode`` by default.

    Returns:
        ``{layer_name: spikes / (neurons x steps x samples)}`` in module order, each in ``[0, 1]``
        for binary spikes. The net is reset before and after (``functional.reset_net``).

    Raises ``ValueError`` when the model has no such layers.
    """
    _check_tensor_input(x_seq, "x_seq")
    mon = monitor.OutputMonitor(model, instance, lambda out: (float(out.detach().float().sum()), out.numel()))
    try:
        if not mon.monitored_layers:
            raise ValueError(f"model: expected at least one {instance} neuron layer to monitor, found none")
        functional.reset_net(model)
        _call(model, x_seq)
        rates = {}
        for name in mon.monitored_layers:
            records = mon[name]
            total = sum(n for _, n in records)
            rates[name] = sum(s for s, _ in records) / total if total else float("nan")
        return rates
    finally:
        mon.remove_hooks()
        functional.reset_net(model)


# --- synaptic operations ---------------------------------------------------------------------------

_SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _layer_ops(m: nn.Module, x: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """(ACs, MACs) of one call of a linear/conv layer: ACs = exact synaptic events of a binary input
    (non-zero input x the outputs it reaches, padding included), MACs = dense multiply-adds otherwise."""
    if isinstance(m, nn.Linear):
        if _is_binary(x):
            return int(x.count_nonzero()) * m.out_features, 0
        return 0, out.numel() * m.in_features
    if _is_binary(x):
        nd = x.dim() - (m.weight.dim() - 2) - 1  # leading batch-like dims ([T, B] in multi-step mode)
        nz = (x != 0).to(m.weight.dtype).flatten(0, nd - 1) if nd > 1 else (x != 0).to(m.weight.dtype)
        ones = torch.ones_like(m.weight)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[m.weight.dim() - 2]
        reach = conv(nz, ones, None, m.stride, m.padding, m.dilation, m.groups)
        return int(reach.sum().round()), 0
    return 0, out.numel() * (m.weight.shape[1] * m.weight[0, 0].numel())


@torch.no_grad()
def _hook_count(model: nn.Module, x: Any) -> dict[str, Any]:
    per_layer: dict[str, dict[str, int]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _SYNAPTIC):

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


def synops_energy(model: nn.Module, x: Any, *, backend: str = "auto") -> dict[str, Any]:
    """Synaptic operations, MACs, ACs and the 45 nm compute energy of one forward pass of ``x``.

    Args:
        model: the network (``[T, B, ...]`` multi-step input); reset before and after.
        x: its input (a tuple/dict is passed as ``*args``/``**kwargs``).
        backend: ``"auto"`` (SpikingJelly's op_counter when installed, else hooks), ``"spikingjelly"``
            (error on 0.0.0.0.14) or ``"hooks"``.

    Returns:
        ``{"available": True, "backend", "synops", "acs", "macs", "energy_mac_pj", "energy_ac_pj",
        "energy_pj"}`` with ``energy_pj = 4.6 pJ x MACs + 0.9 pJ x ACs`` (compute only).

        - ``backend="spikingjelly"``: the counts of ``op_counter.estimate_simple_energy`` (its ACs also
          cover element-wise additions such as neuron updates; ``synops`` is its SynOpCounter count),
          plus ``"energy_total_pj"`` and ``"memory_access_bytes"`` (its memory-traffic model).
        - ``backend="hooks"``: only synaptic layers (``nn.Linear``/``nn.Conv{1,2,3}d`` and SpikingJelly's
          subclasses) are counted; a layer fed by a binary (spike) tensor costs one AC per synaptic
          event (non-zero input x fan-out, exact at borders), any other input costs dense MACs
          (so the first, analog-input layer is MACs). ``"per_layer"`` holds the split.
    """
    if backend not in ("auto", "spikingjelly", "hooks"):
        raise ValueError(f"backend: expected 'auto', 'spikingjelly' or 'hooks', got {backend!r}")
    _check_tensor_input(x)
    oc = op_counter()
    if backend == "spikingjelly" and oc is None:
        raise RuntimeError(
            "backend='spikingjelly': SpikingJelly's op_counter is not available on this SpikingJelly line "
            "(0.0.0.0.14 has none); use backend='hooks' or 'auto'"
        )
    if backend == "hooks" or oc is None:
        res = _hook_count(model, x)
        res["backend"] = "hooks"
    else:
        functional.reset_net(model)
        try:
            rep = oc.estimate_simple_energy(model, x)
        finally:
            functional.reset_net(model)
        c = rep.counts
        res = {
            "backend": "spikingjelly",
            "synops": int(c.get("synop", 0)),
            "acs": int(c.get("ac", 0)),
            "macs": int(c.get("mac", 0)),
            "energy_total_pj": float(rep.energy_total_pj),
            "memory_access_bytes": int(c.get("memory_access_bytes", 0)),
        }
    res["available"] = True
    res["energy_mac_pj"] = E_MAC_PJ * res["macs"]
    res["energy_ac_pj"] = E_AC_PJ * res["acs"]
    res["energy_pj"] = res["energy_mac_pj"] + res["energy_ac_pj"]
    return res

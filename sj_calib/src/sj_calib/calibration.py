"""``calibrate(snn, rho=4)``: turn any SNN of IF neurons into an offset-spike-calibrated one in one call.

Accepts a :class:`~sj_calib.conversion.SpikingNet` (from :func:`sj_calib.convert`) or any SpikingJelly network
whose neurons are ``IFNode`` with soft reset (``v_reset=None``), e.g. the output of SpikingJelly's own
``ann2snn.Converter`` (``VoltageScaler(1/s) -> IFNode -> VoltageScaler(s)``). Each IF neuron becomes an
:class:`~sj_calib.offset_spike.OffsetSpikeIF` with the same threshold and v_0 = theta/2 (the method's
initial potential; SpikingJelly's converter starts at 0), and the network runs layer by layer on
time-flattened tensors (SpikingJelly layers are switched to single-step mode for that, their
``SeqToANNContainer`` unwrapped). Calibration is online: per batch, per sample, nothing is learned or
stored between batches (as the paper evaluated it: on each test batch itself).
"""

from __future__ import annotations

import copy

from spikingjelly.activation_based import base, functional, layer, neuron
from torch import nn

from .conversion import SpikingNet, TimeFlattened, _sample_ndim, _swap, check_maxpool, spiking_layers
from .offset_spike import OffsetSpikeIF, check_options, check_threshold

__all__ = ["calibrate"]


def calibrate(
    snn: nn.Module,
    rho: int = 4,
    *,
    shift: str = "reference",
    saturate: str = "reference",
    iterations: int = 1,
    T: int | None = None,
    sample_ndim: int | None = None,
    path: str = "auto",
    maxpool: str = "error",
) -> SpikingNet:
    """Return a calibrating copy of ``snn`` (``snn`` itself is not modified).

    Args:
        snn: a :class:`SpikingNet` or any module holding SpikingJelly ``IFNode`` neurons (soft reset).
        rho: pre-simulation steps per layer (the paper's 4; 0 = no calibration, v_0 = theta/2).
        shift, saturate, iterations: see :func:`sj_calib.offset_spike_if`.
        T: default time steps for static input (kept from a ``SpikingNet`` when ``None``).
        sample_ndim: dims of one static input batch, inferred from the first conv/linear when ``None``.
        path: ``'auto'`` (sync-free on CUDA, gather elsewhere), ``'gather'`` or ``'sync_free'``: see
            :func:`sj_calib.offset_spike_if` (same bits; the sync-free path makes no host sync).
        maxpool: ``'error'`` (default) refuses max pooling with the same :class:`UnsupportedModuleError` as
            :func:`sj_calib.convert`, ``'keep'`` accepts it (applied per step to the spikes: an approximation).
            Not checked again for a :class:`SpikingNet` (``convert`` decided).

    SpikingJelly's ``layer.Dropout`` / ``Dropout2d`` (identity in eval, e.g. in ``spiking_vgg11_bn``'s
    classifier) are dropped.

    Returns:
        A :class:`SpikingNet`: ``out = net(x_seq)`` with ``x_seq`` ``[T, B, ...]`` gives ``[T, B, K]``;
        with ``net.T`` set it also takes a static ``[B, ...]`` batch. Latency: ``T`` main steps,
        ``iterations * rho + T`` neuron updates per layer, about ``D * rho + T`` end to end when streaming.
    """
    check_options(rho, shift, saturate, iterations, path)
    if maxpool not in ("error", "keep"):
        raise ValueError(f"maxpool: expected 'error' or 'keep', got {maxpool!r}")
    if isinstance(snn, SpikingNet):
        net = copy.deepcopy(snn).eval()
        for _, m in spiking_layers(net):
            m.rho, m.shift, m.saturate, m.iterations = rho, shift, saturate, iterations
        net.set_path(path)
        if T is not None:
            net.T = T
        return net
    if not isinstance(snn, nn.Module):
        raise TypeError(f"snn: expected an nn.Module, got {type(snn).__name__}")
    found = [(n, m) for n, m in snn.named_modules() if isinstance(m, base.MemoryModule) and n]
    ifs = [(n, m) for n, m in found if isinstance(m, neuron.IFNode)]
    if not ifs:
        names = ", ".join(f"{n} ({type(m).__name__})" for n, m in found) or "none"
        raise ValueError(f"snn: no SpikingJelly IFNode found to calibrate (stateful modules: {names})")
    others = [
        (n, m) for n, m in found if not isinstance(m, (neuron.IFNode, layer.Dropout)) and not _inside(n, ifs)
    ]
    if others:
        listing = ", ".join(f"{n} ({type(m).__name__})" for n, m in others)
        raise ValueError(f"snn: offset-spike calibration needs IF neurons only; found {listing}")
    for n, m in ifs:
        if m.v_reset is not None:
            raise ValueError(
                f"snn: neuron {n!r} has hard reset (v_reset={m.v_reset}); COS needs v_reset=None"
            )
        check_threshold(m.v_threshold, f"snn: neuron {n!r} v_threshold")
    check_maxpool(snn, maxpool, "snn")
    nd = sample_ndim if sample_ndim is not None else _sample_ndim(snn)
    body = copy.deepcopy(snn).eval()
    functional.set_step_mode(body, "s")  # stateless SJ layers then act on the [T*B, ...] stream

    def swap(m):
        if isinstance(m, neuron.IFNode):
            return TimeFlattened(
                OffsetSpikeIF(
                    float(m.v_threshold), rho, shift=shift, saturate=saturate, iterations=iterations
                )
            )
        if isinstance(m, layer.SeqToANNContainer):
            return nn.Sequential(*m.children())
        if isinstance(m, layer.Dropout):  # identity in eval; a MemoryModule we need not carry
            return nn.Identity()
        return None

    _swap(body, swap)
    for p in body.parameters():
        p.requires_grad_(False)
    return SpikingNet(body, nd, T, path)


def _inside(name: str, ifs) -> bool:
    return any(name.startswith(n + ".") for n, _ in ifs)

"""Conversion of a QCFS-trained ANN to a multi-step SNN of SpikingJelly IF neurons, and the network wrapper.

Every QCFS becomes an :class:`~sj_calib.offset_spike.OffsetSpikeIF` (theta = lambda, soft reset,
v_0 = theta/2; ``rho=0`` = the plain QCFS SNN, ``rho>0`` = calibrated). Weights are not rescaled; BN is kept
in eval mode or folded into the preceding conv/linear; pooling, flatten and residual adds act on the
theta-scaled spikes (the reference's conversion).

How the network runs (:class:`SpikingNet`): the stateless part processes all time steps as one batch
``[T*B, ...]`` (exactly what the reference and SpikingJelly's ``SeqToANNContainer`` do), so any
torchvision-style ``forward`` (``torch.flatten(x, 1)``, residual adds, ``view(B, -1)``) works unchanged;
only the neurons see ``[T, B, ...]``, through :class:`TimeFlattened`, whose ``T`` the wrapper sets
explicitly for every run (the reference guessed it from the batch size, which misreads a last partial batch).

Why not SpikingJelly's ``ann2snn.Converter``: it replaces only ``nn.ReLU`` and sets thresholds from
activation statistics, not from the trained lambda.
"""

from __future__ import annotations

import copy
import warnings

import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based import layer as sj_layer
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .offset_spike import OffsetSpikeIF, check_finite, check_options, check_threshold, use_sync_free
from .qcfs import QCFS
from .sharing import untie_shared
from .threshold_check import MIN_AGREEMENT, ConversionWarning, check_conversion, warning_text

__all__ = [
    "UnsupportedModuleError",
    "preflight",
    "convert",
    "SpikingNet",
    "TimeFlattened",
    "fold_batchnorm",
    "spiking_layers",
]

#: leaf modules that are exact on theta-scaled spike tensors (linear or per-step element-wise in eval)
_SUPPORTED = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.Identity,
    QCFS,
    sj_layer.Dropout,  # SpikingJelly's (also Dropout2d): a MemoryModule, identity in eval; dropped
)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
#: the one message of convert() and calibrate() for max pooling
MAXPOOL_HINT = (
    "Max pooling of spikes is not exact (applied per step it over-estimates the rate): train with "
    "sj_calib.replace_maxpool_by_avgpool as the method does, or pass maxpool='keep' to accept the "
    "approximation."
)


class UnsupportedModuleError(ValueError):
    """The network holds modules the conversion cannot make exact; ``.modules`` lists ``(name, class)``."""

    def __init__(self, modules: list[tuple[str, str]], hint: str = "", arg: str = "ann"):
        self.modules = modules
        listing = ", ".join(f"{n} ({c})" for n, c in modules)
        super().__init__(f"{arg}: cannot convert {len(modules)} module(s): {listing}. {hint}".strip())


def check_maxpool(model: nn.Module, maxpool: str, arg: str) -> None:
    """Raise :class:`UnsupportedModuleError` (:data:`MAXPOOL_HINT`) naming ``arg`` and listing ``model``'s
    max pooling modules, unless ``maxpool='keep'``."""
    if maxpool not in ("error", "keep"):
        raise ValueError(f"maxpool: expected 'error' or 'keep', got {maxpool!r}")
    found = [(n, type(m).__name__) for n, m in model.named_modules() if isinstance(m, _MAXPOOL)]
    if found and maxpool == "error":
        raise UnsupportedModuleError(found, MAXPOOL_HINT, arg)


def preflight(ann: nn.Module, *, maxpool: str = "error") -> list[tuple[str, str]]:
    """List every leaf module of ``ann`` the conversion does not support, as ``(name, class name)``.

    Supported: conv, linear, BN, average pooling, flatten, dropout (``nn.Dropout`` and SpikingJelly's
    ``layer.Dropout`` / ``Dropout2d``: identity in eval), identity, QCFS and any container built from them
    (``nn.Sequential``, residual blocks; SpikingJelly's stateless ``layer.*`` wrappers subclass these).
    ``maxpool='keep'`` also accepts max pooling (applied per step to the spikes: an approximation, it
    over-estimates the rate); ``'error'`` (default) rejects it: train with ``replace_maxpool_by_avgpool``
    as the method does.
    ReLU is rejected: swap it for QCFS and train first. Activations called functionally in a
    ``forward`` (``F.relu``) are invisible here; write them as modules.
    """
    if maxpool not in ("error", "keep"):
        raise ValueError(f"maxpool: expected 'error' or 'keep', got {maxpool!r}")
    ok = _SUPPORTED + (_MAXPOOL if maxpool == "keep" else ())
    bad = []
    for name, m in ann.named_modules():
        if len(list(m.children())) == 0 and name and not isinstance(m, ok):
            bad.append((name, type(m).__name__))
    return bad


def fold_batchnorm(model: nn.Module) -> list[str]:
    """Fold every BN that directly follows a conv/linear inside an ``nn.Sequential`` into it (in place,
    model must be in eval mode). Returns the names of the folded BN modules; other BNs stay (exact too)."""
    folded = []
    for pname, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        keys = list(parent._modules.keys())
        for a, b in zip(keys, keys[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            pair_conv = isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and isinstance(
                bn, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
            )
            pair_lin = isinstance(conv, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
            if (pair_conv or pair_lin) and bn.track_running_stats:
                fused = fuse_conv_bn_eval(conv, bn) if pair_conv else fuse_linear_bn_eval(conv, bn)
                parent._modules[a] = fused
                parent._modules[b] = nn.Identity()
                folded.append(f"{pname}.{b}" if pname else b)
    return folded


class TimeFlattened(nn.Module):
    """Adapter: feeds a multi-step layer ``[T, B, ...]`` from a time-flattened stream ``[T*B, ...]``.

    ``T`` must be set explicitly (the :class:`SpikingNet` wrapper sets it for every run); a missing ``T``
    or a batch not divisible by it is an error, never a guess.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.T: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.T is None:
            raise RuntimeError("TimeFlattened.T is not set: run the network through SpikingNet")
        if x.shape[0] % self.T:
            raise ValueError(f"x: expected a time-flattened batch T*B with T={self.T}, got {tuple(x.shape)}")
        y = self.layer(x.reshape(self.T, x.shape[0] // self.T, *x.shape[1:]))
        return y.flatten(0, 1)


def spiking_layers(net: nn.Module) -> list[tuple[str, OffsetSpikeIF]]:
    """``(name, layer)`` of every :class:`OffsetSpikeIF` in ``net``, in module order."""
    return [(n, m) for n, m in net.named_modules() if isinstance(m, OffsetSpikeIF)]


class SpikingNet(nn.Module):
    """A converted (optionally calibrated) SNN: ``[T, B, ...]`` in, per-step outputs ``[T, B, K]`` out.

    The prediction is the mean over time of the output (``snn(x).mean(0)``): the last layer has no
    neuron, so its per-step output is the analog ``W (theta s_t) + b``.

    Input: a sequence ``[T, B, *sample]`` (``sample_ndim + 1`` dims), or, when ``self.T`` is set, a static
    batch ``[B, *sample]`` that is repeated (analog/direct coding). Input with NaN or inf is refused with a
    ``ValueError`` (an IF neuron never fires on NaN, so the output would be a confident guess from the biases). For static input the wrapper simulates
    ``max(T, rho)`` steps (the pre-simulation needs ``rho`` real inputs) and returns the first ``T``; this
    is exact because the readout is causal. A sequence shorter than ``rho`` is an error.

    Args:
        body: the network; its neurons are ``TimeFlattened(OffsetSpikeIF)``, the rest runs on ``[T*B, ...]``.
        sample_ndim: dims of one *static batch* (4 for ``[B, C, H, W]`` images, 2 for ``[B, F]``).
        T: default number of time steps for static input (``None``: sequences only).
        path: the calibration path (:meth:`set_path`). On the sync-free path (CUDA by default) the input
            is not checked on the host: a sample with NaN or inf gets NaN outputs instead of a ``ValueError``.

    Inference only: it is built in eval mode, and :meth:`train` sets only the wrapper's flag while the body
    stays in eval mode. In train mode a BatchNorm would normalise with the statistics of the ``T*B`` stream
    and overwrite its running statistics, and the calibrated layers cannot be trained (their output is
    ``spikes * theta`` with no surrogate gradient); the parameters are frozen.
    """

    def __init__(self, body: nn.Module, sample_ndim: int, T: int | None = None, path: str = "auto"):
        super().__init__()
        self.body = body
        self.sample_ndim = int(sample_ndim)
        self.T = T
        #: the result of :func:`sj_calib.threshold_check.check_conversion` when ``convert`` ran it
        self.conversion_check: dict | None = None
        self.set_path(path)
        self.eval()

    def set_path(self, path: str) -> None:
        """Select the calibration path of the network and all its layers (see :func:`offset_spike_if`):
        ``'auto'`` (sync-free on CUDA, gather elsewhere), ``'gather'`` or ``'sync_free'``."""
        check_options(0, path=path)
        self.path = path
        for m in self.layers:
            m.path = path

    def train(self, mode: bool = True) -> SpikingNet:
        """Set the wrapper's ``training`` flag; the body always stays in eval mode (class docstring)."""
        if not isinstance(mode, bool):
            raise ValueError(f"mode: expected a bool, got {mode!r}")
        self.training = mode
        self.body.eval()
        return self

    @property
    def layers(self) -> list[OffsetSpikeIF]:
        return [m for _, m in spiking_layers(self.body)]

    @property
    def rho(self) -> int:
        """The largest pre-simulation length of the layers (0: uncalibrated)."""
        return max((m.rho for m in self.layers), default=0)

    def set_record(self, on: bool) -> None:
        for m in self.layers:
            m.record = on
            if on:
                m.clear_stats()

    def forward(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a tensor, got {type(x).__name__}")
        if not use_sync_free(self.path, x):
            check_finite(x, "x")
            return self._forward(x, T)
        out = self._forward(x, T)  # validates the shape first
        # no host sync: a sample with NaN/inf anywhere in its input gets NaN outputs instead of an error
        bad = ~torch.isfinite(x).movedim(x.dim() - self.sample_ndim, 0).flatten(1).all(1)
        return out.masked_fill(bad.reshape(1, -1, *[1] * (out.dim() - 2)), float("nan"))

    def _forward(self, x: torch.Tensor, T: int | None) -> torch.Tensor:
        T = T if T is not None else self.T
        if x.dim() == self.sample_ndim:
            if T is None:
                raise ValueError(
                    f"x: got a static batch of shape {tuple(x.shape)} without a time dimension; pass "
                    f"[T, B, ...] ({self.sample_ndim + 1}-D) or set T (snn.T = 4 or snn(x, T=4))"
                )
            if not isinstance(T, int) or T < 1:
                raise ValueError(f"T: expected an int >= 1, got {T!r}")
            steps = max(T, self.rho)
            return self._run(x.unsqueeze(0).expand(steps, *x.shape))[:T]
        if x.dim() != self.sample_ndim + 1:
            raise ValueError(
                f"x: expected [T, B, ...] with {self.sample_ndim + 1} dims (or a static "
                f"{self.sample_ndim}-D batch with T set), got shape {tuple(x.shape)}"
            )
        if x.shape[0] < max(1, self.rho):
            raise ValueError(
                f"x: a sequence of T={x.shape[0]} steps is shorter than rho={self.rho}; the pre-simulation "
                "needs rho real inputs (feed max(T, rho) steps and read the first T)"
            )
        return self._run(x)

    def _run(self, x_seq: torch.Tensor) -> torch.Tensor:
        T, B = x_seq.shape[:2]
        adapters = [m for m in self.body.modules() if isinstance(m, TimeFlattened)]
        for a in adapters:
            a.T = T
        try:
            out = self.body(x_seq.reshape(T * B, *x_seq.shape[2:]))
        finally:
            for a in adapters:
                a.T = None
        return out.reshape(T, B, *out.shape[1:])


def _sample_ndim(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            return 5
        if isinstance(m, nn.Conv2d):
            return 4
        if isinstance(m, nn.Conv1d):
            return 3
        if isinstance(m, nn.Linear):
            return 2
    raise ValueError("model: no conv/linear layer found to infer the input dims; pass sample_ndim")


def _swap(module: nn.Module, fn) -> None:
    for name, child in list(module.named_children()):
        new = fn(child)
        if new is not None:
            setattr(module, name, new)
        else:
            _swap(child, fn)


def convert(
    ann: nn.Module,
    *,
    T: int | None = None,
    rho: int = 0,
    shift: str = "reference",
    saturate: str = "reference",
    iterations: int = 1,
    fold_bn: bool = False,
    maxpool: str = "error",
    sample_ndim: int | None = None,
    path: str = "auto",
    example_input: torch.Tensor | None = None,
) -> SpikingNet:
    """Convert a QCFS-trained ANN into a :class:`SpikingNet` of IF neurons (the ANN is not modified).

    Each QCFS becomes ``OffsetSpikeIF(v_threshold=lambda, rho, ...)``; ``rho=0`` (default) gives the
    uncalibrated QCFS SNN, ``rho>0`` the calibrated one (or call :func:`sj_calib.calibrate` later).
    Runs :func:`preflight` first and raises :class:`UnsupportedModuleError` listing every unsupported
    module by name. ``fold_bn`` folds BN into the preceding conv/linear inside ``nn.Sequential``
    containers (other BNs are kept, evaluated in eval mode at every step: exact either way).
    A QCFS used at several places (a block calling one ``self.relu`` twice, as torchvision's) becomes one
    spiking layer per use, each with that QCFS's threshold (:func:`sj_calib.sharing.untie_shared`), so
    every layer has its own statistics and the depth counts every use.

    ``example_input``: a static batch ``[B, ...]`` (e.g. some training images). When given, the QCFS ANN
    is compared with its float twin on it (:func:`sj_calib.threshold_check.check_conversion`: top-1
    agreement with every QCFS as ``clamp(z, 0, lambda)``, the SNN's large-T limit); below 90% a
    :class:`~sj_calib.threshold_check.ConversionWarning` names the layers whose lambda exceeds the 99th
    percentile of their input (typically a large ``init_threshold`` that training did not move; the SNN's
    accuracy then swings with T). The result is kept as ``snn.conversion_check``.
    ``path``: the calibration path of :meth:`SpikingNet.set_path`. SpikingJelly's ``layer.Dropout`` /
    ``Dropout2d`` (identity in eval) are accepted and dropped.
    """
    check_options(rho, shift, saturate, iterations, path)
    bad = preflight(ann, maxpool=maxpool)
    if bad:
        pools = {n for n, m in ann.named_modules() if isinstance(m, _MAXPOOL)}
        hints = []
        if any(n not in pools for n, _ in bad):
            hints.append(
                "Swap ReLUs with sj_calib.replace_relu_by_qcfs before training; other modules are not "
                "exact on spikes."
            )
        if any(n in pools for n, _ in bad):
            hints.append(MAXPOOL_HINT)
        raise UnsupportedModuleError(bad, " ".join(hints))
    qcfs = [(n, m) for n, m in ann.named_modules() if isinstance(m, QCFS)]
    if not qcfs:
        raise ValueError("ann: no QCFS activation found; train with sj_calib.replace_relu_by_qcfs first")
    for n, m in qcfs:
        check_threshold(m.threshold.detach(), f"ann: QCFS {n!r} threshold")
    nd = sample_ndim if sample_ndim is not None else _sample_ndim(ann)
    body = copy.deepcopy(ann).eval()
    body, _ = untie_shared(body, QCFS, copy.deepcopy, replace_root=True, name="ann")
    functional.set_step_mode(body, "s")  # SpikingJelly's stateless layers then act on the [T*B, ...] stream
    if fold_bn:
        fold_batchnorm(body)

    def to_if(m):
        if isinstance(m, sj_layer.Dropout):
            return nn.Identity()
        if isinstance(m, QCFS):
            if abs(m.shift - 0.5) > 1e-12:
                raise ValueError(f"ann: QCFS shift must be 1/2 for conversion (v_0 = theta/2), got {m.shift}")
            layer = OffsetSpikeIF(
                float(m.threshold.detach().item()), rho, shift=shift, saturate=saturate, iterations=iterations
            )
            return TimeFlattened(layer)
        return None

    _swap(body, to_if)
    for p in body.parameters():
        p.requires_grad_(False)
    snn = SpikingNet(body, nd, T, path)
    if example_input is not None:
        snn.conversion_check = check_conversion(ann, example_input)
        if snn.conversion_check["agreement"] < MIN_AGREEMENT:
            warnings.warn(warning_text(snn.conversion_check), ConversionWarning, stacklevel=2)
    return snn

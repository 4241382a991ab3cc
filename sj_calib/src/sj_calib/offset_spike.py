"""Offset-spike calibration (COS, Hao et al., ICLR 2023) of one IF layer: the pure function and the layer.

For every sample and neuron, the layer pre-simulates ``rho`` steps on its real input, reads the residual
potential to find neurons with one spike too many (``v_rho < 0`` with at least one spike) or too few
(``v_rho >= 1``), moves their initial potential down / up, resets and runs the ``T`` main steps on the
same inputs (the first ``rho`` replayed), as the authors' released code does.

Reused from SpikingJelly: the neuron of the main run (``IFNode(v_threshold=1, v_reset=None)``, soft reset,
fires at ``H >= 1``, built through ``sj_common.compat.if_node`` so both SpikingJelly lines work) and
``base.MemoryModule`` for the layer. SpikingJelly has no offset-spike calibration, hence this module; the
``rho``-step pre-simulation is a three-op loop of the node's exact arithmetic (see ``_presim``: it needs
the pre-reset potential at every step, which the node only exposes through a costly recording).

Cost (issue #13): ``rho`` pre-simulation steps, then only the neurons whose initial potential moved replay
the window; the others' first ``rho`` main steps *are* their pre-simulation (same start, same inputs), and
the node continues every neuron from step ``rho``: ``T + f * rho`` neuron updates per layer for a share ``f``
of moved neurons (at most the ideal ``T + rho``; with more than half moved the whole window is replayed,
cheaper than gathering), bit-identical to re-running every neuron (``benchmarks/calib.py`` measures it).
Finding the moved neurons (``nonzero``) is a host sync on a GPU, so there (``path='auto'`` on CUDA, or
``path='sync_free'``) the shift and the replay run on masks over the whole window instead: ``T + rho``
updates, no host sync, the same bits (issue 24).

Fixes of the authors' reference code:

* the time dimension is explicit (``[T, B, ...]``), never guessed from the batch size;
* ``T < rho`` is a clear error here (the pre-simulation needs ``rho`` real inputs); networks handle it by
  simulating ``max(T, rho)`` steps and reading the first ``T`` (see :class:`sj_calib.SpikingNet`);
* the dead/buggy multi-pass machinery is replaced by a clean ``iterations`` option that re-detects from
  the shifted potential every pass;
* the optional ``shift='theta'`` (exactly one spike by the shift lemma) and ``saturate='skip'`` (no
  1001-theta pin for neurons that fired at every pre-simulation step) variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from sj_common.compat import if_node, set_initial_potential
from spikingjelly.activation_based import base

__all__ = [
    "offset_spike_if",
    "offset_spike_if_with_info",
    "CalibrationInfo",
    "OffsetSpikeIF",
    "offset_buckets",
]

_SHIFTS = ("reference", "theta")
_SATURATES = ("reference", "skip")
#: "gather": only the moved neurons are gathered and replayed (needs their indices: nonzero(), a host sync
#: on GPU; fastest on CPU). "sync_free": the shift and the replay run on masks over the whole window (no
#: host sync; the choice on CUDA). "auto": "sync_free" on CUDA tensors, "gather" elsewhere. Same bits.
PATHS = ("auto", "gather", "sync_free")
#: the reference code's constants: firing-test margins and the "no spike / no silent step" sentinels
_MARGIN_DOWN, _MARGIN_UP, _SENTINEL = 0.999, 1.001, 1000.0


@dataclass
class CalibrationInfo:
    """What one calibrated run did, all in threshold units, per sample and neuron (shape ``[B, ...]``).

    ``v0``: the initial potential used for the main run (1/2 where nothing was shifted).
    ``lowered`` / ``raised`` / ``saturated``: the first pass's masks (one spike too many / too few /
    fired at every pre-simulation step with ``v_rho >= 1``).
    ``offset_before`` / ``offset_after``: offset spikes psi = N - D over the ``rho``-step window, before
    the shift (N from the plain pre-simulation) and after it (N from the first ``rho`` main steps);
    D = clip(floor(U + 1/2), 0, rho) is the layer-local QCFS target with L = rho, U the summed input.
    ``presim_steps``: neuron updates spent on pre-simulation (``iterations * rho``).
    """

    v0: torch.Tensor
    lowered: torch.Tensor
    raised: torch.Tensor
    saturated: torch.Tensor
    offset_before: torch.Tensor
    offset_after: torch.Tensor
    presim_steps: int


def check_options(
    rho, shift: str = "reference", saturate: str = "reference", iterations: int = 1, path: str = "auto"
) -> None:
    """Raise a ``ValueError`` naming the argument when a calibration option is invalid."""
    if path not in PATHS:
        raise ValueError(f"path: expected one of {PATHS}, got {path!r}")
    if not isinstance(rho, int) or isinstance(rho, bool) or rho < 0:
        raise ValueError(f"rho: expected an int >= 0 (pre-simulation steps), got {rho!r}")
    if shift not in _SHIFTS:
        raise ValueError(f"shift: expected one of {_SHIFTS}, got {shift!r}")
    if saturate not in _SATURATES:
        raise ValueError(f"saturate: expected one of {_SATURATES}, got {saturate!r}")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations: expected an int >= 1, got {iterations!r}")


def _check(x_seq, v_threshold, rho, shift, saturate, iterations, path="auto", *, finite=False) -> float:
    if not isinstance(x_seq, torch.Tensor) or not x_seq.is_floating_point():
        raise TypeError(
            f"x_seq: expected a floating-point tensor [T, B, ...], got {type(x_seq).__name__}"
            + (f" of dtype {x_seq.dtype}" if isinstance(x_seq, torch.Tensor) else "")
        )
    if x_seq.dim() < 3:
        # a [B, F] batch would otherwise be read as B time steps of F neurons (issue #10)
        raise ValueError(
            f"x_seq: expected [T, B, *features] (at least 3-D, time first), got shape {tuple(x_seq.shape)}; "
            "a static batch [B, F] has no time dimension: pass x.unsqueeze(0).expand(T, *x.shape)"
        )
    if x_seq.shape[0] < 1:
        raise ValueError(f"x_seq: expected T >= 1 time steps, got shape {tuple(x_seq.shape)}")
    v_threshold = check_threshold(v_threshold)
    check_options(rho, shift, saturate, iterations, path)
    if rho > x_seq.shape[0]:
        raise ValueError(
            f"x_seq: the pre-simulation needs at least rho={rho} input steps, got T={x_seq.shape[0]} "
            f"(shape {tuple(x_seq.shape)}); simulate max(T, rho) steps and read the first T outputs "
            "(SpikingNet does this for static input)"
        )
    if finite:
        check_finite(x_seq, "x_seq")
    return v_threshold


def check_threshold(v_threshold, name: str = "v_threshold") -> float:
    """``v_threshold`` as a float; ``ValueError`` naming ``name`` unless it is one positive finite number."""
    if isinstance(v_threshold, torch.Tensor):
        if v_threshold.numel() != 1:
            raise ValueError(f"{name}: expected one scalar per layer, got shape {tuple(v_threshold.shape)}")
        v_threshold = float(v_threshold.item())
    ok = isinstance(v_threshold, (int, float)) and not isinstance(v_threshold, bool)
    if not ok or not math.isfinite(v_threshold) or not v_threshold > 0:
        raise ValueError(f"{name}: expected a positive finite number, got {v_threshold!r}")
    return float(v_threshold)


def check_finite(x: torch.Tensor, name: str) -> None:
    """``ValueError`` naming ``name`` when ``x`` holds NaN or +-inf (one pass over ``x``; a host sync on GPU).

    An IF neuron never fires on NaN (``NaN >= 1`` is false), so a NaN input would otherwise give all-zero
    spikes and a confident prediction from the biases alone (issue #10).
    """
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise ValueError(
            f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf of {x.numel()} "
            f"(first at index {first}, shape {tuple(x.shape)})"
        )


def _run_node(node, u_seq: torch.Tensor, v0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run SpikingJelly's IF node (threshold 1, soft reset) from ``v0`` on ``u_seq``; return spikes, final v."""
    node.store_v_seq = False
    node.reset()
    set_initial_potential(node, v0)
    spikes = node(u_seq)
    return spikes, node.v


def _presim(u: torch.Tensor, v0: torch.Tensor, spikes: torch.Tensor | None = None):
    """IF steps on ``u`` ``[R, N]`` from ``v0`` ``[N]``: spikes ``[R, N]``, pre-reset potential H ``[R, N]``, final v.

    Why not SpikingJelly's node here: the pre-simulation needs H at every step, which the node only gives
    through ``store_v_seq`` (it records the post-reset v and concatenates a copy per step) plus an add;
    this loop writes H and the spikes in place (three tensor ops a step). It does exactly the node's
    arithmetic (``H = v + u``, ``s = H >= 1``, ``v = H - s``), so its spikes and potentials are bit-identical
    to the node's, which the tests pin; the main run stays on the node.
    """
    h = torch.empty_like(u)
    s = torch.empty_like(u) if spikes is None else spikes
    v = v0
    for t in range(u.shape[0]):
        torch.add(v, u[t], out=h[t])
        torch.ge(h[t], 1.0, out=s[t])
        v = h[t] - s[t]
    return s, h, v


def offset_buckets(offset: torch.Tensor, n_buckets: int = 4) -> torch.Tensor:
    """Histogram of ``|offset|`` into buckets 0, 1, ..., n_buckets-2 and ">= n_buckets-1" (int64 [n_buckets])."""
    a = offset.detach().abs().round().long().clamp(max=n_buckets - 1).flatten()
    return torch.bincount(a, minlength=n_buckets).cpu()


def _new_node():
    return if_node(v_threshold=1.0, v_reset=None, store_v_seq=False, step_mode="m")


def use_sync_free(path: str, x: torch.Tensor) -> bool:
    """Whether ``path`` (one of :data:`PATHS`) takes the sync-free path for a tensor ``x``."""
    return path == "sync_free" or (path == "auto" and x.is_cuda)


def _shifted_v0(v0, lower, up, sat, s, h, shift, saturate, sync_free=False):
    """The next initial potentials (flat ``[N]``) from one pass's masks, spikes and H (``[rho, N]``)."""
    dt = v0.dtype
    if shift == "theta":
        v0 = v0 - lower.to(dt) + up.to(dt)
    elif sync_free:
        # the gather branch's arithmetic on every neuron: a neuron that does not move gets
        # v0 - 0 * d_down + 0 * d_up = v0 (d_down, d_up are finite), so the bits are the same
        big = torch.finfo(h.dtype).max / 4
        d_down = ((h + (1.0 - s) * big).amin(0) - _MARGIN_DOWN).clamp_(min=1.0)
        d_up = (_MARGIN_UP - (h - s * big).amax(0)).clamp_(min=1.0)
        v0 = v0.addcmul(lower.to(dt), d_down, value=-1.0).addcmul_(up.to(dt), d_up)
    else:
        # lowest pre-reset H among spiking steps / highest among silent steps, computed only for the
        # neurons that move (the same element-wise arithmetic as on the whole tensor, so the same bits).
        # Arithmetic masking is ~5x faster than masked_fill on CPU; a neuron with no such step gets a
        # value other than the reference's +-1000 sentinel, but is never shifted by it (lower needs a
        # spike, a non-saturated raise a silent step; saturated ones are handled below).
        idx = (lower | up).nonzero().squeeze(1)
        if idx.numel():
            hs, ss = h.index_select(1, idx), s.index_select(1, idx)
            big = torch.finfo(h.dtype).max / 4
            h_plus = (hs + (1.0 - ss) * big).amin(0)
            h_minus = (hs - ss * big).amax(0)
            d_down = (h_plus - _MARGIN_DOWN).clamp_(min=1.0)
            d_up = (_MARGIN_UP - h_minus).clamp_(min=1.0)
            moved = v0.index_select(0, idx)
            moved = moved.addcmul(lower.index_select(0, idx).to(dt), d_down, value=-1.0)
            moved = moved.addcmul_(up.index_select(0, idx).to(dt), d_up)
            v0 = v0.index_copy(0, idx, moved)
    if saturate == "reference":
        # the reference's d_up with no silent step: 1.001 + 1000 -> fires at every step after the window
        v0 = v0.masked_fill(sat, 0.5 + _MARGIN_UP + _SENTINEL)
    return v0


@torch.no_grad()
def _calibrated_spikes(node, u_seq, rho, shift, saturate, iterations, want_info, sync_free=False):
    """COS on normalized input ``u_seq`` [T, B, ...] (threshold units). Returns spikes {0,1} and info.

    ``sync_free``: no host synchronisation (for CUDA): the shift is computed on every neuron and the whole
    window is replayed from the new initial potentials (same bits as the gather path; ``want_info``
    still syncs nothing here, the layer's recording does).

    Cost: ``rho`` pre-simulation steps on every neuron, ``T`` main steps, and the first ``rho`` main steps
    again only for the neurons whose initial potential moved: a neuron left at v_0 = 1/2 repeats its
    pre-simulation exactly (same inputs, same start), so its first ``rho`` main steps are taken from it and
    the node continues from its potential at step ``rho``. The result is bit-identical to re-running every
    neuron from its v_0 (pinned by tests/calib/test_offset_spike.py against that algorithm).
    """
    steps, shape = u_seq.shape[0], u_seq.shape[1:]
    half = torch.full_like(u_seq[0], 0.5)
    if rho == 0:
        spikes, _ = _run_node(node, u_seq, half)
        info = None
        if want_info:
            z, zero = torch.zeros_like(half, dtype=torch.bool), torch.zeros_like(half)
            info = CalibrationInfo(half, z, z, z, zero, zero, presim_steps=0)
        return spikes, info
    u = u_seq.reshape(steps, -1)
    out = torch.empty_like(u)
    v_half = half.reshape(-1)
    # pass 1 from v_0 = 1/2, written straight into the first rho main steps
    s, h, v_first = _presim(u[:rho], v_half, out[:rho])
    v0, masks, n_before = v_half, None, None
    for k in range(iterations):
        if k:
            s, h, v_rho = _presim(u[:rho], v0)
        else:
            v_rho = v_first
        n = s.sum(0)
        # residual as if the run had started from 1/2: equals v_rho in pass 1; in later passes it measures
        # the offset still left after the shifts so far (pass k shifts the neurons with |psi| >= k).
        w = v_rho - (v0 - 0.5)
        lower = (w < 0) & (n > 0)
        up = w >= 1
        sat = up & (n >= rho)
        up = up & ~sat
        if masks is None:
            masks, n_before = (lower, up, sat), n
        v0 = _shifted_v0(v0, lower, up, sat, s, h, shift, saturate, sync_free)
    # main run: replay the window for the neurons that moved, then the node continues from step rho
    v_state = v_first
    moved = None if sync_free else (v0 != 0.5).nonzero().squeeze(1)
    if moved is None or 2 * moved.numel() > v0.numel():
        # replay everyone: sync-free, and cheaper than gathering when most moved (same bits: the others
        # start from 1/2 again and repeat their pre-simulation)
        _, _, v_state = _presim(u[:rho], v0, out[:rho])
    elif moved.numel():
        s_m, _, v_m = _presim(u[:rho].index_select(1, moved), v0.index_select(0, moved))
        out[:rho].index_copy_(1, moved, s_m)
        v_state = v_state.index_copy(0, moved, v_m)
    if steps > rho:
        rest, _ = _run_node(node, u_seq[rho:], v_state.reshape(shape))
        out[rho:].copy_(rest.reshape(steps - rho, -1))
    spikes = out.reshape(u_seq.shape)
    if not want_info:
        return spikes, None
    target = torch.floor(u_seq[:rho].sum(0) + 0.5).clamp(0, rho)
    before = n_before.reshape(shape) - target
    after = spikes[:rho].sum(0) - target
    lowered, raised, saturated = (m.reshape(shape) for m in masks)
    info = CalibrationInfo(
        v0.reshape(shape), lowered, raised, saturated, before, after, presim_steps=rho * iterations
    )
    return spikes, info


def offset_spike_if_with_info(
    x_seq: torch.Tensor,
    v_threshold: float,
    rho: int,
    *,
    shift: str = "reference",
    saturate: str = "reference",
    iterations: int = 1,
    node=None,
    path: str = "auto",
) -> tuple[torch.Tensor, CalibrationInfo]:
    """:func:`offset_spike_if` that also returns a :class:`CalibrationInfo` (masks, v0, offset spikes)."""
    theta = _check(x_seq, v_threshold, rho, shift, saturate, iterations, path, finite=True)
    node = node if node is not None else _new_node()
    sync_free = use_sync_free(path, x_seq)
    spikes, info = _calibrated_spikes(node, x_seq / theta, rho, shift, saturate, iterations, True, sync_free)
    return spikes * theta, info


def offset_spike_if(
    x_seq: torch.Tensor,
    v_threshold: float,
    rho: int,
    *,
    shift: str = "reference",
    saturate: str = "reference",
    iterations: int = 1,
    node=None,
    path: str = "auto",
) -> torch.Tensor:
    """One IF layer with offset-spike calibration, as a pure function on tensors.

    Args:
        x_seq: input current ``[T, B, *features]`` of the layer (time first, ``T >= rho``, at least 3-D:
            a 2-D tensor is refused rather than guessed to be ``[T, N]`` or ``[B, F]``), finite values
            (NaN or inf is a ``ValueError``: an IF neuron never fires on NaN).
        v_threshold: the layer's threshold theta (QCFS lambda), a positive finite scalar.
        rho: pre-simulation steps; 0 gives the plain IF neuron with v_0 = theta/2 (uncalibrated QCFS SNN).
        shift: ``'reference'`` (shift by theta, or by the larger in-window distance H+ - 0.999 /
            1.001 - H- when theta would change nothing inside the window, as the reference code) or
            ``'theta'`` (always exactly theta: changes the count by exactly one spike, over any horizon).
        saturate: ``'reference'`` pins neurons that fired at every pre-simulation step with v_rho >= 1
            to v_0 = theta * 1001.501 (full rate, as the reference); ``'skip'`` leaves them alone (their
            offset against the clipped target is 0).
        iterations: calibration passes; pass k re-pre-simulates from the shifted potential and shifts
            again where an offset remains (costs ``rho`` more steps per pass).
        node: optional SpikingJelly IF node (threshold 1, ``v_reset=None``, multi-step) for the main
            run; a fresh one otherwise.
        path: ``'gather'`` replays only the neurons whose initial potential moved (finding them is a
            host sync on a GPU; fastest on CPU), ``'sync_free'`` works on masks over the whole window
            (no host sync in the calibration), ``'auto'`` (default) takes ``'sync_free'`` on CUDA and
            ``'gather'`` elsewhere. Both give the same bits. (This function still checks its input for
            NaN/inf, one sync; :class:`OffsetSpikeIF` does not.)

    Returns:
        ``[T, B, ...]`` output spikes times theta (same dtype/device as ``x_seq``).
    """
    theta = _check(x_seq, v_threshold, rho, shift, saturate, iterations, path, finite=True)
    node = node if node is not None else _new_node()
    sync_free = use_sync_free(path, x_seq)
    spikes, _ = _calibrated_spikes(node, x_seq / theta, rho, shift, saturate, iterations, False, sync_free)
    return spikes * theta


class OffsetSpikeIF(base.MemoryModule):
    """Calibrating IF layer: an IF neuron (theta = ``v_threshold``, soft reset, v_0 = theta/2) with
    offset-spike calibration, input ``[T, B, ...]`` -> output ``[T, B, ...]`` (spikes times theta).

    .. warning:: **Not a drop-in** ``IFNode``. Its output is ``spikes * theta`` (the value a spike carries to
       the next layer of a converted network), not binary spikes; it is inference-only (no surrogate
       gradient: it cannot be fine-tuned) and multi-step only. Read spikes as ``out / layer.spike_scale``;
       :func:`sj_common.metrics.firing_rates` does so and reports this layer (not its inner ``self.node``,
       which sees only the steps after the pre-simulation) as one neuron layer.

    It is the voltage-scaler sandwich of SpikingJelly's converter (``VoltageScaler(1/theta)`` ->
    ``IFNode(1)`` -> ``VoltageScaler(theta)``) with the scaling done inline (``VoltageScaler`` keeps a
    float32 scale, which would round float64 inputs) and the calibration of :func:`offset_spike_if`
    around the inner SpikingJelly ``IFNode`` (``self.node``). ``rho=0`` is the uncalibrated QCFS SNN layer.

    Input ``[T, B, *features]`` (at least 3-D). The layer does not scan its input for NaN (one more pass per
    layer); :class:`sj_calib.SpikingNet` checks the network's input once, and the pure functions check theirs.
    ``path`` (``'auto'``, ``'gather'``, ``'sync_free'``): see :func:`offset_spike_if`; with ``'auto'`` a
    CUDA input runs without host synchronisation (unless ``record=True``: the statistics are read back).

    Multi-step only (``step_mode='m'``). Every forward starts from a reset neuron and recomputes its
    initial potentials from the current batch, so ``functional.reset_net`` between batches changes
    nothing (it is still honoured). With ``record=True`` it accumulates statistics across batches
    (:meth:`stats`, cleared by :meth:`clear_stats`, not by ``reset``): spike counts per main step,
    offset-spike histograms before/after, and pre-simulation work.
    """

    def __init__(
        self,
        v_threshold: float,
        rho: int = 4,
        *,
        shift: str = "reference",
        saturate: str = "reference",
        iterations: int = 1,
        step_mode: str = "m",
        path: str = "auto",
    ):
        super().__init__()
        if step_mode != "m":
            raise ValueError(f"step_mode: OffsetSpikeIF is multi-step only ('m'), got {step_mode!r}")
        self.v_threshold = check_threshold(v_threshold)
        self.rho, self.shift, self.saturate, self.iterations = rho, shift, saturate, iterations
        check_options(rho, shift, saturate, iterations, path)
        self.path = path
        self.step_mode = "m"
        self._ready = True
        self.node = _new_node()
        self.register_memory("v0", None)  # last initial potential (threshold units), for inspection
        self.record = False
        self.clear_stats()

    @property
    def spike_scale(self) -> float:
        """The value one output spike carries (theta): ``spikes = output / spike_scale``."""
        return self.v_threshold

    def supported_step_mode(self):
        # SpikingJelly 0.0.0.0.14's MemoryModule.__init__ sets step_mode='s' first: allow it until ready
        return ("m",) if self.__dict__.get("_ready") else ("s", "m")

    def clear_stats(self) -> None:
        self._spikes_per_step = None  # float64 [T]
        self._neurons = 0  # neurons x samples seen
        self._hist = torch.zeros(2, 4, dtype=torch.long)
        self._flags = torch.zeros(3, dtype=torch.long)
        self._presim = 0

    def stats(self) -> dict:
        """Accumulated statistics since :meth:`clear_stats` (needs ``record=True`` during the runs)."""
        return {
            "spikes_per_step": None if self._spikes_per_step is None else self._spikes_per_step.tolist(),
            "neuron_samples": self._neurons,
            "offset_hist_before": self._hist[0].tolist(),
            "offset_hist_after": self._hist[1].tolist(),
            "lowered": int(self._flags[0]),
            "raised": int(self._flags[1]),
            "saturated": int(self._flags[2]),
            "presim_steps": self._presim,
        }

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        theta = _check(
            x_seq, self.v_threshold, self.rho, self.shift, self.saturate, self.iterations, self.path
        )
        u_seq, sync_free = x_seq / theta, use_sync_free(self.path, x_seq)
        spikes, info = _calibrated_spikes(
            self.node, u_seq, self.rho, self.shift, self.saturate, self.iterations, self.record, sync_free
        )
        if self.record:
            self.v0 = info.v0
            per_step = spikes.flatten(1).sum(1).double().cpu()
            if self._spikes_per_step is None or len(self._spikes_per_step) != len(per_step):
                if self._spikes_per_step is not None:
                    raise ValueError(
                        f"x_seq: recorded runs must share T; got T={len(per_step)} after "
                        f"T={len(self._spikes_per_step)} (call clear_stats() between)"
                    )
                self._spikes_per_step = per_step
            else:
                self._spikes_per_step += per_step
            self._neurons += spikes[0].numel()
            self._hist[0] += offset_buckets(info.offset_before)
            self._hist[1] += offset_buckets(info.offset_after)
            self._flags += torch.stack([info.lowered.sum(), info.raised.sum(), info.saturated.sum()]).cpu()
            self._presim = info.presim_steps
        return spikes * theta

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold:.4g}, rho={self.rho}, shift={self.shift!r}, "
            f"saturate={self.saturate!r}, iterations={self.iterations}, path={self.path!r}, step_mode='m'"
        )

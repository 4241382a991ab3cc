"""Per-layer offset-spike histogram: how many (neuron, sample) pairs are off by 0, 1, 2, >= 3 spikes.

The reference code's statistics mode (``--cal_message``) promised this but never worked (its rates stay
``None``). Here the offset of a neuron is psi = N - D over the ``rho``-step pre-simulation window,
D = clip(floor(U + 1/2), 0, rho) the layer-local QCFS target with L = rho (U: the summed normalized input),
measured before the shift (plain pre-simulation) and after it (first ``rho`` main steps).
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional

from .conversion import SpikingNet, spiking_layers

__all__ = ["offset_histogram", "BUCKETS"]

BUCKETS = ["0", "1", "2", ">=3"]


@torch.no_grad()
def offset_histogram(
    snn: SpikingNet, x: torch.Tensor, T: int | None = None
) -> dict[str, dict[str, list[int]]]:
    """Run the calibrated ``snn`` on ``x`` (static ``[B, ...]`` with ``T``, or ``[T, B, ...]``) and return
    ``{layer_name: {"before": [n0, n1, n2, n3+], "after": [...]}}`` for every spiking layer.

    Raises ``ValueError`` when ``snn`` is not calibrated (``rho = 0``: there is no window to measure).
    """
    if not isinstance(snn, SpikingNet):
        raise TypeError(
            f"snn: expected a SpikingNet (sj_calib.convert / calibrate), got {type(snn).__name__}"
        )
    if snn.rho == 0:
        raise ValueError(
            "snn: rho = 0 (uncalibrated); the histogram needs a pre-simulation window (calibrate it)"
        )
    snn.set_record(True)
    try:
        snn(x, T=T)
        out = {
            name: {"before": m.stats()["offset_hist_before"], "after": m.stats()["offset_hist_after"]}
            for name, m in spiking_layers(snn.body)
        }
    finally:
        snn.set_record(False)
        functional.reset_net(snn)
    return out

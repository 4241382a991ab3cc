"""sj_transfer: static-to-event knowledge transfer for SpikingJelly (He et al., AAAI 2024).

Pieces usable around any SpikingJelly model: :func:`linear_cka`, :class:`DomainTransferLoss`,
:class:`SlidingReplacement` (with :class:`PowerSchedule` / :class:`StepSchedule`), :func:`tet_loss`,
:class:`QGateGrad`. The paper's network and the training wrapper live in :mod:`sj_transfer.models`
and :mod:`sj_transfer.train`.
"""

from .cka import linear_cka, linear_cka_per_step
from .loss import DomainTransferLoss, TransferLossOutput
from .sampler import PowerSchedule, SlidingReplacement, StepSchedule, make_schedule, replacement_probability
from .surrogate import QGateGrad, back_ei_gate_grad
from .tet import tet_loss

__version__ = "0.1.0"

__all__ = [
    "linear_cka",
    "linear_cka_per_step",
    "DomainTransferLoss",
    "TransferLossOutput",
    "SlidingReplacement",
    "PowerSchedule",
    "StepSchedule",
    "make_schedule",
    "replacement_probability",
    "tet_loss",
    "QGateGrad",
    "back_ei_gate_grad",
]

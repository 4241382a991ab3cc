"""sj_transfer: static-to-event knowledge transfer for SpikingJelly (He et al., AAAI 2024).

Pieces usable around any SpikingJelly model: :func:`linear_cka`, :class:`DomainTransferLoss`,
:class:`SlidingReplacement` (with :class:`PowerSchedule` / :class:`StepSchedule`), :func:`tet_loss`,
:func:`QGateGrad`. The paper's networks (:class:`TransferVGGSNN`; the reference's N-Omniglot :class:`TransferSCNN` and CEP-DVS
:class:`TransferResNet18`), the engine wrapper (:class:`TransferModel`,
:func:`transfer_step`), config-driven runs (:mod:`sj_transfer.recipe`) and the CLI (:mod:`sj_transfer.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sj_common.lazy import lazy_exports

# names are imported on first use (PEP 562): `import sj_transfer` and its command line's --help load no torch
_LAZY = {
    "linear_cka": "cka",
    "linear_cka_per_step": "cka",
    "DomainTransferLoss": "loss",
    "TransferLossOutput": "loss",
    "TransferVGGSNN": "models",
    "TransferSCNN": "scnn",
    "TransferResNet18": "resnet",
    "PowerSchedule": "sampler",
    "SlidingReplacement": "sampler",
    "StepSchedule": "sampler",
    "make_schedule": "sampler",
    "replacement_probability": "sampler",
    "QGateGrad": "surrogate",
    "back_ei_gate_grad": "surrogate",
    "tet_loss": "tet",
    "RandomCropFrames": "train",
    "TransferModel": "train",
    "transfer_step": "train",
}

if TYPE_CHECKING:
    from .cka import linear_cka, linear_cka_per_step
    from .loss import DomainTransferLoss, TransferLossOutput
    from .models import TransferVGGSNN
    from .resnet import TransferResNet18
    from .sampler import (
        PowerSchedule,
        SlidingReplacement,
        StepSchedule,
        make_schedule,
        replacement_probability,
    )
    from .scnn import TransferSCNN
    from .surrogate import QGateGrad, back_ei_gate_grad
    from .tet import tet_loss
    from .train import RandomCropFrames, TransferModel, transfer_step

# Lockstep versioning: sj-common, sj-calib, sj-bkd and sj-transfer share this one version and are released
# together; each plugin requires sj-common >= this version and < the next minor (0.x) / major release.
# Change it only with `python scripts/set_version.py X.Y.Z` (all four packages and the bounds);
# tests/test_release.py checks that they agree.
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
    "TransferVGGSNN",
    "TransferSCNN",
    "TransferResNet18",
    "TransferModel",
    "transfer_step",
    "RandomCropFrames",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

"""sj_bkd: blurred knowledge distillation (BKDSNN, Xu et al., ECCV 2024) from ANN teachers to SpikingJelly students.

Public API: :class:`BlurredDistillationHead` (feature loss; baselines :class:`AlignedMSEHead` = kdsnn,
:class:`LayerwiseMSEHead` = lasnn), :func:`kd_loss` / :func:`wsld_loss` (logit
losses), :class:`FeatureTap` (named-layer taps), :func:`create_model` (students and teachers),
:class:`DistillationModel` + :func:`distill_step` (training wrapper for ``sj_common.engine.fit``).
"""

from .distill import MODES, DistillationModel, distill_step
from .head import AlignedMSEHead, BlurredDistillationHead, LayerwiseMSEHead
from .logits import kd_loss, wsld_loss
from .models import create_model, list_models
from .taps import FeatureTap

__version__ = "0.1.0"
__all__ = [
    "AlignedMSEHead",
    "BlurredDistillationHead",
    "DistillationModel",
    "FeatureTap",
    "LayerwiseMSEHead",
    "MODES",
    "create_model",
    "distill_step",
    "kd_loss",
    "list_models",
    "wsld_loss",
]

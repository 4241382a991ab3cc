"""sj_bkd: blurred knowledge distillation (BKDSNN, Xu et al., ECCV 2024) from ANN teachers to SpikingJelly students.

Public API: :class:`BlurredDistillationHead` (feature loss; baselines :class:`AlignedMSEHead` = kdsnn,
:class:`LayerwiseMSEHead` = lasnn), :func:`kd_loss` / :func:`wsld_loss` (logit
losses), :class:`FeatureTap` (named-layer taps), :func:`create_model` (students and teachers),
:class:`DistillationModel` + :func:`distill_step` (training wrapper for ``sj_common.engine.fit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sj_common.lazy import lazy_exports

# names are imported on first use (PEP 562): `import sj_bkd` and its command line's --help load no torch
_LAZY = {
    "MODES": "distill",
    "DistillationModel": "distill",
    "distill_step": "distill",
    "AlignedMSEHead": "head",
    "BlurredDistillationHead": "head",
    "LayerwiseMSEHead": "head",
    "kd_loss": "logits",
    "wsld_loss": "logits",
    "create_model": "models",
    "list_models": "models",
    "FeatureTap": "taps",
}

if TYPE_CHECKING:
    from .distill import MODES, DistillationModel, distill_step
    from .head import AlignedMSEHead, BlurredDistillationHead, LayerwiseMSEHead
    from .logits import kd_loss, wsld_loss
    from .models import create_model, list_models
    from .taps import FeatureTap

# Lockstep versioning: sj-common, sj-calib, sj-bkd and sj-transfer share this one version and are released
# together; each plugin requires sj-common >= this version and < the next minor (0.x) / major release.
# Change it only with `python scripts/set_version.py X.Y.Z` (all four packages and the bounds);
# tests/test_release.py checks that they agree.
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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

"""TET loss (Deng et al. 2022) with optional per-time-step weights, as the transfer loss uses it.

The one implementation lives in :mod:`sj_common.engine.steps` (the engine's ``loss="tet"`` uses it
too); this module re-exports it under the names sj_transfer has always offered.
"""

from __future__ import annotations

from sj_common.engine.steps import check_sequence_logits, per_step_cross_entropy, tet_loss

__all__ = ["tet_loss", "per_step_cross_entropy", "check_sequence_logits"]

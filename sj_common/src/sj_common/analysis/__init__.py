"""Analysis tools for multi-step SpikingJelly networks (``[T, B, ...]`` in, state reset around every call).

* :mod:`~sj_common.analysis.cam`: Grad-CAM and its variants through the ``grad-cam`` package (optional
  extra ``sj-common[analysis]``, imported only when a map is computed): :func:`snn_cam`.
* :mod:`~sj_common.analysis.landscape`: 1-D / 2-D loss landscapes along filter-normalised random
  directions (Li et al., 2018): :func:`landscape_1d`, :func:`landscape_2d`.
* :mod:`~sj_common.analysis.cka_map`: float64 linear CKA between every pair of layers or time steps:
  :func:`collect_features`, :func:`cka_map`, :func:`cka_time_map`.
* :mod:`~sj_common.analysis.figures`: :func:`plot_cams`, :func:`plot_landscapes`, :func:`plot_cka_maps`.

``examples/transfer_analysis.py`` writes all three figures for a trained ``sj_transfer`` run and its
event-only baseline.
"""

from .cam import (
    METHODS,
    SNNImageClassifier,
    default_target_layer,
    fold_time,
    multistep_reshape,
    snn_cam,
    spatial_layers,
)
from .cka_map import cka_map, cka_time_map, collect_features, default_layers, linear_cka
from .figures import event_rgb, plot_cams, plot_cka_maps, plot_landscapes
from .landscape import LOSSES, Landscape, evaluate, grid, landscape_1d, landscape_2d, random_direction

__all__ = [
    "METHODS",
    "SNNImageClassifier",
    "default_target_layer",
    "fold_time",
    "multistep_reshape",
    "snn_cam",
    "spatial_layers",
    "cka_map",
    "cka_time_map",
    "collect_features",
    "default_layers",
    "linear_cka",
    "event_rgb",
    "plot_cams",
    "plot_cka_maps",
    "plot_landscapes",
    "LOSSES",
    "Landscape",
    "evaluate",
    "grid",
    "landscape_1d",
    "landscape_2d",
    "random_direction",
]

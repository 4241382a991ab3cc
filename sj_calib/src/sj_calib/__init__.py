"""sj_calib: QCFS training, conversion to IF SNNs and offset-spike calibration (Hao et al., ICLR 2023).

>>> from sj_calib import replace_relu_by_qcfs, convert, calibrate
>>> ann = replace_relu_by_qcfs(my_cnn, L=4)            # train it as usual
>>> snn = convert(ann, T=4, example_input=train_images)  # uncalibrated QCFS SNN, [B, ...] or [T, B, ...] in;
>>> #   example_input: warns (ConversionWarning) when the learned thresholds do not fit the activations
>>> cos = calibrate(snn, rho=4)                         # offset-spike calibrated copy (also any IF SNN)
>>> logits = cos(images).mean(0)                        # [T, B, K] -> mean over time
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sj_common.lazy import lazy_exports

# names are imported on first use (PEP 562): `import sj_calib` and its command line's --help load no torch
_LAZY = {
    "calibrate": "calibration",
    "SpikingNet": "conversion",
    "TimeFlattened": "conversion",
    "UnsupportedModuleError": "conversion",
    "convert": "conversion",
    "fold_batchnorm": "conversion",
    "preflight": "conversion",
    "spiking_layers": "conversion",
    "offset_histogram": "histogram",
    "CalibrationInfo": "offset_spike",
    "OffsetSpikeIF": "offset_spike",
    "offset_buckets": "offset_spike",
    "offset_spike_if": "offset_spike",
    "offset_spike_if_with_info": "offset_spike",
    "QCFS": "qcfs",
    "qcfs_layers": "qcfs",
    "replace_maxpool_by_avgpool": "qcfs",
    "replace_relu_by_qcfs": "qcfs",
    "ConversionWarning": "threshold_check",
    "check_conversion": "threshold_check",
}

if TYPE_CHECKING:
    from .calibration import calibrate
    from .conversion import (
        SpikingNet,
        TimeFlattened,
        UnsupportedModuleError,
        convert,
        fold_batchnorm,
        preflight,
        spiking_layers,
    )
    from .histogram import offset_histogram
    from .offset_spike import (
        CalibrationInfo,
        OffsetSpikeIF,
        offset_buckets,
        offset_spike_if,
        offset_spike_if_with_info,
    )
    from .qcfs import QCFS, qcfs_layers, replace_maxpool_by_avgpool, replace_relu_by_qcfs
    from .threshold_check import ConversionWarning, check_conversion

# Lockstep versioning: sj-common, sj-calib, sj-bkd and sj-transfer share this one version and are released
# together; each plugin requires sj-common >= this version and < the next minor (0.x) / major release.
# Change it only with `python scripts/set_version.py X.Y.Z` (all four packages and the bounds);
# tests/test_release.py checks that they agree.
__version__ = "0.1.0"

__all__ = [
    "QCFS",
    "replace_relu_by_qcfs",
    "replace_maxpool_by_avgpool",
    "qcfs_layers",
    "offset_spike_if",
    "offset_spike_if_with_info",
    "offset_buckets",
    "offset_histogram",
    "CalibrationInfo",
    "OffsetSpikeIF",
    "convert",
    "calibrate",
    "preflight",
    "fold_batchnorm",
    "spiking_layers",
    "SpikingNet",
    "TimeFlattened",
    "UnsupportedModuleError",
    "ConversionWarning",
    "check_conversion",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

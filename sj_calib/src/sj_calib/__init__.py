"""sj_calib: QCFS training, conversion to IF SNNs and offset-spike calibration (Hao et al., ICLR 2023).

>>> from sj_calib import replace_relu_by_qcfs, convert, calibrate
>>> ann = replace_relu_by_qcfs(my_cnn, L=4)            # train it as usual
>>> snn = convert(ann, T=4)                             # uncalibrated QCFS SNN, [B, ...] or [T, B, ...] in
>>> cos = calibrate(snn, rho=4)                         # offset-spike calibrated copy (also any IF SNN)
>>> logits = cos(images).mean(0)                        # [T, B, K] -> mean over time
"""

from .calibrate import calibrate
from .convert import (
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
]

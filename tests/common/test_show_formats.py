"""``sj_common.show.read_event_file`` (what ``sj-common show`` reads with) on the formats of issue 20."""

import numpy as np
import pytest


def test_read_event_file_new_formats(tmp_path):
    """Issue 20: one CEP-DVS .mat, one whole N-Omniglot recording and one original DVS Gesture trial."""
    pytest.importorskip("tonic")
    pytest.importorskip("aedat")
    from sj_common.show import read_event_file

    from .event_files import nomniglot_recording, write_aedat4, write_aedat31, write_cep_mat

    ev, sensor, fmt = read_event_file(
        write_cep_mat(tmp_path / "00001.mat", [3, 9], [4, 1], [10, 20], [-1, 1])
    )
    assert (fmt, sensor, ev["p"].tolist()) == ("cepdvs", (10, 5, 2), [0, 1])
    rec, _ = nomniglot_recording(np.random.default_rng(0))
    path = write_aedat4(tmp_path / "0001.aedat4", rec, compression="lz4")
    ev, sensor, fmt = read_event_file(path, "nomniglot")
    assert (fmt, sensor, len(ev)) == ("nomniglot", (346, 260, 2), len(rec))  # every drawer, uncropped
    with pytest.raises(ValueError, match="outside the sensor range"):
        read_event_file(path)  # .aedat4 defaults to CIFAR10-DVS (128 x 128)
    path = write_aedat31(tmp_path / "user01_lab.aedat", [1, 2], [3, 4], [5, 6], [0, 1])
    ev, sensor, fmt = read_event_file(path, "gesture")
    assert (fmt, sensor, ev["x"].tolist()) == ("gesture", (128, 128, 2), [1, 2])

"""The original DVS128 Gesture release (issue 20): synthetic AEDAT 3.1 trials (with a special-event packet to
skip and a timestamp-overflow packet) read through SpikingJelly's reader, cut by the labels csv as
SpikingJelly cuts them, split by the trials lists; errors name the file and the csv line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tonic")

from sj_common.data import event_dataset  # noqa: E402
from sj_common.data.events import DVSGesture  # noqa: E402
from sj_common.data.gesture_aedat import read_gesture_aedat  # noqa: E402

from .event_files import make_gesture_release, write_aedat31  # noqa: E402

TRIALS = {"train": ["user01_fluorescent", "user02_led"], "test": ["user24_lab"]}


def test_aedat31_decoded_field_by_field_special_packet_skipped(tmp_path):
    x, y, t, p = [0, 127, 5, 64], [127, 0, 9, 64], [7, 8, 8, 2**31 - 1], [0, 1, 1, 0]
    path = write_aedat31(tmp_path / "u.aedat", x, y, t, p, special=True)
    ev = read_gesture_aedat(path)
    for f, want in zip("xytp", (x, y, t, p)):
        np.testing.assert_array_equal(ev[f], want, err_msg=f)
    over = read_gesture_aedat(write_aedat31(tmp_path / "o.aedat", x, y, t[:3], p[:3], overflow=1))
    np.testing.assert_array_equal(over["t"], np.asarray(t[:3]) + 2**31)  # t | overflow << 31


def test_items_split_and_labels(tmp_path):
    written = make_gesture_release(tmp_path, TRIALS)
    train = event_dataset("DVS128 Gesture", tmp_path / "DvsGesture", "train")
    test = DVSGesture(tmp_path, "test")  # also found under root/DvsGesture
    assert train.release == "original" and len(train) == 6 and len(test) == 3
    np.testing.assert_array_equal(train.targets, [0, 10, 0, 0, 10, 0])  # class 1..11 -> 0..10
    assert train.users == [1, 1, 1, 2, 2, 2] and test.lighting == ["lab"] * 3
    assert train.classes[10] == "Other gestures"
    x, y, t, p = written["user02_led"]
    ev, label = train[4]  # user02's second gesture: [1500, 2500) + 2**31
    keep = (t >= 1500 + 2**31) & (t < 2500 + 2**31)
    assert label == 10 and keep.sum() == 20
    for f, want in zip("xytp", (x, y, t, p)):
        np.testing.assert_array_equal(ev[f], np.asarray(want)[keep], err_msg=f)
    frames = event_dataset("dvsgesture", tmp_path, "test", T=5, bins="cover")
    fx, fy = frames[0]
    assert tuple(fx.shape) == (5, 2, 128, 128) and float(fx.sum()) == 10 and fy == 0


def test_bad_inputs_name_file_and_line(tmp_path):
    make_gesture_release(tmp_path, TRIALS)
    folder = tmp_path / "DvsGesture"
    csv = folder / "user24_lab_labels.csv"
    csv.write_text("class,startTime_usec,endTime_usec\n1,1000,1500\n12,1500,2500\n")
    with pytest.raises(ValueError, match=rf"{csv} line 3: .*class 12 is not in 1..11"):
        DVSGesture(tmp_path, "test")
    csv.write_text("class,startTime_usec,endTime_usec\n1,1000,1500\n3,9000,9100\n")
    ds = DVSGesture(tmp_path, "test")
    with pytest.raises(ValueError, match=rf"{csv} line 3: the gesture \[9000, 9100\) us holds no event"):
        ds[1]
    aedat = folder / "user24_lab.aedat"
    write_aedat31(aedat, [1, 2], [1, 2], [100, 50], [0, 1])
    with pytest.raises(ValueError, match=rf"{aedat}: invalid events: field 't' at index 1 .*decreases"):
        ds[0]
    aedat.write_bytes(aedat.read_bytes()[:-3])  # a truncated event
    with pytest.raises(ValueError, match=rf"cannot read {aedat}"):
        ds[0]

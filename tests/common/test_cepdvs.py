"""CEP-DVS (issue 20): synthetic MATLAB v5 ``.mat`` samples decoded field by field, labels from
``pathFile.csv``, the reference's per-class split, the inferred facts as parameters, the static images paired
by class, and errors that name the file and the csv line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("tonic")

from sj_common.data import event_dataset, static_dataset  # noqa: E402
from sj_common.data.cepdvs import CEP_CLASSES, CEPDVS, read_cep_mat  # noqa: E402

from .event_files import make_cep_root, write_cep_mat  # noqa: E402


def test_mat_decoded_field_by_field(tmp_path):
    x, y, ts, p = [3, 239, 0], [0, 179, 5], [10, 10, 2**40], [-1, 1, -1]
    path = write_cep_mat(tmp_path / "00007.mat", x, y, ts, p)
    ev = read_cep_mat(path)
    assert ev.dtype.names == ("x", "y", "t", "p") and all(ev.dtype[f] == np.int64 for f in "xytp")
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["t"], ts)  # ts as it is (time_scale 1, the reference's)
    np.testing.assert_array_equal(ev["p"], [0, 1, 0])  # -1 -> 0
    np.testing.assert_array_equal(read_cep_mat(path, time_scale=1000)["t"], np.asarray(ts) * 1000)


def test_labels_split_and_items(tmp_path):
    written = make_cep_root(tmp_path, per_class=6)
    train, test = CEPDVS(tmp_path, "train"), CEPDVS(tmp_path, "test")
    assert train.classes == CEP_CLASSES and len(CEP_CLASSES) == 20
    # per class (stems i with i % 20 == c, in order): first round(0.5 * 6) = 3 train, next round(0.2 * 6) = 1 test
    assert len(train) == 60 and len(test) == 20
    assert train.stems == list(range(60)) and test.stems == list(range(60, 80))
    assert [s for s, t in zip(test.stems, test.targets) if t == 3] == [63]
    assert all(s % 20 == t for s, t in zip(train.stems + test.stems, np.r_[train.targets, test.targets]))
    assert not set(train.stems) & set(test.stems)
    i = train.stems.index(17)
    ev, label = train[i]
    x, y, ts, p = written[17]
    assert label == 17
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["t"], ts)
    np.testing.assert_array_equal(ev["p"], (np.asarray(p) + 1) // 2)
    frames = event_dataset("cepdvs", tmp_path, "train", T=6, size=48, bins="cover")
    fx, fy = frames[i]
    assert tuple(fx.shape) == (6, 2, 48, 48) and fy == 17
    fixed = event_dataset("CEP-DVS", tmp_path, "test", T=6, sensor_size=(240, 180, 2), bins="cover")
    assert tuple(fixed[0][0].shape) == (6, 2, 180, 240) and float(fixed[0][0].sum()) == 30


def test_static_images_paired_by_class(tmp_path):
    make_cep_root(tmp_path, per_class=6)
    st = static_dataset("cepdvs", tmp_path, "train")
    ev = CEPDVS(tmp_path, "train")
    assert st.classes == ev.classes and len(st) == len(ev)
    np.testing.assert_array_equal(st.targets, ev.targets)
    for k in (0, 37, 59):
        img, label = st[k]
        assert tuple(img.shape) == (3, 8, 8) and round(float(img[0, 0, 0]) * 255) == label  # red = label
    assert len(static_dataset("cepdvs", tmp_path, "all")) == 120


def test_bad_inputs_name_file_and_line(tmp_path):
    make_cep_root(tmp_path, per_class=2, images=False)
    csv = tmp_path / "pathFile.csv"
    lines = csv.read_text().splitlines()
    lines[5] = "4 img 00004.jpg 0 dolphins"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{csv} line 6: the fifth .* got 'dolphins'"):
        CEPDVS(tmp_path)
    csv.write_text("\n".join(lines[:30]) + "\n")  # rows for stems 0..28 only
    lines[5] = "4 img 00004.jpg 0 fish"
    csv.write_text("\n".join(lines[:30]) + "\n")
    with pytest.raises(ValueError, match=r"00029.mat has no label: .*pathFile.csv has 29 sample rows"):
        CEPDVS(tmp_path)
    csv.write_text("\n".join(lines) + "\n")
    ds = CEPDVS(tmp_path, "train")
    path = ds.files[3]
    write_cep_mat(path, [1, 2], [1, 2], [5, 4], [1, -1])
    with pytest.raises(ValueError, match=rf"{path}: invalid events: field 't' at index 1 .*decreases"):
        ds[3]
    write_cep_mat(path, [1, 2], [1, 2], [4, 5], [1, 0.5])
    with pytest.raises(ValueError, match=rf"{path}: invalid events: field 'p' at index 1"):
        ds[3]
    write_cep_mat(path, [1, 241], [1, 2], [4, 5], [1, 1])
    fixed = CEPDVS(tmp_path, "train", sensor_size=(240, 180, 2))
    with pytest.raises(ValueError, match=r"field 'x' at index 1 .*\[0, 240\)"):
        fixed[3]
    ds[3]  # sensor_size None (the reference's): any x >= 0
    path.write_bytes(b"MATLAB 5.0 MAT-file, garbage")
    with pytest.raises(ValueError, match=rf"CEP-DVS: cannot read {path}"):
        ds[3]
    from scipy.io import savemat

    savemat(str(path), {"x": [1.0], "y": [1.0], "t": [1.0], "p": [1.0]})
    with pytest.raises(ValueError, match=r"variables \['ts'\] missing"):
        ds[3]
    with pytest.raises(FileNotFoundError, match="missing folder .*data/img"):
        static_dataset("cepdvs", tmp_path)
    with pytest.raises(ValueError, match="time_scale must be a positive int"):
        CEPDVS(tmp_path, time_scale=0.5)
    with pytest.raises(ValueError, match="train_portion \\+ test_portion must be <= 1"):
        CEPDVS(tmp_path, train_portion=0.9, test_portion=0.2)
    (tmp_path / "pathFile.csv").unlink()
    with pytest.raises(FileNotFoundError, match="pathFile.csv"):
        CEPDVS(tmp_path)

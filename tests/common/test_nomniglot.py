"""N-Omniglot (issue 20): synthetic AEDAT 4.0 recordings (uncompressed and LZ4) decoded field by field, the
layout, classes, drawer split, csv slicing, crop, frames and the errors that name the file and csv line."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("tonic")
pytest.importorskip("aedat")

from sj_common.data import event_dataset  # noqa: E402
from sj_common.data.nomniglot import NOmniglot, aedat4_stream_names, read_aedat4_events  # noqa: E402

from .event_files import make_nomniglot_root, nomniglot_recording, write_aedat4, write_drawer_csv  # noqa: E402

LAYOUT = {"background": {"B_script": 2, "A_script": 1}, "evaluation": {"Z_script": 1}}


def _events(n=90, seed=0):
    from sj_common.data.eventarray import as_events

    rng = np.random.default_rng(seed)
    t = 1_600_000_000_000_000 + np.cumsum(rng.integers(0, 50, n))  # a DV wall-clock in us (> 2**50)
    return as_events(rng.integers(0, 346, n), rng.integers(0, 260, n), t, rng.integers(0, 2, n))


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_aedat4_decoded_field_by_field(tmp_path, compression):
    ev = _events()
    path = write_aedat4(tmp_path / "r.aedat4", ev, compression=compression, packet_size=32)
    out = read_aedat4_events(path)
    for f in "xytp":
        np.testing.assert_array_equal(out[f], ev[f], err_msg=f)
    assert out.dtype == ev.dtype
    import tonic

    raw = tonic.io.read_aedat4(str(path))  # tonic (same aedat decoder) agrees on a one-stream file
    np.testing.assert_array_equal(raw["t"].astype(np.int64), ev["t"])
    np.testing.assert_array_equal(raw["on"].astype(np.int64), ev["p"])


def test_stream_chosen_by_name_not_lowest_id(tmp_path):
    ev = _events(40)
    decoy = _events(5, seed=1)
    path = write_aedat4(tmp_path / "r.aedat4", ev, compression="lz4", decoy=decoy)
    assert aedat4_stream_names(path) == {1: ("EVTS", "events"), 0: ("EVTS", "undistortedEvents")}
    out = read_aedat4_events(path)
    np.testing.assert_array_equal(out["t"], ev["t"])  # tonic.io.read_aedat4 would take stream 0
    with pytest.raises(ValueError, match="expected exactly one named 'imu'"):
        read_aedat4_events(path, stream="imu")


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_layout_classes_split_and_slices(tmp_path, compression):
    rec = make_nomniglot_root(tmp_path, LAYOUT, compression=compression)
    train, test = NOmniglot(tmp_path, "train"), NOmniglot(tmp_path, "test")
    # sorted alphabets (A before B), background then evaluation, characters in numeric order
    assert train.classes == [
        "A_script/character01",
        "B_script/character01",
        "B_script/character02",
        "Z_script/character01",
    ]
    assert test.classes == train.classes
    assert len(train) == 4 * 15 and len(test) == 4 * 5
    assert train.drawers[:15] == list(range(1, 16)) and test.drawers[:5] == [16, 17, 18, 19, 20]
    np.testing.assert_array_equal(np.bincount(train.targets), [15] * 4)
    # an item = the csv slice [start, end), cropped to columns 54..303, rows 4..253 and shifted to 0
    ev_all, table = rec[("background", "B_script", 2)]
    i = train.targets.tolist().index(2) + 6  # drawer 7 of class 2
    assert train.drawers[i] == 7
    start, end = table[6]
    part = ev_all[(ev_all["t"] >= start) & (ev_all["t"] < end)]
    inside = (part["x"] >= 54) & (part["x"] < 304) & (part["y"] >= 4) & (part["y"] < 254)
    assert inside.sum() == len(part) - 1  # one event per drawer lies outside the crop
    ev, label = train[i]
    assert label == 2
    np.testing.assert_array_equal(ev["x"], part["x"][inside] - 54)
    np.testing.assert_array_equal(ev["y"], part["y"][inside] - 4)
    np.testing.assert_array_equal(ev["t"], part["t"][inside])
    np.testing.assert_array_equal(ev["p"], part["p"][inside])
    # evaluation classes follow the 964 background ones in the full set; alone they start at 0
    ev_only = NOmniglot(tmp_path, "test", subset="evaluation")
    assert ev_only.classes == ["Z_script/character01"] and set(ev_only.targets.tolist()) == {0}


def test_frames_through_event_dataset(tmp_path):
    make_nomniglot_root(tmp_path, LAYOUT)
    ds = event_dataset("N-Omniglot", tmp_path, "test", T=12, size=28, bins="cover", resize="sum")
    raw = event_dataset("nomniglot", tmp_path, "test")
    x, y = ds[3]
    ev, y2 = raw[3]
    assert tuple(x.shape) == (12, 2, 28, 28) and y == y2
    assert float(x.sum()) == pytest.approx(len(ev), rel=1e-5)  # "sum": every event counted once
    freq = event_dataset(
        "nomniglot", tmp_path, "test", T=12, size=28, bins="cover", resize="sum", normalize="max"
    )
    z, _ = freq[3]
    peak = x.amax(dim=(-2, -1))
    assert float(z.max()) == 1.0 and torch.equal(z, x / torch.where(peak > 0, peak, 1)[..., None, None])
    with pytest.raises(ValueError, match="normalize must be None or 'max', got 'sum'"):
        event_dataset("nomniglot", tmp_path, "test", T=12, size=28, normalize="sum")
    uncropped = event_dataset(
        "nomniglot", tmp_path, "test", T=4, size=28, crop=False, resize="sum", bins="cover"
    )
    assert uncropped.sensor_size == (346, 260, 2)
    assert float(uncropped[3][0].sum()) == pytest.approx(len(ev) + 1, rel=1e-5)  # the outside event too


def test_slice_timestamp_matching_no_event_names_csv_line(tmp_path):
    rec = make_nomniglot_root(tmp_path, {"background": {"A_script": 1}, "evaluation": {"Z_script": 1}})
    csv = next((tmp_path / "dvs_background" / "A_script" / "character01").glob("*.csv"))
    table = list(rec[("background", "A_script", 1)][1])
    table[2] = (table[2][0] + 1, table[2][1])  # drawer 3's start is no event's timestamp
    write_drawer_csv(csv, table)
    ds = NOmniglot(tmp_path, "train")
    with pytest.raises(
        ValueError, match=rf"{csv}.* line 4 \(drawer 3\): start timestamp \d+ matches no event"
    ):
        ds[2]
    ds[1]  # the other drawers still read
    write_drawer_csv(csv, table[:10])
    with pytest.raises(ValueError, match=rf"{csv} has 10 drawer rows; drawer 11"):
        ds[10]
    csv.write_text("index,start,end\n0,12x,13\n")
    with pytest.raises(ValueError, match=rf"{csv} line 2: expected 'index,start,end'"):
        ds[0]
    with pytest.raises(ValueError, match=rf"{csv} line 2"):
        event_dataset("nomniglot", tmp_path, "train", T=4)[0]


def test_bad_recordings_name_the_file(tmp_path):
    rng = np.random.default_rng(3)
    ev, table = nomniglot_recording(rng)
    folder = tmp_path / "dvs_background" / "A" / "character01"
    ev["x"][5] = 346  # outside the DAVIS346 sensor
    path = write_aedat4(folder / "0001.aedat4", ev)
    write_drawer_csv(folder / "0001.csv", table)
    (tmp_path / "dvs_evaluation" / "B" / "character01").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds 0 .aedat4 files"):
        NOmniglot(tmp_path, "train")
    ds = NOmniglot(tmp_path, "train", subset="background")
    with pytest.raises(ValueError, match=rf"{path}: invalid events: field 'x' at index 5 .*\[0, 346\)"):
        ds[0]
    path.write_bytes(path.read_bytes()[:-7])  # truncated packet: refused before the decoder sees it
    with pytest.raises(ValueError, match=rf"{path}: packet 4 at byte \d+: its size \d+ B runs past byte"):
        ds[0]
    path.write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(ValueError, match="not an AEDAT 4.0 file"):
        ds[0]


def test_layout_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"dvs_background(.|\n)*NOmniglot/dvs_background(.|\n)*Expected layout"
    ):
        NOmniglot(tmp_path)
    with pytest.raises(ValueError, match="train_drawers must be an int in \\[1, 19\\], got 20"):
        NOmniglot(tmp_path, train_drawers=20)
    with pytest.raises(ValueError, match="subset must be"):
        NOmniglot(tmp_path, subset="images")
    folder = tmp_path / "dvs_background" / "A" / "character01"
    write_aedat4(folder / "0001.aedat4", _events(30))
    with pytest.raises(FileNotFoundError, match="has no drawer table 0001.csv"):
        NOmniglot(tmp_path, subset="background")


def test_missing_aedat_package_is_an_import_error(tmp_path, monkeypatch):
    make_nomniglot_root(tmp_path, {"background": {"A": 1}})
    ds = NOmniglot(tmp_path, subset="background")
    monkeypatch.setitem(sys.modules, "aedat", None)
    with pytest.raises(ImportError, match="pip install aedat"):
        ds[0]


def test_static_omniglot_pairs_by_name(tmp_path):
    from sj_common.data import static_dataset

    from .event_files import make_omniglot_root

    make_omniglot_root(tmp_path, LAYOUT)
    names = ["Z_script/character01", "A_script/character01"]  # any order: labels follow the given names
    st = static_dataset("omniglot", tmp_path, "train", classes=names)
    assert st.classes == names and len(st) == 2 * 15
    assert all(f"/{names[t]}/" in p for p, t in st.samples)
    make_nomniglot_root(tmp_path, LAYOUT)
    ev = NOmniglot(tmp_path, "train")
    assert static_dataset("omniglot", tmp_path, "train", classes=ev.classes).classes == ev.classes
    with pytest.raises(FileNotFoundError, match=r"1 of the 2 requested characters .*'Q_script/character09'"):
        static_dataset(
            "omniglot", tmp_path, "train", classes=["A_script/character01", "Q_script/character09"]
        )


def test_few_shot_episodes_over_background_and_evaluation(tmp_path):
    from sj_common.data import FewShotEpisodes

    make_nomniglot_root(tmp_path, {"background": {"A": 3, "B": 2}, "evaluation": {"Z": 2}})
    bg = NOmniglot(tmp_path, "train", subset="background")  # meta-train classes
    sampler = FewShotEpisodes(bg.targets, n_way=3, k_shot=2, k_query=4, episodes=5, seed=1)
    episodes = list(sampler)
    assert len(episodes) == 5 and all(len(e) == 3 * 6 for e in episodes)
    for e in episodes:
        labels = bg.targets[e].reshape(3, 6)
        assert len(set(labels[:, 0].tolist())) == 3 and (labels == labels[:, :1]).all()  # class-major
        assert len(set(e)) == len(e)  # support and query distinct
    assert episodes != list(sampler)  # a new pass draws new episodes
    assert list(FewShotEpisodes(bg.targets, 3, 2, 4, episodes=5, seed=1)) == episodes  # seeded
    sup, qry = sampler.split(torch.arange(18))
    assert (
        sup.shape == (3, 2)
        and qry.shape == (3, 4)
        and sampler.relabel(torch.zeros(18)).tolist()[:7] == [0] * 6 + [1]
    )
    with pytest.raises(ValueError, match=r"labels: expected one episode's \[18\] labels, got shape \(17,\)"):
        sampler.relabel(torch.zeros(17))
    ev = NOmniglot(tmp_path, "test", subset="evaluation")  # 2 classes x 5 test drawers
    with pytest.raises(
        ValueError, match="n_way: 3 classes per episode need 6 samples each .* only 0 of the 2"
    ):
        FewShotEpisodes(ev.targets, 3, 2, 4)
    assert len(list(FewShotEpisodes(ev.targets, 2, 1, 4, episodes=2))) == 2
    with pytest.raises(ValueError, match="k_shot: expected an int >= 1, got 0"):
        FewShotEpisodes(ev.targets, 2, 0)

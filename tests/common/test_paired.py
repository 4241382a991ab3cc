"""Class-matched static/event pairing, train_ratio subsets, and the static encoding of transfer.md 1.4."""

import numpy as np
import pytest
import torch
from sj_common.data import DrawIndex, PairedStaticEvent, encode_static
from torch.utils.data import DataLoader, Dataset

pytestmark = pytest.mark.compat


class Static(Dataset):
    """Image of class c has every pixel = (c + 1) / 100 + instance / 10000 (class and instance readable)."""

    def __init__(self, per_class=(5, 5, 5), hw=(6, 6)):
        self.targets = np.repeat(np.arange(len(per_class)), per_class)
        self.classes = [f"s{c}" for c in range(len(per_class))]
        self.hw = hw

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        c = int(self.targets[i])
        return torch.full((1, *self.hw), (c + 1) / 100 + i / 10000), c


class Events(Dataset):
    def __init__(self, per_class=(10, 20, 30), T=3):
        self.targets = np.repeat(np.arange(len(per_class)), per_class)
        self.classes = [f"e{c}" for c in range(len(per_class))]
        self.T = T

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((self.T, 2, 6, 6), float(self.targets[i])), int(self.targets[i])


def _class_of_static(x):
    return int(np.floor(float(x[0, 0, 0, 0]) * 100 + 1e-4)) - 1  # (c + 1) / 100 + small -> c


def test_pairing_keeps_classes_and_varies_partner():
    ds = PairedStaticEvent(Static(), Events(), T=3, seed=1)
    assert len(ds) == 60 and ds.classes == ["e0", "e1", "e2"]
    seen = set()
    for _ in range(20):
        for i in (0, 15, 59):
            s, e, y = ds[i]
            assert s.shape == e.shape == (3, 2, 6, 6) and s.dtype == torch.float32
            assert _class_of_static(s) == y == int(e[0, 0, 0, 0]) == ds.targets[i]
            assert torch.equal(s[0, 0], s[-1, 1])  # constant over T and polarity
            if i == 15:
                seen.add(round(float(s[0, 0, 0, 0]) * 10000))
    assert len(seen) == 1  # one epoch: one partner per item, however often it is read
    a = [ds.partner(i) for i in range(40, 60)]
    assert all(10 <= j < 15 for j in a) and len(set(a)) >= 4  # class 2's pool, drawn per item
    for epoch in range(1, 20):
        ds.set_epoch(epoch)
        s, _, _ = ds[15]
        seen.add(round(float(s[0, 0, 0, 0]) * 10000))
    assert len(seen) >= 4  # a new partner every epoch (5 candidates)


def test_partners_are_a_function_of_seed_epoch_and_index():
    """Issue 24, item 2: no running state, so a resumed run (a fresh process) draws what the first run drew."""
    first, fresh = (
        PairedStaticEvent(Static(), Events(), T=3, seed=1),
        PairedStaticEvent(Static(), Events(), T=3, seed=1),
    )
    first.set_epoch(1)
    drawn = [first.partner(i) for i in range(60)]
    [first[i] for i in range(60)]  # reading items changes nothing
    fresh.set_epoch(1)
    assert [fresh.partner(i) for i in range(60)] == drawn == [first.partner(i) for i in range(60)]
    fresh.set_epoch(2)
    assert [fresh.partner(i) for i in range(60)] != drawn
    other = PairedStaticEvent(Static(), Events(), T=3, seed=2)
    other.set_epoch(1)
    assert [other.partner(i) for i in range(60)] != drawn
    # a sample drawn twice in an epoch (ClassBalancedSampler's DrawIndex) gets a partner per draw
    twice = [first.partner(DrawIndex(59, k)) for k in range(12)]
    assert len(set(twice)) >= 3 and first.partner(-1) == first.partner(59)
    with pytest.raises(IndexError, match="i: expected an index in"):
        first.partner(60)
    with pytest.raises(ValueError, match="epoch"):
        first.set_epoch(-1)


def test_train_ratio_counts_and_seed():
    ds = PairedStaticEvent(Static(), Events(), T=3, train_ratio=0.25, seed=0)
    assert np.bincount(ds.targets).tolist() == [2, 5, 7]
    assert np.array_equal(ds.targets, Events().targets[ds.indices])
    again = PairedStaticEvent(Static(), Events(), T=3, train_ratio=0.25, seed=0)
    other = PairedStaticEvent(Static(), Events(), T=3, train_ratio=0.25, seed=1)
    assert np.array_equal(again.indices, ds.indices) and not np.array_equal(other.indices, ds.indices)
    # subset_seed fixes the subset alone: other training seeds, same event samples, other partners
    fixed = [
        PairedStaticEvent(Static(), Events(), T=3, train_ratio=0.25, seed=s, subset_seed=0) for s in (3, 4)
    ]
    assert all(np.array_equal(f.indices, ds.indices) for f in fixed)
    assert [fixed[0].partner(i) for i in range(14)] != [fixed[1].partner(i) for i in range(14)]
    tiny = PairedStaticEvent(Static(), Events(), T=3, train_ratio=0.01)
    assert np.bincount(tiny.targets).tolist() == [1, 1, 1]


def test_errors():
    with pytest.raises(ValueError, match="static_set has 2 classes, event_set has 3 classes"):
        PairedStaticEvent(Static((5, 5)), Events(), T=3)
    with pytest.raises(ValueError, match="train_ratio"):
        PairedStaticEvent(Static(), Events(), T=3, train_ratio=1.5)
    with pytest.raises(ValueError, match="no sample of class 1"):
        PairedStaticEvent(Static((5, 0, 5)), Events(), T=3)
    with pytest.raises(ValueError, match=r"\[T=4, 2, H, W\]"):
        PairedStaticEvent(Static(), Events(), T=4)[0]


@pytest.mark.slow
def test_dataloader_workers_draw_what_the_main_process_draws():
    ds = PairedStaticEvent(Static((50, 50, 50)), Events((40, 40, 40)), T=3)
    ds.set_epoch(3)
    dl = DataLoader(ds, batch_size=20, num_workers=2, shuffle=False)
    batches = [s[:, 0, 0, 0, 0] for s, _, _ in dl]
    ys = torch.cat([y for _, _, y in dl])
    assert torch.equal(ys, torch.as_tensor(ds.targets))
    # worker 0 serves batch 0, worker 1 batch 1 (same classes): partners differ between workers
    assert not torch.equal(batches[0], batches[1])
    main = [s[:, 0, 0, 0, 0] for s, _, _ in DataLoader(ds, batch_size=20, num_workers=0)]
    assert all(torch.equal(a, b) for a, b in zip(batches, main))  # and are the workers=0 partners


def test_encode_static_rgb_gray_resize_batch():
    rgb = torch.rand(3, 8, 8)
    enc = encode_static(rgb, 4)
    assert enc.shape == (4, 2, 8, 8) and torch.equal(enc[2, 1], rgb.max(0).values)
    assert torch.equal(encode_static(rgb, 2, use_hsv=False)[0, 0], rgb[2])  # the blue channel
    gray = torch.rand(1, 8, 8)
    assert torch.equal(encode_static(gray, 3)[1, 0], gray[0])
    u8 = (gray * 255).to(torch.uint8)
    assert torch.allclose(encode_static(u8, 1)[0, 0], u8[0].float() / 255)
    big = encode_static(gray, 2, size=(12, 10))
    assert big.shape == (2, 2, 12, 10) and 0 <= big.min() and big.max() <= 1
    assert encode_static(torch.rand(5, 3, 8, 8), 3, size=4).shape == (5, 3, 2, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        encode_static(torch.rand(2, 8, 8), 3)


@pytest.mark.slow
def test_embedded_pair_mnist5k_with_its_event_twin():
    from sj_common.data import MNIST5k, MNIST5kEvents

    ds = PairedStaticEvent(MNIST5k("val"), MNIST5kEvents("val", T=4), T=4, train_ratio=0.2, size=34)
    assert len(ds) == 100 and np.bincount(ds.targets).tolist() == [10] * 10
    s, e, y = ds[37]
    assert s.shape == e.shape == (4, 2, 34, 34) and y == ds.targets[37]
    assert 0 <= s.min() and s.max() <= 1 and e.sum() > 1000

"""ClassBalancedSampler (issue 24, item 8): class-balanced draws with replacement as a seeded, sharded,
resumable sampler, so class balancing works with DataLoader workers and DDP."""

import pickle

import numpy as np
import pytest
import torch
from sj_common.data import ClassBalancedSampler, DrawIndex, PairedStaticEvent
from sj_common.engine import ShardedSampler, TrainConfig, fit, load_checkpoint, seed_everything
from torch import nn

from .test_paired import Events, Static

pytestmark = pytest.mark.compat

TARGETS = [0] * 9 + [1]  # 9:1 imbalance


def test_draws_are_class_balanced_with_replacement():
    s = ClassBalancedSampler(TARGETS, 4000, seed=3)
    order = list(s)
    assert len(order) == len(s) == s.num_items == 4000
    assert all(isinstance(i, DrawIndex) for i in order)
    assert [i.draw for i in order] == list(range(4000))  # the draw's position in the epoch
    hits = sum(int(i) == 9 for i in order)
    assert 1800 < hits < 2200  # the one class-1 sample is drawn about half the time (binomial sd 32)
    counts = np.bincount([int(i) for i in order if int(i) < 9], minlength=9)
    assert counts.min() > 150  # class 0: its 9 samples uniformly (about 222 each)
    assert len(ClassBalancedSampler(TARGETS)) == 10  # default: one epoch = len(targets) draws


def test_draws_are_a_function_of_seed_and_epoch():
    a = list(ClassBalancedSampler(TARGETS, 64, seed=3, epoch=2))
    s = ClassBalancedSampler(TARGETS, 64, seed=3)
    s.set_epoch(2)
    assert list(s) == a and list(s) == a  # iterating twice, or a fresh sampler: the same draws
    s.set_epoch(3)
    assert list(s) != a  # every epoch draws anew
    assert list(ClassBalancedSampler(TARGETS, 64, seed=4, epoch=2)) != a


def test_ranks_take_disjoint_shares_of_one_epoch_and_start_skips():
    full = list(ClassBalancedSampler(TARGETS, 10, seed=1, epoch=5))  # 10 draws, 3 ranks: padded to 12
    proto = ClassBalancedSampler(TARGETS, 10, seed=1)
    shards = [list(proto.sharded(epoch=5, rank=r, num_replicas=3)) for r in range(3)]
    assert [len(x) for x in shards] == [4, 4, 4]
    assert [x.draw for x in shards[1]] == [1, 4, 7, 0]  # rank r: draws r, r + 3, ...; the head pads
    assert shards[0] != shards[1] != shards[2]
    interleaved = [shards[r][k] for k in range(4) for r in range(3)][:10]
    assert interleaved == full  # the ranks' draws are the one-process run's draws
    assert list(proto.sharded(epoch=5, rank=1, num_replicas=3, start=2)) == shards[1][2:]
    assert proto.epoch == 0 and proto.rank == 0  # the prototype is left alone


def test_draw_index_is_an_int_that_pickles_with_its_draw():
    i = DrawIndex(7, 12)
    assert i == 7 and [10, 11, 12, 13, 14, 15, 16, 17][i] == 17 and np.arange(9)[i] == 7
    j = pickle.loads(pickle.dumps(i))
    assert type(j) is DrawIndex and (int(j), j.draw) == (7, 12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="targets"):
        ClassBalancedSampler([])
    with pytest.raises(ValueError, match="targets"):
        ClassBalancedSampler([0.5, 1.0])
    with pytest.raises(ValueError, match="num_samples"):
        ClassBalancedSampler(TARGETS, 0)
    with pytest.raises(ValueError, match="rank"):
        ClassBalancedSampler(TARGETS).sharded(epoch=0, rank=2, num_replicas=2)
    data = torch.utils.data.TensorDataset(torch.zeros(11, 3), torch.zeros(11, dtype=torch.long))
    cfg = TrainConfig(out="unused", progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="train_set: expected a data set of length 10"):
        fit(nn.Linear(3, 2), data, config=cfg, train_sampler=ClassBalancedSampler(TARGETS))
    with pytest.raises(TypeError, match="train_sampler"):
        fit(nn.Linear(3, 2), data, config=cfg, train_sampler=torch.utils.data.RandomSampler(data))
    assert isinstance(ClassBalancedSampler(TARGETS), ShardedSampler)


class Probe(torch.utils.data.Dataset):
    """Pairs whose items show the static partner drawn (a value per static index) in the features."""

    def __init__(self):
        self.pairs = PairedStaticEvent(Static((12, 12, 12)), Events((6, 2, 1)), T=3, seed=0)
        self.targets = self.pairs.targets

    def set_epoch(self, epoch):
        self.pairs.set_epoch(epoch)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        s, e, y = self.pairs[i]
        return torch.cat([s.flatten(1)[:, :4], e.flatten(1)[:, :4]], 1), y  # [T, 8]


def _run(tmp_path, workers):
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(24, 3))
    cfg = TrainConfig(
        out=str(tmp_path / f"w{workers}"),
        epochs=2,
        batch_size=4,
        lr=0.5,
        optimizer="sgd",
        scheduler="none",
        workers=workers,
        seed=1,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    data = Probe()
    res = fit(model, data, config=cfg, train_sampler=ClassBalancedSampler(data.targets, 12, seed=1))
    return res, load_checkpoint(tmp_path / f"w{workers}" / "checkpoint.pt")["model"]


def test_fit_with_two_workers_equals_no_workers(tmp_path, one_thread):
    r0, w0 = _run(tmp_path, 0)
    r2, w2 = _run(tmp_path, 2)
    assert r0["steps"] == r2["steps"] == 6  # 12 draws per epoch (not len(train_set) = 9), batch 4
    assert all(torch.equal(w0[k], w2[k]) for k in w0)
    assert [h["train_loss"] for h in r0["history"]] == [h["train_loss"] for h in r2["history"]]

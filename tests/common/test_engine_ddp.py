"""sj_common.engine under DDP: 2 gloo processes on 127.0.0.1 train exactly like one process on the
whole batch (DDP averages the two half-batch gradients), evaluation is sharded and summed, and every rank
draws its own random streams (DataLoader workers, static partners) while one process draws as before. A
process group of one (gloo on the CPU, nccl on a GPU) trains like no process group."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from sj_common.compat import lif_node
from sj_common.data import PairedStaticEvent
from sj_common.engine import TrainConfig, classification_step, fit, load_checkpoint, seed_everything
from spikingjelly.activation_based import layer
from torch import nn
from torch.utils.data import TensorDataset

from .test_paired import Events, Static

T, FEATURES, CLASSES, N = 3, 8, 3, 37  # odd N: the val shards differ in size, the train order is padded


def make_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        layer.Linear(FEATURES, 16, step_mode="m"), lif_node(), layer.Linear(16, CLASSES, step_mode="m")
    )


def make_data() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = 4 * torch.rand(N, T, FEATURES, generator=g)  # strong enough that the neurons spike
    return TensorDataset(x, x[:, :, :3].mean(1).argmax(1))


def run(out: str, batch_size: int, device: str = "cpu") -> dict:
    config = TrainConfig(
        out=out,
        epochs=1,
        batch_size=batch_size,
        lr=0.5,
        optimizer="sgd",
        momentum=0.0,
        scheduler="none",
        max_steps_per_epoch=2,
        progress=False,
        tensorboard=False,
        device=device,
    )
    data = make_data()
    return fit(make_model(), data, data, config=config, step=classification_step(True, "tet"))


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    res = run(out, batch_size=4)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"val_acc1": res["history"][0]["val_acc1"], "val_n": res["history"][0]["val_n"]}, f)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.compat
def test_two_process_gloo_matches_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    ddp_out.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(ddp_out)), nprocs=2, join=True)

    single = run(str(single_out), batch_size=8)
    w0 = make_model().state_dict()
    w_ddp = load_checkpoint(ddp_out / "checkpoint.pt")["model"]
    w_one = load_checkpoint(single_out / "checkpoint.pt")["model"]
    for k in w0:
        step_ddp, step_one = w_ddp[k] - w0[k], w_one[k] - w0[k]
        assert step_one.abs().sum() > 0, f"{k} did not train"
        # the summed update of 2 steps equals -lr * (sum of full-batch gradients)
        torch.testing.assert_close(step_ddp, step_one, rtol=1e-4, atol=1e-6)

    ranks = [json.loads((ddp_out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1], "all ranks must report the same all-reduced metrics"
    assert ranks[0]["val_n"] == N  # sharded without repeats: 19 + 18 samples
    assert ranks[0]["val_acc1"] == pytest.approx(single["history"][0]["val_acc1"])
    ck = load_checkpoint(ddp_out / "checkpoint.pt")
    assert ck["world_size"] == 2 and len(ck["per_rank"]) == 2  # both ranks' RNG states for resume
    assert not list(ddp_out.glob("*.tmp"))


@pytest.mark.parametrize(
    "backend",
    [
        "gloo",
        pytest.param(
            "nccl",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="nccl needs a CUDA device"),
            ],
        ),
    ],
)
def test_one_process_group_trains_like_none(tmp_path, backend):
    """DDP with one process (the engine wraps the model once a group exists): the same weights as no DDP."""
    import torch.distributed as dist

    if not dist.is_available() or not getattr(dist, f"is_{backend}_available")():
        pytest.skip(f"torch.distributed has no {backend}")
    device = "cuda" if backend == "nccl" else "cpu"
    single = run(str(tmp_path / "single"), batch_size=8, device=device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        grouped = run(str(tmp_path / "group"), batch_size=8, device=device)
    finally:
        dist.destroy_process_group()
    assert grouped["world_size"] == 1 and grouped["device"].startswith(device)
    w_group = load_checkpoint(tmp_path / "group" / "checkpoint.pt")["model"]
    w_single = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    w0 = make_model().state_dict()
    assert any((w_single[k] - w0[k]).abs().sum() > 0 for k in w0), "nothing trained"
    for k in w0:
        torch.testing.assert_close(w_group[k], w_single[k], rtol=1e-5, atol=1e-6)
    assert grouped["history"][0]["val_acc1"] == pytest.approx(single["history"][0]["val_acc1"])


# --- issue 24, item 3: every rank draws its own random streams ----------------------------------------


class Probe(torch.utils.data.Dataset):
    """16 event samples of one class, each paired with one of 40 static images; an item's features show
    a draw of the worker's torch RNG (column 0), the static partner (column 1) and the index (column 2)."""

    def __init__(self):
        self.pairs = PairedStaticEvent(Static((40,)), Events((16,)), T=T, seed=0)
        self.targets = self.pairs.targets

    def set_epoch(self, epoch):
        self.pairs.set_epoch(epoch)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        s, _, y = self.pairs[i]
        x = torch.zeros(T, FEATURES)
        x[:, 0] = torch.rand(())  # a random transform run in a DataLoader worker
        x[:, 1] = round(float(s[0, 0, 0, 0]) * 10000) - 100  # Static: (c + 1) / 100 + j / 10000, c = 0
        x[:, 2] = int(i)
        return x, y


def _probe_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    seen = []
    base = classification_step(True, "tet")

    def step(model, batch, ctx):
        seen.append(batch[0][:, 0, :3].tolist())
        return base(model, batch, ctx)

    config = TrainConfig(
        out=out, epochs=1, batch_size=4, workers=2, progress=False, tensorboard=False, device="cpu"
    )
    fit(make_model(), Probe(), config=config, step=step)
    with open(os.path.join(out, f"probe{rank}.json"), "w") as f:
        json.dump([row for batch in seen for row in batch], f)


@pytest.mark.slow  # 2 processes with 2 DataLoader workers each
def test_ranks_draw_their_own_worker_and_partner_streams(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_probe_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    rows = [json.loads((tmp_path / f"probe{r}.json").read_text()) for r in (0, 1)]
    assert [len(r) for r in rows] == [8, 8]
    noise = [[r[0] for r in rank] for rank in rows]
    partners = [[int(r[1]) for r in rank] for rank in rows]
    index = [[int(r[2]) for r in rank] for rank in rows]
    assert sorted(index[0] + index[1]) == list(range(16))  # each rank its half of the data
    # worker-side transforms: seeded by (seed, epoch, rank), so the ranks' workers draw differently
    assert not set(noise[0]) & set(noise[1])
    assert partners[0] != partners[1]
    # partners: a function of (seed, epoch, index), so each rank draws what one process draws for its items
    pairs = Probe().pairs
    assert all(
        p == pairs.partner(i) for p_rank, i_rank in zip(partners, index) for p, i in zip(p_rank, i_rank)
    )


class _Noisy(TensorDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + torch.rand(()), y  # drawn in a DataLoader worker from the worker's torch seed


def test_one_process_worker_draws_are_unchanged(tmp_path, one_thread):
    """The worker seeds of a one-process run are those of before the rank entered them (item 3): the first
    batch of each epoch, recorded on main at 8c4d19a."""
    seen = []
    base = classification_step(False)

    def step(model, batch, ctx):
        if ctx.step % 4 == 0:
            seen.append(batch[0][:, 0].tolist())
        return base(model, batch, ctx)

    seed_everything(0)
    config = TrainConfig(
        out=str(tmp_path),
        epochs=2,
        batch_size=3,
        workers=2,
        seed=5,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    fit(nn.Linear(4, 3), _Noisy(torch.zeros(12, 4), torch.arange(12) % 3), config=config, step=step)
    assert seen == [
        [0.7089141011238098, 0.16839945316314697, 0.2843262553215027],
        [0.33123695850372314, 0.6896191835403442, 0.018570542335510254],
    ]

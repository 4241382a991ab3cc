"""sj_common.engine under DDP: 2 gloo processes on 127.0.0.1 train exactly like one process on the
whole batch (DDP averages the two half-batch gradients), and evaluation is sharded and summed."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from sj_common.compat import lif_node
from sj_common.engine import TrainConfig, classification_step, fit, load_checkpoint, seed_everything
from spikingjelly.activation_based import layer
from torch import nn
from torch.utils.data import TensorDataset

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


def run(out: str, batch_size: int) -> dict:
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
        device="cpu",
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

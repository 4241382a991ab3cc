"""Every ```python block of the README runs as written, in a smoke mode.

Smoke mode: the placeholders a block names but does not define (``my_cnn``, ``images``, ``net`` ...) are
defined here, and a few documented sizes are cut (``SMOKE_EDITS``: each edit must still match the README, so a
changed block fails here instead of silently running something else). Blocks run in a temporary folder with
``HOME`` pointing there, so ``~/data`` does not exist: the block that reads local data sets must raise the
documented ``FileNotFoundError``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _placeholders() -> dict:
    """What the README's snippets leave to the reader: a CNN, images, a multi-step net with its taps ..."""
    import torch
    from spikingjelly.activation_based import functional, layer, neuron
    from torch import nn

    torch.manual_seed(0)
    my_cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10)
    )  # fmt: skip
    net = nn.Sequential(layer.Flatten(), layer.Linear(2 * 34 * 34, 32), neuron.LIFNode(store_v_seq=True))
    functional.set_step_mode(net, "m")
    heads = [layer.Linear(32, 10, step_mode="m") for _ in range(2)]
    torch.save(_resnet18_state(), "r18.pth")  # the teacher's weights file the bkd snippet loads
    return {
        "my_cnn": my_cnn,
        "images": torch.rand(4, 1, 28, 28),
        "net": net,
        "tap": net[-1],
        "static_head": heads[0],
        "event_head": heads[1],
        "N": 350 // 32 + 1,  # iterations of the transfer snippet's loop (350 pairs, batch 32)
        "x": torch.rand(2, 3, 64, 64),
        "y": torch.tensor([1, 2]),
    }


def _resnet18_state() -> dict:
    from torchvision.models import resnet18

    return resnet18(num_classes=1000).state_dict()


# (text of the README, smoke replacement): cut sizes only, never the API a block shows
SMOKE_EDITS = [
    (
        'config=TrainConfig(out="runs/vgg", epochs=1, batch_size=32, lr=5e-3)',
        'config=TrainConfig(out="runs/vgg", epochs=1, batch_size=32, lr=5e-3, max_steps_per_epoch=2, progress=False)',
    ),
]
NEEDS_LOCAL_DATA = "# needs the data sets in ~/data"


def test_readme_has_the_blocks_this_test_knows():
    code = blocks()
    assert len(code) >= 7
    for old, _ in SMOKE_EDITS:
        assert sum(old in b for b in code) == 1, old


def _params() -> list:
    """One per block; a block that trains or emulates the event twin of MNIST-5k is marked slow."""
    slow = re.compile(r"\bfit\(|\.train\(|MNIST5kEvents\(")
    return [pytest.param(i, marks=pytest.mark.slow) if slow.search(b) else i for i, b in enumerate(blocks())]


@pytest.mark.parametrize("index", _params())
def test_readme_python_block_runs(index, tmp_path, monkeypatch, one_thread):
    code = blocks()[index]
    for old, new in SMOKE_EDITS:
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    namespace = {"__name__": f"readme_block_{index}"}
    names = set(re.findall(r"\b[A-Za-z_]\w*\b", code))
    namespace.update(
        {
            k: v
            for k, v in _placeholders().items()
            if k in names and not re.search(rf"^\s*{k}\s*=", code, re.M)
        }
    )
    if NEEDS_LOCAL_DATA in code:
        with pytest.raises(FileNotFoundError):
            exec(compile(code, f"README block {index}", "exec"), namespace)
        return
    exec(compile(code, f"README block {index}", "exec"), namespace)
